"""The Simpsons task: loader tolerance, splits of tiny classes, and resuming an interrupted
training run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from stages.simpsons.generate import GeneratorSpec, write_simpsons
from stages.simpsons.preprocess import assign_splits
from stages.simpsons.schema import read_test_labels, scan
from tests.conftest import copy_project, project_env, set_tasks, stages_cli

SMALL = {"classes": 5, "images": 100, "test_images": 20, "size": 48, "min_per_class": 3}


@pytest.fixture(scope="module")
def nested(tmp_path_factory) -> Path:
    """The generator's layout moved one level deeper, as some Kaggle extractions have it, with a
    corrupt JPEG and a stray text file among the images."""
    root = tmp_path_factory.mktemp("simpsons")
    write_simpsons(root / "journey-springfield", GeneratorSpec(**SMALL))
    class_dir = next((root / "journey-springfield" / "train" / "simpsons_dataset").iterdir())
    (class_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (class_dir / "notes.txt").write_text("not an image")
    return root


def test_scan_finds_class_folders_at_any_depth_and_marks_unreadable_files(nested: Path):
    index = scan(nested)
    assert index.class_root.name == "simpsons_dataset"
    assert index.test_root is not None and index.test_root.name == "testset"
    assert len(index.classes) == 5
    unreadable = index.frame[~index.frame["readable"]]
    assert sorted(Path(p).name for p in unreadable["path"]) == ["broken.jpg", "notes.txt"]
    assert (index.frame["split"] == "test").sum() == 20


def test_three_image_classes_reach_every_split(nested: Path):
    index = scan(nested)
    splits = assign_splits(index, None, val_fraction=0.15, test_fraction=0.15, seed=0)
    labelled = splits[splits["split"].isin(["train", "val", "test"])]
    per_class = labelled.groupby(["label", "split"]).size().unstack(fill_value=0)
    assert (per_class[["train", "val", "test"]] >= 1).all().all()
    assert (splits["split"] == "predict").sum() == 20
    with_labels = assign_splits(index, read_test_labels(nested), 0.15, 0.15, seed=0)
    assert (with_labels["split"] == "test").sum() == 20  # the labelled test folder


def test_validation_counts_unreadable_files_without_failing(nested: Path, tmp_path: Path):
    root = copy_project(tmp_path / "project")
    set_tasks(root, ["simpsons"], simpsons={"source": {"kind": "path", "path": str(nested)}})
    for step in ("download", "validate"):
        result = stages_cli(root, step, "simpsons")
        assert result.returncode == 0, result.stderr
    report = json.loads((root / "reports" / "simpsons" / "validation.json").read_text())
    assert report["facts"]["unreadable files (skipped)"] == 2
    assert report["facts"]["classes"] == 5


def test_a_class_with_two_images_fails_validation_naming_it(nested: Path, tmp_path: Path):
    source = tmp_path / "data"
    shutil.copytree(nested, source)
    smallest = sorted((source / "journey-springfield/train/simpsons_dataset").iterdir())[-1]
    for extra in sorted(smallest.glob("*.jpg"))[2:]:
        extra.unlink()
    root = copy_project(tmp_path / "project")
    set_tasks(root, ["simpsons"], simpsons={"source": {"kind": "path", "path": str(source)}})
    assert stages_cli(root, "download", "simpsons").returncode == 0
    result = stages_cli(root, "validate", "simpsons")
    assert result.returncode == 2
    assert "column 'label': expect_column_values_to_be_in_set" in result.stderr
    assert smallest.name in result.stderr


@pytest.mark.slow
def test_an_interrupted_training_run_continues_from_its_checkpoint(tmp_path: Path):
    root = copy_project(tmp_path / "project")
    set_tasks(
        root,
        ["simpsons"],
        simpsons={
            "source": {"classes": 4, "images": 400, "test_images": 20, "size": 48},
            "preprocess": {"image_size": 48},
            "train": {"epochs": 6, "patience": None, "batch_size": 16},
        },
    )
    for step in ("download", "validate", "preprocess"):
        assert stages_cli(root, step, "simpsons").returncode == 0
    command = [sys.executable, "-m", "stages", "train", "simpsons"]
    first = subprocess.Popen(
        command, cwd=root, env=project_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoints = root / ".checkpoints" / "simpsons"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and first.poll() is None:
        steps = list(checkpoints.rglob("step*.ckpt"))
        if any(p.name != "last.ckpt" for p in steps) and list(checkpoints.rglob("best.ckpt")):
            break  # at least one epoch finished and a mid-epoch checkpoint exists
        time.sleep(0.2)
    assert first.poll() is None, "training finished before it could be interrupted"
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    assert not (root / "models" / "simpsons").exists()

    second = stages_cli(root, "train", "simpsons")
    assert second.returncode == 0, second.stderr
    run_info = json.loads((root / "models" / "simpsons" / "mlflow_run.json").read_text())
    assert run_info["resumed_at_step"] > 0
    history = pd.read_csv(root / "models" / "simpsons" / "history.csv")
    assert history["epoch"].tolist() == list(range(6))  # epochs before the kill are kept
    assert not checkpoints.exists() or not any(checkpoints.rglob("*.ckpt"))


@pytest.mark.slow
def test_default_pipeline_reaches_the_f1_mark(pipeline: Path):
    metrics = json.loads((pipeline / "reports/simpsons/metrics.json").read_text())
    # chance is 1/12; the suite's 12 epochs land at 145-147 of 150 over three seeds (the
    # default 20: 142-149; torch on 1 or 2 threads sums differently)
    assert metrics["test"]["f1_micro"] >= 0.93
    # macro-F1 weighs the 1-image test classes as much as Homer: lower, but far above chance
    assert metrics["test"]["f1_macro"] >= 0.7
    assert metrics["test_images"] == 150  # the builtin test folder, labels held out
    submission = pd.read_csv(pipeline / "reports/simpsons/submission.csv")
    assert list(submission.columns) == ["Id", "Expected"] and len(submission) == 150
    classes = json.loads((pipeline / "data/processed/simpsons/classes.json").read_text())
    assert set(submission["Expected"]) <= set(classes["classes"])
    html = (pipeline / "reports/simpsons/report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 4
    history = pd.read_csv(pipeline / "models/simpsons/history.csv")
    assert history["val_f1_micro"].iloc[-1] > history["val_f1_micro"].iloc[0]
    assert Image.open(pipeline / "reports/simpsons/plots/confusion.png").width > 100
