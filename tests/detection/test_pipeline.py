"""Detection end to end, read from the session's `dvc repro` of a fresh clone (training shrunk
for the suite: SHRUNK_FOR_THE_SUITE)."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import torch
from torchvision.ops import box_iou

from stages.detection.model import detect

pytestmark = pytest.mark.slow

# Marks for the suite's short training (4 epochs on 210 images from scratch: mAP@0.5 0.24,
# helmet 0.59, head 0.12 when measured); a detector that learned nothing scores ~0. The default
# params' numbers are in the issue note.
MAP_50_MARK = 0.15
CLASS_MARKS = {"helmet": 0.4, "head": 0.06}


def metrics(root: Path) -> dict:
    return json.loads((root / "reports/detection/metrics.json").read_text())


def test_the_detector_passes_the_map_mark_with_per_class_scores(pipeline: Path):
    scores = metrics(pipeline)
    selected = scores["selected"]
    assert scores["headline"] == {
        "metric": "map_50",
        "value": scores["test"][selected]["map_50"],
        "split": "test",
        "model": selected,
    }
    assert scores["test"][selected]["map_50"] >= MAP_50_MARK
    assert scores["test"][selected]["map"] < scores["test"][selected]["map_50"]
    per_class = scores["per_class"]
    assert set(per_class) == {"helmet", "head", "person"}
    for name, mark in CLASS_MARKS.items():
        assert per_class[name]["ap_50"] >= mark, name
        assert per_class[name]["objects"] > 20, name
    assert scores["test_images"] == 45  # 15% of 300


def test_the_submission_keeps_what_the_inference_settings_ask(pipeline: Path):
    submission = pd.read_csv(pipeline / "reports/detection/submission.csv")
    inference = metrics(pipeline)["inference"]
    assert list(submission.columns) == [
        "image",
        "label",
        "confidence",
        "xmin",
        "ymin",
        "xmax",
        "ymax",
    ]
    assert len(submission) == inference["detections_kept"] > 0
    assert submission["confidence"].ge(inference["min_confidence"]).all()
    assert submission.groupby(["image", "label"]).size().max() <= inference["max_per_class"]
    assert submission[["xmin", "ymin"]].ge(0).all().all()
    size = json.loads((pipeline / "data/processed/detection/splits.json").read_text())["size"]
    assert (submission["xmax"] <= size).all() and (submission["xmin"] < submission["xmax"]).all()


def test_the_report_shows_boxes_ap_and_the_threshold(pipeline: Path):
    reports = pipeline / "reports/detection"
    html = (reports / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 5
    for section in ("Per class", "Test images: truth and prediction", "confidence threshold"):
        assert section in html
    assert metrics(pipeline)["selected"] in html


def test_the_registered_model_detects_helmets_on_a_new_image(pipeline: Path):
    """What a consumer of the registry does: load the champion and run the inference
    function on an image it never saw."""
    from stages.detection.generate import GeneratorSpec, render

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{pipeline / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("detection", "champion")
    experiment = client.get_experiment_by_name("detection")
    (parent,) = client.search_runs(
        [experiment.experiment_id], "tags.`dvc.stage` = 'train@detection'"
    )
    assert champion.run_id == parent.info.run_id
    children = client.search_runs(
        [experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(client.get_metric_history(children[0].info.run_id, "val_map_50")) > 1

    mlflow.set_tracking_uri(f"sqlite:///{pipeline / 'mlflow.db'}")
    try:
        network = mlflow.pytorch.load_model("models:/detection@champion")
    finally:
        mlflow.set_tracking_uri(None)
    spec = GeneratorSpec(images=1000, seed=7)  # images the pipeline never generated
    sample = next(
        s
        for s in (render(spec, i) for i in range(900, 1000))
        if sum(o.name == "helmet" and not o.difficult for o in s.objects) >= 3
    )
    helmets = torch.tensor(
        [o.box for o in sample.objects if o.name == "helmet" and not o.difficult],
        dtype=torch.float32,
    )
    image = torch.from_numpy(sample.image).permute(2, 0, 1)
    (found,) = detect(network, [image], keep=[1], min_confidence=0.2)
    assert set(found["labels"].tolist()) == {1}  # only helmets were asked for
    hits = box_iou(helmets, found["boxes"]).max(dim=1).values >= 0.5
    assert hits.float().mean() >= 0.5
