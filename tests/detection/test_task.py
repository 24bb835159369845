"""The detection steps through the CLI and their pure parts: both real layouts (hard-hat and a
hand-built VOC devkit), VOC's `difficult` rule in the score, the user's inference filter, bad
input as one line with the last good output kept, and a zipped set served over HTTP."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stages.core.errors import UserError
from stages.detection.evaluate import kept_labels, score
from stages.detection.model import _filter, score_targets
from stages.detection.params import InferenceParams
from stages.detection.preprocess import cache
from stages.detection.schema import scan, usable
from tests.conftest import (
    copy_project,
    error_lines,
    set_tasks,
    stages_cli,
    tree_digest,
)

VOC_CLASSES = ["person", "car", "dog"]
TINY = {"source": {"images": 16, "size": 96}, "validate": {"min_images": 8}}


def _object(name: str, box, difficult: int = 0, truncated: int = 0) -> str:
    coords = "".join(
        f"<{k}>{v}</{k}>" for k, v in zip(("xmin", "ymin", "xmax", "ymax"), box, strict=True)
    )
    return (
        f"<object><name>{name}</name><pose>Left</pose><truncated>{truncated}</truncated>"
        f"<difficult>{difficult}</difficult><bndbox>{coords}</bndbox></object>"
    )


def voc_devkit(root: Path) -> Path:
    """VOCdevkit/VOC2007 as the real archive lays it out: JPEG images, one XML per image,
    ImageSets/Main lists. Float coordinates, a difficult object, an image without objects, a
    box reaching outside its image and a box without area."""
    year = root / "VOCdevkit" / "VOC2007"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (year / folder).mkdir(parents=True)
    images = {
        "000001": (
            120,
            80,
            [
                _object("person", (10.5, 12.0, 50.2, 70.9)),
                _object("dog", (60, 30, 110, 75), difficult=1),
            ],
        ),
        "000002": (100, 100, []),
        "000003": (
            90,
            60,
            [_object("car", (40, 20, 130, 58), truncated=1), _object("car", (5, 5, 5, 30))],
        ),
    }
    for stem, (width, height, objects) in images.items():
        Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(
            year / "JPEGImages" / f"{stem}.jpg"
        )
        (year / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><folder>VOC2007</folder><filename>{stem}.jpg</filename>"
            f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
            f"<segmented>0</segmented>{''.join(objects)}</annotation>"
        )
    (year / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(images) + "\n")
    return root


def test_a_voc_devkit_is_read_with_floats_clipping_and_degenerate_boxes(tmp_path):
    images, objects = scan(voc_devkit(tmp_path), VOC_CLASSES)
    assert len(usable(images)) == 3
    assert set(images["layout"]) == {"VOC devkit"}
    assert images.set_index("name")["objects"].to_dict() == {
        "VOCdevkit/VOC2007/Annotations/000001.xml": 2,
        "VOCdevkit/VOC2007/Annotations/000002.xml": 0,
        "VOCdevkit/VOC2007/Annotations/000003.xml": 2,
    }
    person = objects[objects["label"] == "person"].iloc[0]
    assert (person["xmin"], person["ymax"]) == (10.5, 70.9)
    assert objects["difficult"].tolist() == [False, True, False, False]
    cars = objects[objects["label"] == "car"]
    assert cars["clipped"].tolist() == [True, False]
    assert cars.iloc[0]["xmax"] == 90  # clipped to the image width
    assert cars["degenerate"].notna().tolist() == [False, True]
    assert objects["unknown_class"].isna().all()


def test_difficult_objects_are_neither_hits_nor_misses(tmp_path):
    """VOC rule: a detector that misses a difficult object loses nothing, and one that finds
    it gains nothing; the same object scored as a normal one costs recall."""
    images, objects = scan(voc_devkit(tmp_path), VOC_CLASSES)
    cached = cache(usable(images), objects, VOC_CLASSES, size=120)
    targets = score_targets(cached)
    easy = [
        {
            "boxes": boxes[~hard],
            "labels": labels[~hard],
            "scores": torch.full((int((~hard).sum()),), 0.9),
        }
        for boxes, labels, hard in zip(
            cached["boxes"], cached["labels"], cached["difficult"], strict=True
        )
    ]
    _, missed_difficult = score(easy, targets)
    assert float(missed_difficult["map"]) == pytest.approx(1.0)

    every = [
        {"boxes": b, "labels": lab, "scores": torch.full((len(lab),), 0.9)}
        for b, lab in zip(cached["boxes"], cached["labels"], strict=True)
    ]
    _, found_difficult = score(every, targets)
    assert float(found_difficult["map"]) == pytest.approx(1.0)

    as_normal = [{**t, "iscrowd": torch.zeros_like(t["iscrowd"])} for t in targets]
    _, counted = score(easy, as_normal)
    assert float(counted["map"]) < 0.9


def test_the_inference_filter_keeps_classes_confidence_and_a_count_per_class():
    found = {
        "boxes": torch.arange(24, dtype=torch.float32).reshape(6, 4),
        "labels": torch.tensor([1, 1, 1, 2, 2, 3]),
        "scores": torch.tensor([0.9, 0.3, 0.8, 0.7, 0.95, 0.6]),
    }
    kept = _filter(found, keep=[1, 2], min_confidence=0.5, limit=1)
    assert kept["labels"].tolist() == [2, 1]
    assert kept["scores"].tolist() == pytest.approx([0.95, 0.9])
    assert len(_filter(found, keep=None, min_confidence=0.0, limit=100)["labels"]) == 6
    assert kept_labels(InferenceParams(classes=["head"]), ["helmet", "head", "person"]) == [2]
    with pytest.raises(UserError, match="inference.classes: unknown class 'hat'"):
        kept_labels(InferenceParams(classes=["hat"]), ["helmet", "head", "person"])


@pytest.fixture(scope="module")
def validated_once(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("detection") / "project")
    set_tasks(project, ["detection"], detection=TINY)
    for step in ("download", "validate"):
        result = stages_cli(project, step, "detection")
        assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def downloaded(validated_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(validated_once, tmp_path / "project", symlinks=True))


def raw(root: Path) -> Path:
    return root / "data" / "raw" / "detection"


def validate_fails_keeping_the_last_good_report(root: Path, break_data) -> str:
    report = root / "reports" / "detection" / "validation.json"
    before = tree_digest(report)
    break_data()
    result = stages_cli(root, "validate", "detection")
    assert result.returncode == 2
    assert tree_digest(report) == before
    (line,) = error_lines(result)
    return line


def test_the_builtin_source_is_read_as_the_hard_hat_layout(downloaded):
    facts = json.loads((downloaded / "reports/detection/validation.json").read_text())["facts"]
    assert facts["layout"] == "hard-hat"
    assert facts["usable images"] == 16
    assert facts["degenerate boxes (dropped)"] == 0
    assert facts["boxes clipped to the image"] == 0  # the generator clips and marks truncated


def test_an_image_without_annotation_is_named(downloaded):
    def remove():
        (raw(downloaded) / "annotations" / "hard_hat_workers3.xml").unlink()

    line = validate_fails_keeping_the_last_good_report(downloaded, remove)
    assert line.startswith(
        "error: validation failed: images column 'missing_annotation': "
        "expect_column_values_to_be_null: 1 unexpected value(s), "
        "e.g. ['images/hard_hat_workers3.png']"
    )


def test_a_wrong_size_and_an_unknown_class_are_named(downloaded):
    xml = raw(downloaded) / "annotations" / "hard_hat_workers5.xml"

    def damage():
        text = xml.read_text().replace("<width>96</width>", "<width>416</width>")
        xml.write_text(text)
        other = raw(downloaded) / "annotations" / "hard_hat_workers6.xml"
        other.write_text(other.read_text().replace("<name>helmet</name>", "<name>hat</name>", 1))

    line = validate_fails_keeping_the_last_good_report(downloaded, damage)
    assert "annotations/hard_hat_workers5.xml: size 416x96, image 96x96" in line
    failed = json.loads((downloaded / "reports/detection/validation.failed.json").read_text())
    checks = failed["tables"]["objects"]["expectations"]
    (unknown,) = [c for c in checks if c["column"] == "unknown_class"]
    assert unknown["sample"] == ["annotations/hard_hat_workers6.xml: hat"]


def test_a_broken_xml_is_named(downloaded):
    def corrupt():
        (raw(downloaded) / "annotations" / "hard_hat_workers2.xml").write_text("<annotation>")

    line = validate_fails_keeping_the_last_good_report(downloaded, corrupt)
    assert "column 'unreadable'" in line
    assert "annotations/hard_hat_workers2.xml: not valid XML" in line


@pytest.mark.slow
def test_a_zipped_voc_devkit_served_over_http_reaches_the_cached_tensors(project, server, tmp_path):
    """The real archives' route: a url with its sha256, a zip holding a VOC devkit; real
    data is letterboxed at its own size (median longer side 100 px, floored to 96: never
    upsampled to the protocol's 416) and the boxes scale with it."""
    root, base, _ = server
    unpacked = voc_devkit(tmp_path / "voc")
    archive = root / "VOCtrainval.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(unpacked.rglob("*")):
            zf.write(path, path.relative_to(unpacked))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    source = {"kind": "url", "url": f"{base}/VOCtrainval.zip", "sha256": digest}
    set_tasks(
        project,
        ["detection"],
        detection={
            "source": source,
            "validate": {"classes": VOC_CLASSES, "min_images": 3, "max_degenerate_share": 0.5},
        },
    )
    for step in ("download", "validate", "preprocess"):
        result = stages_cli(project, step, "detection")
        assert result.returncode == 0, f"{step}: {result.stderr}"

    facts = json.loads((project / "reports/detection/validation.json").read_text())["facts"]
    assert facts["layout"] == "VOC devkit"
    assert facts["boxes clipped to the image"] == 1
    assert facts["degenerate boxes (dropped)"] == 1
    assert facts["difficult objects (kept, not scored)"] == 1
    assert facts["images without objects"] == 1
    splits = json.loads((project / "data/processed/detection/splits.json").read_text())
    assert splits["size"] == 96 and "never upsampled" in splits["size_reason"]
    cached = {
        name: torch.load(project / f"data/processed/detection/{name}.pt")
        for name in ("train", "val", "test")
    }
    by_name = {
        n: (b, s)
        for c in cached.values()
        for n, b, s in zip(c["names"], c["boxes"], c["scales"], strict=True)
    }
    boxes, scale = by_name["VOCdevkit/VOC2007/Annotations/000003.xml"]
    assert len(boxes) == 1  # the degenerate car is dropped
    assert scale == pytest.approx(96 / 90)
    assert boxes[0].tolist() == pytest.approx([40 * scale, 20 * scale, 90 * scale, 58 * scale])
    assert cached["test"]["images"].shape[1:] == (3, 96, 96)
