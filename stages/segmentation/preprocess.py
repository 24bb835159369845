"""preprocess: usable pairs only, a seeded train/val/test split (PH2's usual 100/50/50), every
split resized to squares and cached as uint8 tensors (images N×3×S×S, masks N×1×S×S in {0, 1})
so that training never decodes a BMP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image

from stages.core.context import StepContext
from stages.core.fsio import dump_json, staged_outputs
from stages.core.imagesize import chosen_size
from stages.core.splits import SPLITS, random_splits
from stages.segmentation.files import SPLITS_FILE
from stages.segmentation.schema import read_mask, scan, usable

# The usual PH2 protocol resizes to 256; the small builtin images train in minutes at 64.
BUILTIN_SIZE, PROTOCOL_SIZE = 64, 256


def load_pair(image: str, mask: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    with Image.open(image) as img:
        rgb = np.asarray(img.convert("RGB").resize((size, size), Image.BILINEAR))
    truth = Image.fromarray(read_mask(mask).astype(np.uint8) * 255)
    resized = np.asarray(truth.resize((size, size), Image.BILINEAR)) > 127  # mask > 0.5
    return rgb, resized


def cache(rows: pd.DataFrame, size: int) -> dict:
    pairs = [load_pair(i, m, size) for i, m in zip(rows["image"], rows["mask"], strict=True)]
    images = np.stack([p[0] for p in pairs]) if pairs else np.zeros((0, size, size, 3), np.uint8)
    masks = np.stack([p[1] for p in pairs]) if pairs else np.zeros((0, size, size), bool)
    return {
        "images": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        "masks": torch.from_numpy(masks.astype(np.uint8)).unsqueeze(1),
        "cases": list(rows["case"]),
    }


def run(ctx: StepContext) -> None:
    params = ctx.task_params.preprocess
    pairs = usable(scan(ctx.paths.raw))
    split = random_splits(
        list(pairs["case"]), params.val_fraction, params.test_fraction, ctx.common.seed
    )
    builtin = ctx.task_params.source.kind == "builtin"
    # squashed to a square: the shorter side bounds what is not upsampled
    size, size_reason = chosen_size(
        pairs["image"], params.size, BUILTIN_SIZE if builtin else None, PROTOCOL_SIZE, False, 32
    )
    out = ctx.paths.processed
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        for name in SPLITS:
            rows = pairs[pairs["case"].map(split) == name]
            torch.save(cache(rows, size), tmp / f"{name}.pt")
        summary = {
            "size": size,
            "size_reason": size_reason,
            "counts": {name: int((split == name).sum()) for name in SPLITS},
            "cases": {name: sorted(split.index[split == name]) for name in SPLITS},
        }
        (tmp / SPLITS_FILE).write_text(dump_json(summary), encoding="utf-8")
