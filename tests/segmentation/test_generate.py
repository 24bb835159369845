"""The builtin PH2 generator: the real archive's layout and metadata table, exact binary masks,
determinism, hair that never touches the mask, and a task that is fair (visible lesions) but not
trivial (an Otsu threshold fails)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull

from stages.segmentation.generate import (
    IMAGES_DIR,
    METADATA_FILE,
    ROOT_DIR,
    GeneratorSpec,
    diagnosis_counts,
    image_ids,
    metadata_text,
    plan,
    render,
    write_ph2,
)

SPEC = GeneratorSpec(images=12, width=64, height=48)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, dict]:
    dest = tmp_path_factory.mktemp("ph2")
    return dest, write_ph2(dest, SPEC)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _paths(root: Path, name: str) -> tuple[Path, Path]:
    folder = root / "PH2Dataset" / "PH2 Dataset images" / name
    return (
        folder / f"{name}_Dermoscopic_Image" / f"{name}.bmp",
        folder / f"{name}_lesion" / f"{name}_lesion.bmp",
    )


def _mask(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _table(text: str) -> list[list[str]]:
    """The `||` rows of PH2_dataset.txt as lists of stripped cells (the legend is skipped)."""
    rows = [line for line in text.splitlines() if line.startswith("||")]
    return [[cell.strip() for cell in row.split("||")[1:-1]] for row in rows]


def test_layout_is_the_real_one(data: tuple[Path, dict]):
    root, info = data
    assert (ROOT_DIR, IMAGES_DIR, METADATA_FILE) == (
        "PH2Dataset",
        "PH2Dataset/PH2 Dataset images",
        "PH2Dataset/PH2_dataset.txt",
    )
    assert [p.name for p in root.iterdir()] == ["PH2Dataset"]
    assert sorted(p.name for p in (root / ROOT_DIR).iterdir()) == [
        "PH2 Dataset images",
        "PH2_dataset.txt",
    ]
    ids = image_ids(SPEC)
    assert sorted(p.name for p in (root / IMAGES_DIR).iterdir()) == ids
    for name in ids:
        folder = root / IMAGES_DIR / name
        assert sorted(p.name for p in folder.iterdir()) == [
            f"{name}_Dermoscopic_Image",
            f"{name}_lesion",
            f"{name}_roi",
        ]
        assert [p.name for p in (folder / f"{name}_Dermoscopic_Image").iterdir()] == [f"{name}.bmp"]
        assert [p.name for p in (folder / f"{name}_lesion").iterdir()] == [f"{name}_lesion.bmp"]
        for roi in (folder / f"{name}_roi").iterdir():
            assert roi.name.startswith(f"{name}_R") and roi.suffix == ".bmp", roi
    assert info["images"] == SPEC.images
    assert sum(info["diagnosis_counts"].values()) == SPEC.images


@pytest.mark.parametrize("images", [1, 12, 200, 436, 437, 999])
def test_ids_look_like_the_real_ones(images: int):
    ids = image_ids(replace(SPEC, images=images))
    assert len(ids) == images and len(set(ids)) == images and ids == sorted(ids)
    numbers = [int(i[3:]) for i in ids]
    assert all(len(i) == 6 and i.startswith("IMD") for i in ids)
    if images <= 436:  # inside the real range IMD002..IMD437
        assert min(numbers) >= 2 and max(numbers) <= 437
    else:
        assert min(numbers) >= 1 and max(numbers) <= 999
    if 1 < images < 436:  # gaps, like the real set
        assert max(numbers) - min(numbers) + 1 > images


def test_ids_follow_the_seed():
    spec = GeneratorSpec()
    assert image_ids(spec) == image_ids(GeneratorSpec())
    assert image_ids(spec) != image_ids(replace(spec, seed=spec.seed + 1))


def test_images_are_rgb_bmps_and_masks_exact_binary(data: tuple[Path, dict]):
    root, info = data
    coverages = []
    for name in image_ids(SPEC):
        image_path, mask_path = _paths(root, name)
        with Image.open(image_path) as image:
            assert image.format == "BMP" and image.mode == "RGB", name
            assert image.size == (SPEC.width, SPEC.height)
            pixels = np.asarray(image)
        with Image.open(mask_path) as mask_image:
            assert mask_image.format == "BMP" and mask_image.mode == "L", name
            assert mask_image.size == image.size
        assert image_path.read_bytes()[28] == 24 and mask_path.read_bytes()[28] == 8  # bits
        mask = _mask(mask_path)
        assert set(np.unique(mask).tolist()) == {0, 255}, name
        coverages.append((mask == 255).mean())
        assert pixels.std() > 10  # a picture, not a flat fill
    assert all(0.05 <= c <= 0.65 for c in coverages), coverages
    assert 0.15 <= np.mean(coverages) <= 0.45
    assert info["mean_coverage"] == pytest.approx(np.mean(coverages))


@pytest.mark.parametrize("n", [1, 2, 3, 5, 12, 50, 199, 200, 999])
def test_diagnosis_counts_keep_the_real_shares(n: int):
    counts = diagnosis_counts(n)
    assert sum(counts) == n and len(counts) == 3
    assert all(abs(c - share * n) < 1 for c, share in zip(counts, (0.4, 0.4, 0.2), strict=True))


def test_metadata_table_for_the_real_size():
    lesions = plan(GeneratorSpec())
    rows = _table(metadata_text(lesions))
    header, body = rows[0], rows[1:]
    assert header[0] == "Name" and "Clinical Diagnosis" in header
    assert "Histological Diagnosis" in header and "Colors" in header
    column = header.index("Clinical Diagnosis")
    assert [r[0] for r in body] == image_ids(GeneratorSpec())
    labels = [int(r[column]) for r in body]
    assert [labels.count(k) for k in range(3)] == [80, 80, 40]
    assert labels != sorted(labels)  # shuffled over the ids, not in blocks
    assert labels == [lesion.diagnosis for lesion in lesions]
    criteria = [r[header.index("Colors") - 1].split("|") for r in body]
    assert all(len(c) == 6 for c in criteria)
    assert {r[header.index("Histological Diagnosis")] for r in body if r[column] == "2"} == {
        "Melanoma"
    }
    colours = [set(r[header.index("Colors")].split()) for r in body]
    assert all(c and c <= set("123456") for c in colours)
    # melanomas are the multicoloured ones, as in the real set
    many = [len(c) for c, label in zip(colours, labels, strict=True) if label == 2]
    few = [len(c) for c, label in zip(colours, labels, strict=True) if label == 0]
    assert np.mean(many) > np.mean(few) + 1


def test_written_metadata_matches_the_images(data: tuple[Path, dict]):
    root, info = data
    text = (root / METADATA_FILE).read_text(encoding="utf-8")
    assert "Legend:" in text  # the real file ends with one; loaders must skip it
    rows = _table(text)
    column = rows[0].index("Clinical Diagnosis")
    assert [r[0] for r in rows[1:]] == image_ids(SPEC)
    labels = [int(r[column]) for r in rows[1:]]
    assert [labels.count(k) for k in range(3)] == diagnosis_counts(SPEC.images) == [5, 5, 2]
    assert list(info["diagnosis_counts"].values()) == [5, 5, 2]


def test_same_spec_same_bytes_other_seed_differs(data: tuple[Path, dict], tmp_path: Path):
    root, _ = data
    write_ph2(tmp_path / "again", SPEC)
    again = _files(tmp_path / "again")
    assert again == _files(root)
    other = replace(SPEC, seed=SPEC.seed + 1)
    write_ph2(tmp_path / "other", other)
    other_files = _files(tmp_path / "other")

    def images(files: dict[str, bytes]) -> list[bytes]:
        return [v for k, v in files.items() if "_Dermoscopic_Image" in k]

    assert len(images(other_files)) == len(images(again)) == SPEC.images
    assert set(images(other_files)).isdisjoint(images(again))
    assert other_files[METADATA_FILE] != again[METADATA_FILE]


def test_hair_crosses_lesions_but_never_changes_the_mask(data: tuple[Path, dict]):
    root, _ = data
    hairy, crossing = 0, 0
    for index, name in enumerate(image_ids(SPEC)):
        bare = render(SPEC, index, hair=False)
        image_path, mask_path = _paths(root, name)
        assert np.array_equal(_mask(mask_path) == 255, bare.mask), name
        with Image.open(image_path) as image:
            written = np.asarray(image)
        assert np.array_equal(render(SPEC, index).image, written)
        changed = np.abs(written.astype(int) - bare.image.astype(int)).max(axis=2) > 20
        if changed.any():
            hairy += 1
            # hair is dark: where it changed the picture, it darkened it
            assert written[changed].mean() < bare.image[changed].mean() - 10, name
            crossing += bool((changed & bare.mask).any())
    assert 0 < hairy < SPEC.images  # some images have hair, some none
    assert crossing >= 2


def _otsu(gray: np.ndarray) -> int:
    p = np.bincount(gray.ravel(), minlength=256) / gray.size
    w0, mu = np.cumsum(p), np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w0 - mu) ** 2 / (w0 * (1 - w0))
    return int(np.nanargmax(between))


def test_lesions_are_visible_but_thresholding_fails():
    spec = GeneratorSpec(images=30, width=96, height=72, seed=5)
    ious, contrasts = [], []
    for index in range(spec.images):
        sample = render(spec, index, hair=False)
        gray = np.asarray(Image.fromarray(sample.image).convert("L"), np.float64)
        mask = sample.mask
        # fair: the lesion is darker than the skin right around it (its 3..8 px outer ring)
        distance = ndimage.distance_transform_edt(~mask)
        ring = ~mask & (distance > 3) & (distance < 8)
        if ring.any():
            contrasts.append(gray[ring].mean() - gray[mask].mean())
        predicted = gray <= _otsu(gray.astype(np.uint8))
        ious.append((predicted & mask).sum() / (predicted | mask).sum())
    assert min(contrasts) > 8 and np.median(contrasts) > 20, contrasts
    assert 0.35 < np.mean(ious) < 0.8, np.mean(ious)


def _solidity(mask: np.ndarray) -> float:
    """Area over convex hull area (pixel corners): 1 for a convex lesion, less for a ragged one.
    A convex lesion cut by the image border stays convex, so border lesions count too."""
    ys, xs = np.nonzero(mask)
    corners = [np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]
    return float(mask.sum() / ConvexHull(np.concatenate(corners)).volume)


def test_melanomas_are_more_irregular_than_common_nevi():
    spec = GeneratorSpec(images=60, width=96, height=72, seed=3)
    scores: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for index, lesion in enumerate(plan(spec)):
        scores[lesion.diagnosis].append(_solidity(render(spec, index, hair=False).mask))
    assert [len(v) for v in scores.values()] == [24, 24, 12]
    assert min(scores[0]) > 0.94  # common nevi are round
    assert np.mean(scores[2]) < np.mean(scores[0]) - 0.01, scores
    assert min(scores[2]) < 0.93  # and some melanomas clearly ragged


def test_some_lesions_touch_the_border():
    spec = GeneratorSpec(images=40, width=64, height=48, seed=11)
    touching = 0
    for index in range(spec.images):
        mask = render(spec, index, hair=False).mask
        touching += bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
    assert 0 < touching < spec.images


@pytest.mark.parametrize("bad", [{"images": 0}, {"images": 1000}, {"width": 31}, {"height": 16}])
def test_bad_specs_are_rejected(bad: dict, tmp_path: Path):
    spec = replace(SPEC, **bad)
    with pytest.raises(ValueError):
        image_ids(spec)
    with pytest.raises(ValueError):
        write_ph2(tmp_path, spec)
    assert not any(tmp_path.iterdir())
