"""Finding and indexing PH2: the `IMD<nnn>` folders at whatever depth the archive put them
(`PH2Dataset/PH2 Dataset images/` in the original), each image with its lesion mask, their
sizes and the mask's make-up. Problems are recorded per row for validation, not raised here."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from stages.core.errors import UserError

CASE = re.compile(r"^IMD\d+$")
MASK_THRESHOLD = 127  # the usual protocol: mask > 0.5 (of 255)
IMAGE_SUFFIXES = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
COLUMNS = [
    "case",
    "folder",
    "image",
    "mask",
    "missing_mask",
    "unreadable",
    "width",
    "height",
    "size_mismatch",
    "coverage",
    "grey_share",
]


def find_cases_root(raw: Path) -> Path:
    """The folder holding the IMD<nnn> case folders (shallowest, in case of copies)."""
    parents = {p.parent for p in raw.rglob("IMD*") if p.is_dir() and CASE.match(p.name)}
    if not parents:
        raise UserError(
            f"{raw}: no PH2 case folders found (expected "
            "PH2Dataset/PH2 Dataset images/IMD<nnn>/IMD<nnn>_Dermoscopic_Image/IMD<nnn>.bmp)"
        )
    return min(parents, key=lambda p: (len(p.parts), str(p)))


def _find(folder: Path, stem: str) -> Path | None:
    if not folder.is_dir():
        return None
    found = [p for p in folder.iterdir() if p.stem == stem and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(found)[0] if found else None


def read_mask(path: Path) -> np.ndarray:
    """A boolean lesion mask (PH2 masks are 0/255)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > MASK_THRESHOLD


def _describe(case: Path) -> dict:
    name = case.name
    image = _find(case / f"{name}_Dermoscopic_Image", name)
    mask = _find(case / f"{name}_lesion", f"{name}_lesion")
    row = dict.fromkeys(COLUMNS)
    row.update(
        case=name,
        folder=str(case),
        image=str(image) if image else None,
        mask=str(mask) if mask else None,
        missing_mask=name if mask is None or image is None else None,
    )
    if image is None or mask is None:
        return row
    try:
        with Image.open(image) as img:
            img.verify()
        with Image.open(image) as img:
            width, height = img.size
        with Image.open(mask) as m:
            grey = np.asarray(m.convert("L"))
    except (UnidentifiedImageError, OSError, SyntaxError):
        row["unreadable"] = name
        return row
    row.update(
        width=width,
        height=height,
        size_mismatch=None if grey.shape == (height, width) else name,
        coverage=float((grey > MASK_THRESHOLD).mean()),
        grey_share=float(((grey > 0) & (grey < 255)).mean()),
    )
    return row


def scan(raw: Path) -> pd.DataFrame:
    """One row per case folder (see COLUMNS); `missing_mask`, `unreadable` and `size_mismatch`
    hold the case name where that problem occurs, so validation failures name the folder."""
    root = find_cases_root(raw)
    cases = sorted(p for p in root.iterdir() if p.is_dir() and CASE.match(p.name))
    return pd.DataFrame([_describe(case) for case in cases], columns=COLUMNS)


def usable(index: pd.DataFrame) -> pd.DataFrame:
    """Cases with both files readable and of the same size."""
    ok = index["missing_mask"].isna() & index["unreadable"].isna() & index["size_mismatch"].isna()
    return index[ok].reset_index(drop=True)
