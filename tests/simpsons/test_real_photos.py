"""The Simpsons task on real photos of another shape: greyscale 28-px Fashion-MNIST product photos
in the Kaggle layout, ten imbalanced classes, fine-tuned from torchvision's real ImageNet
MobileNetV2 file as the course teaches (benchmarks/transfer.py compares it with from scratch)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch

from stages.core.pretrained import check_weights_file
from tests.conftest import copy_project, run_on_path
from tests.simpsons.real_photos import FASHION_MNIST, write_fashion_photos

MOBILENET = Path(torch.hub.get_dir()) / "checkpoints" / "mobilenet_v2-b0353104.pth"


@pytest.mark.slow
def test_greyscale_product_photos_are_learned_from_imagenet_weights(tmp_path: Path):
    if not FASHION_MNIST.is_dir() or not MOBILENET.is_file():
        pytest.skip("needs dataset-fashion-mnist and `make weights` (.ci/run and make test do)")
    check_weights_file(MOBILENET, "test")
    sizes = write_fashion_photos(tmp_path / "photos", largest=200, smallest=12)
    root = copy_project(tmp_path / "project")
    metrics = run_on_path(
        root,
        "simpsons",
        tmp_path / "photos",
        train={"pretrained": "IMAGENET1K_V1", "freeze_epochs": 1, "epochs": 12},
    )

    reports = root / "reports" / "simpsons"
    facts = json.loads((reports / "validation.json").read_text())["facts"]
    assert facts["modes"] == f"L ({sum(sizes.values()) + 20})"
    assert facts["width min / median / max"] == "28 / 28 / 28"
    assert facts["imbalance (largest / smallest)"] == pytest.approx(200 / 12, abs=0.1)
    # chance is 0.1, a model that learned nothing ~0.1-0.2; runs from ImageNet gave 0.59-0.73
    # (CPU threads change the sums), from scratch 0.53: benchmarks/transfer.py compares them
    assert metrics["test"]["f1_macro"] > 0.5, metrics["test"]
    report = (reports / "report.md").read_text()
    assert "mobilenet_v2 from ImageNet weights IMAGENET1K_V1 (the new head alone for 1" in report
    epochs = re.search(r"at 64 px for (\d+) epochs", report)
    assert epochs and 1 < int(epochs.group(1)) <= 12, report  # early stopping may end it sooner
    assert "did not learn" not in report
    submission = pd.read_csv(reports / "submission.csv")
    assert len(submission) == 20 and set(submission["Expected"]) <= set(sizes)
