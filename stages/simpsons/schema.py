"""Finding and indexing the images: class folders at whatever depth the archive put them
(`train/simpsons_dataset/<class>/` or `train/train/<class>/`), the unlabelled test folder, and
every file's size, mode and hash — unreadable files are kept in the index, marked, not fatal."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from stages.core.errors import UserError
from stages.core.sources import find_file
from stages.core.tables import read_csv

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp"}
TEST_FOLDERS = ("testset", "test")
TEST_LABELS_FILE = "test_labels.csv"  # builtin source only: labels of the test images


@dataclass(frozen=True)
class ImageIndex:
    """One row per file: path, label (None for test), split (train/test), width, height, mode,
    readable, sha1."""

    frame: pd.DataFrame
    class_root: Path
    test_root: Path | None

    @property
    def classes(self) -> list[str]:
        return sorted(self.frame.loc[self.frame["split"] == "train", "label"].unique())


def _images(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES | {".txt", ".csv", ""}
        and not p.name.startswith(".")
    )


def find_class_root(raw: Path) -> Path:
    """The shallowest folder outside the test set whose sub-folders hold images."""
    candidates = []
    for folder in [raw, *sorted(p for p in raw.rglob("*") if p.is_dir())]:
        if folder.name.lower() in TEST_FOLDERS or any(
            part.lower() in TEST_FOLDERS for part in folder.relative_to(raw).parts
        ):
            continue
        subfolders = [d for d in folder.iterdir() if d.is_dir()]
        with_images = [
            d
            for d in subfolders
            if any(f.suffix.lower() in IMAGE_SUFFIXES for f in d.iterdir() if f.is_file())
        ]
        if len(with_images) >= 2:
            candidates.append(folder)
    if not candidates:
        raise UserError(
            f"{raw}: no class folders with images found (expected "
            "train/simpsons_dataset/<class>/*.jpg)"
        )
    return min(candidates, key=lambda p: (len(p.parts), str(p)))


def find_test_root(raw: Path) -> Path | None:
    """The deepest `testset`/`test` folder that holds images directly (Kaggle nests it twice)."""
    found = [
        p
        for p in raw.rglob("*")
        if p.is_dir()
        and p.name.lower() in TEST_FOLDERS
        and any(f.suffix.lower() in IMAGE_SUFFIXES for f in p.iterdir() if f.is_file())
    ]
    return max(found, key=lambda p: len(p.parts)) if found else None


def describe(path: Path) -> dict:
    data = path.read_bytes()
    row = {
        "sha1": hashlib.sha1(data).hexdigest(),
        "width": 0,
        "height": 0,
        "mode": "",
        "readable": False,
    }
    try:
        with Image.open(path) as image:
            image.load()
            row.update(width=image.width, height=image.height, mode=image.mode, readable=True)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    return row


def scan(raw: Path) -> ImageIndex:
    class_root = find_class_root(raw)
    test_root = find_test_root(raw)
    rows = []
    for folder in sorted(d for d in class_root.iterdir() if d.is_dir()):
        for path in _images(folder):
            rows.append(
                {"path": str(path), "label": folder.name, "split": "train", **describe(path)}
            )
    if test_root is not None:
        for path in _images(test_root):
            rows.append({"path": str(path), "label": None, "split": "test", **describe(path)})
    frame = pd.DataFrame(rows)
    return ImageIndex(frame, class_root, test_root)


def read_test_labels(raw: Path) -> pd.Series | None:
    path = find_file(raw, TEST_LABELS_FILE)
    if path is None:
        return None
    labels = read_csv(path)
    return labels.set_index("Id")["Expected"]
