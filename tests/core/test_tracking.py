"""Registry rules against a real MLflow sqlite store."""

from pathlib import Path

import mlflow
import yaml
from sklearn.dummy import DummyClassifier

from stages.core import tracking
from tests.conftest import project_env


def new_version(root: Path, task: str = "demo") -> tracking.RegisteredVersion:
    with tracking.task_run(task, f"train@{task}", root, []) as run:
        info = mlflow.sklearn.log_model(
            DummyClassifier().fit([[0], [1]], [0, 1]),
            name="model",
            serialization_format="cloudpickle",
            pip_requirements=["scikit-learn"],
        )
    return tracking.register_challenger(task, info.model_uri, run.info.run_id)


def aliases(task: str) -> dict[str, str]:
    return {k: str(v) for k, v in mlflow.MlflowClient().get_registered_model(task).aliases.items()}


def test_embedded_store_lives_at_the_root(store: Path):
    assert tracking.tracking_uri(store) == f"sqlite:///{store.resolve() / 'mlflow.db'}"
    new_version(store)
    assert (store / "mlflow.db").is_file()
    assert any((store / "mlruns").rglob("MLmodel"))


def test_tracking_uri_env_overrides(store: Path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/mlflow.db")
    assert tracking.tracking_uri(store) == "sqlite:////elsewhere/mlflow.db"


def test_run_tags_carry_commit_stage_and_data_hashes_from_dvc_lock(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("DVC_STAGE", "train@demo")
    (tmp_path / "dvc.lock").write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "preprocess@demo": {
                        "outs": [
                            {
                                "path": "data/processed/demo",
                                "md5": "abc.dir",
                                "size": 1,
                                "nfiles": 1,
                            }
                        ]
                    }
                },
            }
        )
    )
    tags = tracking.run_tags(tmp_path, "ignored", [tmp_path / "data" / "processed" / "demo"])
    assert tags["dvc.stage"] == "train@demo"
    assert tags["dvc.dep.data/processed/demo"] == "abc.dir"
    assert tags["git.commit"] == "unknown"


def test_parallel_stages_create_the_embedded_store_once(tmp_path: Path):
    """Stages run in parallel by the flow all open a fresh mlflow.db at the same moment."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path; from stages.core.tracking import experiment_id; "
        "experiment_id(sys.argv[1], Path(sys.argv[2]))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, f"task{i}", str(tmp_path)],
            env=project_env(),  # as DVC runs stages: no MLFLOW_TRACKING_URI from other tests
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], "\n".join(errors)
    client = mlflow.MlflowClient(tracking.embedded_uri(tmp_path))
    assert {e.name for e in client.search_experiments()} >= {"task0", "task1", "task2"}
