"""The default segmentation grid, read from the session's full `dvc repro` of a fresh clone."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml

pytestmark = pytest.mark.slow


def test_the_best_pair_passes_the_iou_mark_and_every_pair_is_scored(pipeline: Path):
    reports = pipeline / "reports" / "segmentation"
    metrics = json.loads((reports / "metrics.json").read_text())
    train = yaml.safe_load((pipeline / "params.yaml").read_text())["segmentation"]["train"]
    grid = {f"{m['name']}+{loss}" for m in train["models"] for loss in train["losses"]}
    assert set(metrics["test"]) == grid == set(metrics["valid"])

    selected = metrics["selected"]
    assert selected == max(metrics["valid"], key=lambda p: metrics["valid"][p]["iou"])
    assert metrics["headline"] == {
        "metric": "iou",
        "value": metrics["test"][selected]["iou"],
        "split": "test",
        "model": selected,
    }
    assert metrics["test"][selected]["iou"] >= 0.85
    assert metrics["test"][selected]["dice"] >= 0.9
    # a model that learned nothing covers the image or nothing: IoU ≈ coverage (~0.3) or 0
    assert min(row["iou"] for row in metrics["test"].values()) >= 0.7
    assert metrics["test_images"] == 50

    submission = (reports / "submission.csv").read_text().splitlines()
    assert submission[0] == "Id,EncodedPixels" and len(submission) == 51
    html = (reports / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3
    assert selected in html


def test_every_pair_is_a_nested_mlflow_run_and_the_selected_one_is_registered(pipeline: Path):
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("segmentation")
    (parent,) = client.search_runs(
        [experiment.experiment_id], "tags.`dvc.stage` = 'train@segmentation'"
    )
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    metrics = json.loads((pipeline / "reports/segmentation/metrics.json").read_text())
    assert {run.info.run_name for run in children} == set(metrics["test"])
    assert all("best_val_iou" in run.data.metrics for run in children)
    history = client.get_metric_history(children[0].info.run_id, "val_iou")
    assert len(history) > 1  # per-epoch curves
    assert parent.data.tags["selected_pair"] == metrics["selected"]
    champion = client.get_model_version_by_alias("segmentation", "champion")
    assert champion.run_id == parent.info.run_id
