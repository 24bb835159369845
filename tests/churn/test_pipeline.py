"""The churn pipeline end to end: `dvc repro` in a fresh clone (training shrunk for the suite)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml

from tests.conftest import dvc, edit_params, error_lines, set_tasks, tree_digest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(pipeline: Path) -> Path:
    return pipeline


@contextmanager
def params_restored(root: Path) -> Iterator[None]:
    original = (root / "params.yaml").read_text()
    try:
        yield
    finally:
        (root / "params.yaml").write_text(original)


def metrics(root: Path) -> dict:
    return json.loads((root / "reports" / "churn" / "metrics.json").read_text())


def test_ensemble_passes_the_course_mark_and_beats_every_member(repo: Path):
    scores = metrics(repo)
    holdout = scores["holdout"]
    ensemble = holdout.pop("ensemble")
    assert scores["headline"] == {
        "metric": "roc_auc",
        "value": ensemble["roc_auc"],
        "split": "holdout",
    }
    assert ensemble["roc_auc"] >= 0.84
    assert set(holdout) == {
        "logreg",
        "rf_shallow",
        "rf_deep",
        "catboost_d4",
        "catboost_d6",
        "catboost_d4_s2",
    }
    for name, member in holdout.items():
        assert ensemble["roc_auc"] >= member["roc_auc"], name
        assert 0.80 < member["roc_auc"] < 0.90, name
    for name, cv in scores["cv"].items():
        assert cv["folds"] == 5, name  # the suite runs 5 folds x 1 repeat
        assert 0.82 < cv["roc_auc_mean"] < 0.88 and 0 < cv["roc_auc_std"] < 0.05, name
    assert 0 < ensemble["threshold"] < 1 and ensemble["f1"] > 0.55
    # the ensemble against its best member on the same clients, with a paired bootstrap CI
    versus = scores["ensemble_vs_best_member"]
    best = max(holdout, key=lambda name: holdout[name]["roc_auc"])
    assert versus["best_member"] == best
    difference = scores["ensemble_minus_best_member"]
    assert difference == pytest.approx(ensemble["roc_auc"] - holdout[best]["roc_auc"])
    assert versus["ci_low"] <= difference <= versus["ci_high"] and versus["confidence"] == 0.95
    report = (repo / "reports" / "churn" / "report.md").read_text()
    assert f"vs {best} (95% paired bootstrap CI" in report


def test_dvc_metrics_show_reads_the_metrics(repo: Path):
    shown = dvc(repo, "metrics", "show", "--json").stdout
    values = json.loads(shown)
    flat = json.dumps(values)
    assert "holdout" in flat and "roc_auc" in flat


def test_submission_covers_test_csv(repo: Path):
    submission = pd.read_csv(repo / "reports" / "churn" / "submission.csv")
    assert list(submission.columns) == ["Id", "Churn"]
    assert len(submission) == 1761 and submission["Id"].is_unique
    assert submission["Churn"].between(0, 1).all()


def test_reports_are_self_contained(repo: Path):
    html = (repo / "reports" / "churn" / "report.html").read_text()
    assert "Churn — telecom customer churn" in html
    images = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(images) == 5 and all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r'src="https?://|<link|<script', html)  # nothing fetched from a CDN
    assert "catboost_d4_s2" in html and "promoted to champion" in html
    summary = json.loads((repo / "reports" / "summary.json").read_text())
    assert summary["churn"]["value"] == metrics(repo)["headline"]["value"]
    assert "churn/report.html" in (repo / "reports" / "index.html").read_text()


def test_mlflow_run_tags_nested_members_and_registry(repo: Path):
    run_info = json.loads((repo / "models" / "churn" / "mlflow_run.json").read_text())
    mlflow.set_tracking_uri(f"sqlite:///{repo / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        run = client.get_run(run_info["run_id"])
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        lock = yaml.safe_load((repo / "dvc.lock").read_text())
        processed_md5 = next(o["md5"] for o in lock["stages"]["preprocess@churn"]["outs"])
        assert run.data.tags["git.commit"] == head
        assert run.data.tags["dvc.stage"] == "train@churn"
        assert run.data.tags["dvc.dep.data/processed/churn"] == processed_md5
        assert run.data.params["train.cv.folds"] == "5"
        assert run.data.metrics["holdout_roc_auc"] == pytest.approx(
            metrics(repo)["headline"]["value"]
        )
        children = client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
        )
        members = sorted(name for name in metrics(repo)["cv"] if name != "ensemble")
        assert sorted(r.info.run_name for r in children) == members
        history = client.get_metric_history(children[0].info.run_id, "cv_fold_roc_auc")
        assert [m.step for m in history] == list(range(5))  # 5 folds x 1 repeat

        version = client.get_model_version_by_alias("churn", "champion")
        assert version.version == client.get_model_version_by_alias("churn", "challenger").version
        model = mlflow.pyfunc.load_model("models:/churn@champion")
        holdout = pd.read_parquet(repo / "data" / "processed" / "churn" / "holdout.parquet")
        predicted = model.predict(holdout.drop(columns=["Churn"]).head(20))
        assert predicted.shape == (20, 2)
        assert ((predicted >= 0) & (predicted <= 1)).all()
    finally:
        mlflow.set_tracking_uri(None)


def without_source_checks(stages: list[str]) -> list[str]:
    """`source@<task>` runs on every repro by design (it looks at the source again)."""
    return [s for s in stages if not s.startswith("source@")]


def test_noop_repro_runs_only_the_source_checks(repo: Path):
    out = dvc(repo, "repro").stdout
    ran = re.findall(r"Running stage '([^']+)'", out)
    assert ran and without_source_checks(ran) == []
    assert "didn't change, skipping" in out


def test_changing_train_params_reruns_from_train_on(repo: Path):
    """Only train is out of date; DVC then re-runs evaluate/report/summary when its outputs
    change (a dry run cannot know that yet), never download/validate/preprocess."""
    with params_restored(repo):
        edit_params(repo, churn={"train": {"ensemble": "mean"}})
        status = dvc(repo, "status", "--json").stdout
        assert without_source_checks(list(json.loads(status))) == ["train@churn"]
        dry = dvc(repo, "repro", "--dry").stdout
        assert without_source_checks(re.findall(r"Running stage '([^']+)'", dry)) == ["train@churn"]
    assert without_source_checks(list(json.loads(dvc(repo, "status", "--json").stdout))) == []


def test_a_bad_params_key_fails_repro_in_one_line_and_keeps_outputs(repo: Path):
    models = tree_digest(repo / "models" / "churn")
    with params_restored(repo):
        edit_params(repo, churn={"train": {"cv": {"folds": "five"}}})
        result = dvc(repo, "repro", check=False)
        assert result.returncode != 0
        lines = error_lines(result)
        assert lines == [
            "error: params.yaml: churn.train.cv.folds: Input should be a valid integer, unable to "
            "parse string as an integer, got 'five'"
        ]
    assert tree_digest(repo / "models" / "churn") == models


def test_real_kaggle_folder_runs_through_the_same_pipeline(repo: Path, tmp_path: Path):
    """The competition files without test labels (as Kaggle ships them) via a `path` source."""
    kaggle = tmp_path / "advanced-dls-spring-2021"
    kaggle.mkdir()
    for name in ("train.csv", "test.csv", "submission.csv"):
        shutil.copy(repo / "data" / "raw" / "churn" / name, kaggle / name)
    clone = tmp_path / "clone"
    shutil.copytree(repo, clone, symlinks=True)
    (clone / "mlflow.db").unlink()
    shutil.rmtree(clone / "mlruns")  # its experiment would point at the first clone's folder
    set_tasks(
        clone,
        ["churn"],
        churn={
            "source": {"kind": "path", "path": str(kaggle)},
            "train": {
                "cv": {"folds": 3, "repeats": 1},
                "random_forests": [],
                "catboost": [
                    {"name": "catboost_fast", "depth": 4, "iterations": 100, "learning_rate": 0.1}
                ],
            },
        },
    )
    dvc(clone, "repro")
    scores = metrics(clone)
    assert scores["rows"]["holdout"] == 1321  # a quarter of train.csv, chosen by row hash
    assert scores["headline"]["value"] > 0.8
    assert len(pd.read_csv(clone / "reports" / "churn" / "submission.csv")) == 1761
