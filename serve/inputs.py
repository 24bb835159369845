"""Uploads checked before any model sees them: one clear message per bad input (gr.Error in
the page, an error in the API), never a stack trace."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

MAX_PIXELS = 25_000_000  # a 5000 x 5000 photo; a decompression bomb is refused before decoding
IMAGE_FORMATS = {"PNG", "JPEG", "BMP", "WEBP", "TIFF", "GIF"}
MAX_TEXT_CHARS = 5_000
MAX_CSV_ROWS = 100_000


class BadInput(ValueError):
    """What the user sent cannot be used; the message says what and what was expected."""


def read_image(path: str | Path | None) -> Image.Image:
    """An RGB image from an upload, refusing what is not a whole image of a bounded size."""
    if path is None:
        raise BadInput("no image: upload a PNG or JPEG")
    name = Path(path).name
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format not in IMAGE_FORMATS:
                    raise BadInput(f"{name}: {image.format} is not an image type this app reads")
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise BadInput(
                        f"{name}: {width}x{height} pixels, expected at most {MAX_PIXELS:,}"
                    )
                image.load()  # a truncated file fails here, not inside a model
                return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadInput(f"{name}: too many pixels (expected at most {MAX_PIXELS:,})") from None
    except UnidentifiedImageError:
        raise BadInput(f"{name}: not an image (expected PNG or JPEG)") from None
    except OSError as exc:  # truncated or corrupt data
        raise BadInput(f"{name}: the image is damaged ({exc})") from None


def as_uint8_chw(image: Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    if size is not None:
        image = image.resize(size, Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def read_csv_upload(path: str | Path | None, columns: dict[str, list | None]) -> pd.DataFrame:
    """A CSV with exactly the expected columns (extra ones are named and refused), each
    categorical value among its choices and each numeric column numeric."""
    if path is None:
        raise BadInput("no CSV: upload a file with the competition's columns")
    name = Path(path).name
    try:
        frame = pd.read_csv(path, nrows=MAX_CSV_ROWS + 1)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise BadInput(f"{name}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if len(frame) > MAX_CSV_ROWS:
        raise BadInput(f"{name}: more than {MAX_CSV_ROWS:,} rows")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise BadInput(f"{name}: missing column(s) {', '.join(missing)}")
    extra = [c for c in frame.columns if c not in columns and c not in ("Id", "Churn")]
    if extra:
        raise BadInput(f"{name}: unexpected column(s) {', '.join(map(str, extra))}")
    for column, allowed in columns.items():
        if allowed is None:
            values = pd.to_numeric(frame[column].replace(" ", np.nan), errors="coerce")
            bad = frame[column][values.isna() & frame[column].notna()]
            if len(bad):
                raise BadInput(
                    f"{name}: column {column}: {bad.iloc[0]!r} (row {bad.index[0] + 1}) "
                    "is not a number"
                )
            frame[column] = values
        else:
            text = {str(a) for a in allowed}
            bad = frame[column][~frame[column].astype(str).isin(text)]
            if len(bad):
                raise BadInput(
                    f"{name}: column {column}: {bad.iloc[0]!r} (row {bad.index[0] + 1}), "
                    f"expected one of {', '.join(sorted(text))}"
                )
    return frame


def check_text(text: str | None) -> list[str]:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise BadInput("no text: type one sentence per line")
    if len(text) > MAX_TEXT_CHARS:
        raise BadInput(
            f"the text has {len(text):,} characters, expected at most {MAX_TEXT_CHARS:,}"
        )
    return lines
