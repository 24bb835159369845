"""MLflow: one experiment per task, one run per train stage, a registered model per task.

Without MLFLOW_TRACKING_URI the store is embedded: `mlflow.db` (sqlite) and `mlruns/` at the
repository root. Every new model version gets the alias `challenger`; `champion` moves only when
the promotion rule says the new version beats it (stages/core/registry.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHALLENGER = "challenger"
CHAMPION = "champion"
RUN_INFO_FILE = "mlflow_run.json"
MODEL_CARD = "model_card.json"


# mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI; remember which values we exported
# so they are not mistaken for a user's choice.
_EXPORTED: set[str] = set()
_CREATED: set[str] = set()  # sqlite stores this process has already created or migrated


def embedded_uri(root: Path) -> str:
    return f"sqlite:///{store_root(root) / 'mlflow.db'}"


def store_root(root: Path) -> Path:
    """Where the embedded store lives: the repository root, also for `dvc exp run --temp`,
    which runs the stages in <repo>/.dvc/tmp/exps/<name>/ (its versions belong to the repo)."""
    parts = root.resolve().parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return root.resolve()


def tracking_uri(root: Path) -> str:
    chosen = os.environ.get("MLFLOW_TRACKING_URI")
    return chosen if chosen and chosen not in _EXPORTED else embedded_uri(root)


def configure(root: Path) -> None:
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per card
    uri = tracking_uri(root)
    mlflow.set_tracking_uri(uri)
    if uri == embedded_uri(root):
        _EXPORTED.add(uri)
    if uri.startswith("sqlite:///") and uri not in _CREATED:
        create_sqlite_store(uri)
        _CREATED.add(uri)


def create_sqlite_store(uri: str) -> None:
    """Create or migrate a sqlite store while holding a lock file next to it: stages that run
    in parallel (the Prefect flow) would otherwise race on the schema migrations and fail."""
    import fcntl

    import mlflow

    with Path(uri.removeprefix("sqlite:///") + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mlflow.MlflowClient(uri).search_experiments(max_results=1)


def experiment_id(task: str, root: Path) -> str:
    """The task's experiment; in the embedded store its artifacts live in <root>/mlruns."""
    import mlflow

    configure(root)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name(task)
    if experiment is not None:
        return experiment.experiment_id
    embedded = tracking_uri(root) == embedded_uri(root)
    location = (store_root(root) / "mlruns").as_uri() if embedded else None
    return client.create_experiment(task, artifact_location=location)


