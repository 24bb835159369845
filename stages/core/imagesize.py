"""The side images are cached at when `preprocess.size` is null: the data's own size, capped at
the protocol's, never upsampled (128-px photos stay 128 px instead of becoming 4× the pixels)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image

MULTIPLE = 32  # networks halve the side up to five times (UNet, FPN strides to 32)


def native_side(paths: Iterable[str], longer: bool) -> int:
    """The median over images of their longer (letterboxing) or shorter (squashing to a square)
    side, read from the file headers only."""
    sides = []
    for path in paths:
        with Image.open(path) as image:
            sides.append(max(image.size) if longer else min(image.size))
    return int(np.median(sides)) if sides else 0


def chosen_size(
    paths: Iterable[str],
    chosen: int | None,
    builtin: int | None,
    protocol: int,
    longer: bool,
    minimum: int,
) -> tuple[int, str]:
    """(side, why): the params' size, else the built-in data's, else the native side floored to
    a multiple of 32, capped at `protocol` and at least `minimum`."""
    if chosen:
        return chosen, "set by preprocess.size"
    if builtin:
        return builtin, "the built-in data's size"
    which = "longer" if longer else "shorter"
    native = native_side(paths, longer)
    if native >= protocol:
        return (
            protocol,
            f"the protocol's {protocol} px (the images' median {which} side is {native} px)",
        )
    side = max(minimum, native // MULTIPLE * MULTIPLE)
    return side, (
        f"the images' own size: median {which} side {native} px, below the protocol's "
        f"{protocol} px, so never upsampled (floored to a multiple of {MULTIPLE})"
    )
