"""The builtin journey-springfield generator: the real Kaggle layout, the imbalance, determinism,
and classes a model can actually tell apart (checked without a model)."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages.simpsons.generate import (
    CHARACTERS,
    CLASS_NAMES,
    TEST_LABELS_FILE,
    GeneratorSpec,
    class_counts,
    write_simpsons,
)

SPEC = GeneratorSpec(classes=6, images=120, test_images=20, size=48)
TRAIN = Path("train/simpsons_dataset")
TEST = Path("testset/testset")


def _write(dest: Path, spec: GeneratorSpec) -> dict:
    dest.mkdir(parents=True, exist_ok=True)
    return write_simpsons(dest, spec)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("simpsons")
    return dest, _write(dest, SPEC)


@pytest.fixture(scope="module")
def other(tmp_path_factory) -> Path:
    """The same spec with another seed: the held-out images of the separability check."""
    dest = tmp_path_factory.mktemp("simpsons_other")
    _write(dest, replace(SPEC, seed=SPEC.seed + 1))
    return dest


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["Id", "Expected"], path.name
        return list(reader)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_layout_is_the_kaggle_one(data: tuple[Path, dict]):
    root, info = data
    names = list(CLASS_NAMES[: SPEC.classes])
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["train", "testset", "sample_submission.csv", TEST_LABELS_FILE]
    )
    assert [p.name for p in (root / "train").iterdir()] == ["simpsons_dataset"]
    assert [p.name for p in (root / "testset").iterdir()] == ["testset"]
    assert sorted(p.name for p in (root / TRAIN).iterdir()) == sorted(names)
    for name in names:
        files = sorted(p.name for p in (root / TRAIN / name).iterdir())
        assert files == [f"pic_{i:04d}.jpg" for i in range(info["train_counts"][name])], name
    test_files = {p.name for p in (root / TEST).iterdir()}
    assert test_files == {f"img{i}.jpg" for i in range(SPEC.test_images)}
    assert info["classes"] == names
    assert info["train_images"] == SPEC.images and info["test_images"] == SPEC.test_images


@pytest.mark.parametrize(
    "spec",
    [
        SPEC,
        GeneratorSpec(),
        GeneratorSpec(classes=42, images=20933, min_per_class=3),
        GeneratorSpec(classes=3, images=12, min_per_class=4),
        GeneratorSpec(classes=10, images=41, min_per_class=4),
    ],
    ids=["small", "default", "real-sized", "tight", "one-spare"],
)
def test_counts_decay_to_min_and_sum_to_images(spec: GeneratorSpec):
    counts = class_counts(spec)
    assert len(counts) == spec.classes and sum(counts) == spec.images
    assert all(a >= b for a, b in zip(counts, counts[1:], strict=False))
    assert counts[-2:] == [spec.min_per_class] * 2
    if spec.images >= 4 * spec.classes * spec.min_per_class:
        assert counts[0] >= 10 * counts[-1]  # a real long tail, not a near-uniform split


def test_written_counts_match_and_test_set_has_every_class(data: tuple[Path, dict]):
    root, info = data
    counts = [len(list((root / TRAIN / n).iterdir())) for n in info["classes"]]
    assert counts == class_counts(SPEC) == list(info["train_counts"].values())
    labels = [r["Expected"] for r in _rows(root / TEST_LABELS_FILE)]
    assert {n: labels.count(n) for n in info["classes"]} == info["test_counts"]
    assert min(info["test_counts"].values()) >= 1


def test_images_are_rgb_jpegs_of_varied_sizes(data: tuple[Path, dict]):
    root, _ = data
    sizes = set()
    for path in [*sorted((root / TRAIN).rglob("*.jpg")), *sorted((root / TEST).glob("*.jpg"))]:
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB", path
            sizes.add(image.size)
            width, height = image.size
            assert 0.8 * SPEC.size - 1 <= min(width, height)
            assert max(width, height) <= 1.25 * SPEC.size + 1
    widths, heights = zip(*sizes, strict=True)
    assert len(sizes) > 20 and len(set(widths)) > 5 and len(set(heights)) > 5
    assert any(w != h for w, h in sizes)


def test_csvs_have_one_row_per_test_image(data: tuple[Path, dict]):
    root, info = data
    ids = [f"img{i}.jpg" for i in range(SPEC.test_images)]
    labels = _rows(root / TEST_LABELS_FILE)
    sample = _rows(root / "sample_submission.csv")
    assert [r["Id"] for r in labels] == ids == [r["Id"] for r in sample]
    assert {r["Expected"] for r in labels} <= set(info["classes"])
    assert {r["Expected"] for r in sample} == {"bart_simpson"}


def test_same_seed_same_bytes_other_seed_differs(
    data: tuple[Path, dict], other: Path, tmp_path: Path
):
    root, _ = data
    _write(tmp_path / "again", SPEC)
    assert _files(tmp_path / "again") == _files(root)
    other_files = _files(other)
    assert other_files.keys() == _files(root).keys()
    assert other_files != _files(root)
    first = str(TRAIN / CLASS_NAMES[0] / "pic_0000.jpg")
    assert other_files[first] != _files(root)[first]


@pytest.mark.parametrize(
    "bad",
    [
        {"classes": 1},
        {"classes": 43},
        {"images": 23, "classes": 6, "min_per_class": 4},
        {"size": 31},
    ],
)
def test_bad_specs_are_rejected(bad: dict, tmp_path: Path):
    spec = replace(SPEC, **bad)
    with pytest.raises(ValueError):
        class_counts(spec)
    with pytest.raises(ValueError):
        write_simpsons(tmp_path, spec)
    assert not any(tmp_path.iterdir())


def test_every_class_looks_different():
    looks = [(c.shape, c.accessory) for c in CHARACTERS]
    assert len(set(looks)) == len(CHARACTERS) == len(CLASS_NAMES) == 42
    assert len({(c.shape, round(c.hue, 3)) for c in CHARACTERS}) == 42
    hues = sorted(c.hue for c in CHARACTERS[:6])
    gaps = np.diff([*hues, hues[0] + 1])
    assert gaps.min() > 0.05  # the classes small specs use are far apart on the colour wheel


def _colour(path: Path) -> np.ndarray:
    """The character's colour, model-free: the mean chromaticity of the 15% most saturated
    pixels of the 16x16 thumbnail (the backgrounds are desaturated on purpose)."""
    with Image.open(path) as image:
        pixels = np.asarray(image.resize((16, 16), Image.Resampling.BOX), np.float64)
    pixels = pixels.reshape(-1, 3)
    saturation = pixels.max(axis=1) - pixels.min(axis=1)
    top = pixels[saturation >= np.quantile(saturation, 0.85)] + 1.0
    return (top / top.sum(axis=1, keepdims=True)).mean(axis=0)


def test_nearest_colour_centroid_tells_classes_apart(data: tuple[Path, dict], other: Path):
    root, info = data
    names = info["classes"]
    centroids = np.stack(
        [np.mean([_colour(p) for p in (root / TRAIN / n).glob("*.jpg")], axis=0) for n in names]
    )
    x, y = [], []
    for k, name in enumerate(names):  # held out: the other seed's training images
        for path in sorted((other / TRAIN / name).glob("*.jpg")):
            x.append(_colour(path))
            y.append(k)
    x, y = np.stack(x), np.array(y)
    predicted = ((x[:, None, :] - centroids[None]) ** 2).sum(axis=-1).argmin(axis=1)
    accuracy = (predicted == y).mean()
    balanced = np.mean([(predicted[y == k] == k).mean() for k in range(len(names))])
    majority = np.bincount(y).max() / len(y)
    assert accuracy > 0.8 and balanced > 0.6 and accuracy > majority + 0.3, (accuracy, balanced)