def git_commit(root: Path) -> tuple[str, bool]:
    """(commit, dirty) of the working tree, or ("unknown", False) outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(status)


def dvc_lock_hashes(root: Path, paths: list[Path]) -> dict[str, str]:
    """md5 of each path as recorded in dvc.lock by the stage that produced it."""
    from stages.core.dataversion import lock_outs

    produced = {path: out.get("md5") or out.get("hash") for path, out in lock_outs(root).items()}
    wanted = {str(p.resolve().relative_to(root.resolve())) for p in paths}
    return {path: produced[path] for path in sorted(wanted) if path in produced}


def run_tags(root: Path, stage: str, data_deps: list[Path]) -> dict[str, str]:
    commit, dirty = git_commit(root)
    tags = {
        "git.commit": commit,
        "git.dirty": str(dirty).lower(),
        "dvc.stage": os.environ.get("DVC_STAGE", stage),
    }
    tags.update({f"dvc.dep.{path}": md5 for path, md5 in dvc_lock_hashes(root, data_deps).items()})
    return tags


@contextmanager
def task_run(task: str, stage: str, root: Path, data_deps: list[Path]) -> Iterator[Any]:
    """The MLflow run of one stage, tagged with the code commit and the data it read."""
    import mlflow

    from stages.core import dataversion

    exp = experiment_id(task, root)
    mlflow.set_experiment(experiment_id=exp)  # nested runs inherit the active experiment
    validation = root / "reports" / task / "validation.json"
    data = dataversion.data_version(
        root, task, json.loads(validation.read_text()) if validation.is_file() else None
    )
    tags = {**run_tags(root, stage, data_deps), **dataversion.tags(data)}
    with mlflow.start_run(experiment_id=exp, run_name=stage, tags=tags) as run:
        yield run


@contextmanager
def member_run(name: str, params: Mapping[str, Any]) -> Iterator[Any]:
    """A nested run for one member of an ensemble or one cell of a comparison grid."""
    import mlflow

    with mlflow.start_run(run_name=name, nested=True) as run:
        log_params(params)
        yield run


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys; list items by position (`train.catboost.0.depth`), the
    spelling `dvc exp run -S` takes, so versions' params can be compared key by key."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_params(params: Mapping[str, Any]) -> None:
    import mlflow

    mlflow.log_params({k: str(v)[:500] for k, v in flatten(params).items()})


def log_metrics(metrics: Mapping[str, Any], step: int | None = None) -> None:
    import mlflow

    numeric = {k: float(v) for k, v in flatten(metrics).items() if isinstance(v, (int, float))}
    mlflow.log_metrics(numeric, step=step)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str


def register_challenger(task: str, model_uri: str, run_id: str) -> RegisteredVersion:
    """Register the model as a new version of the task's model and point `challenger` at it."""
    import mlflow

    from stages.core.registry import move_alias  # registry builds on this module

    version = mlflow.register_model(model_uri, task, tags={"run_id": run_id})
    move_alias(task, CHALLENGER, str(version.version), "register", f"new version from run {run_id}")
    return RegisteredVersion(task, str(version.version))


def register_run_model(task: str, root: Path, run: Any, model_uri: str) -> dict[str, str]:
    """Register the run's model as the newest `challenger`; returns what train writes to
    models/<task>/mlflow_run.json for the later stages."""
    registered = register_challenger(task, model_uri, run.info.run_id)
    return {
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "model_uri": model_uri,
        "registered_model": registered.name,
        "version": registered.version,
        "tracking_uri": tracking_uri(root),
    }


def register_torch_model(
    task: str, root: Path, run: Any, network: Any, *packages: str, card: dict | None = None
) -> dict[str, str]:
    """Log a torch module to the active run (pickled: it loads without our code's builders,
    with torch, torchvision and `packages` pinned) and register it as the `challenger`. `card`
    (class names, input size) is logged beside it: what a later scorer checks the current data
    against."""
    import mlflow

    if card is not None:
        mlflow.log_dict(card, MODEL_CARD)
    info = mlflow.pytorch.log_model(
        network,
        name="model",
        serialization_format="pickle",
        pip_requirements=pinned("torch", "torchvision", *packages),
    )
    return register_run_model(task, root, run, info.model_uri)


def version_run_id(model_uri: str) -> str:
    """The run that logged a registered version (`models:/<name>/<version>`)."""
    import mlflow

    name, version = model_uri.removeprefix("models:/").split("/", 1)
    return mlflow.MlflowClient().get_model_version(name, version).run_id


def model_card(model_uri: str) -> dict:
    """The card logged beside a registered version (`models:/<name>/<version>`); {} if none."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.artifacts.load_dict(f"runs:/{version_run_id(model_uri)}/{MODEL_CARD}")
    except (MlflowException, OSError):
        return {}


def pinned(*packages: str) -> list[str]:
    """Explicit pip requirements of a logged model: the installed versions, no inference."""
    from importlib.metadata import version

    return [f"{package}=={version(package)}" for package in packages]


def log_artifacts(root: Path, run_info: dict, folder: Path, artifact_path: str) -> None:
    """Attach files a later stage wrote (plots, reports) to the train stage's run."""
    import mlflow

    configure(root)
    with mlflow.start_run(run_id=run_info["run_id"]):
        mlflow.log_artifacts(str(folder), artifact_path=artifact_path)
