"""preprocess: usable images only, a seeded train/val/test split (the hard-hat set has none),
every image letterboxed into a square (scaled to fit, padded right and bottom, so boxes only
scale) and cached as uint8 tensors with its boxes, labels and `difficult` flags, so training
never decodes a PNG. Degenerate boxes are dropped here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image

from stages.core.context import StepContext
from stages.core.fsio import dump_json, staged_outputs
from stages.core.imagesize import chosen_size
from stages.core.splits import SPLITS, random_splits
from stages.detection.files import SPLITS_FILE
from stages.detection.schema import scan, usable

REAL_SIZE = 416  # the hard-hat images' side


def letterbox(path: str, size: int) -> tuple[np.ndarray, float]:
    """The image scaled to fit a size×size square (padded with grey), and the scale."""
    with Image.open(path) as img:
        rgb = img.convert("RGB")
        scale = size / max(rgb.size)
        resized = rgb.resize(
            (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.BILINEAR
        )
    canvas = np.full((size, size, 3), 114, np.uint8)
    canvas[: resized.height, : resized.width] = np.asarray(resized)
    return canvas, scale


def cache(rows: pd.DataFrame, objects: pd.DataFrame, classes: list[str], size: int) -> dict:
    label_ids = {name: i + 1 for i, name in enumerate(classes)}  # 0 is the background
    kept = objects[objects["degenerate"].isna()]
    by_image = dict(list(kept.groupby("name")))
    images, boxes, labels, difficult, scales = [], [], [], [], []
    for name, path in zip(rows["name"], rows["image"], strict=True):
        picture, scale = letterbox(path, size)
        found = by_image.get(name, kept.iloc[:0])
        images.append(picture)
        scales.append(scale)
        boxes.append(
            torch.tensor(found[["xmin", "ymin", "xmax", "ymax"]].to_numpy(float) * scale)
            .float()
            .reshape(-1, 4)
        )
        labels.append(torch.tensor([label_ids[x] for x in found["label"]], dtype=torch.int64))
        difficult.append(torch.tensor(found["difficult"].to_numpy(bool)))
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return {
        "images": torch.from_numpy(stacked).permute(0, 3, 1, 2).contiguous(),
        "boxes": boxes,
        "labels": labels,
        "difficult": difficult,
        "names": list(rows["name"]),
        "scales": scales,
        "classes": list(classes),
    }


def run(ctx: StepContext) -> None:
    params = ctx.task_params.preprocess
    classes = ctx.task_params.validate_.classes
    images, objects = scan(ctx.paths.raw, classes)
    ok = usable(images)
    split = random_splits(
        list(ok["name"]), params.val_fraction, params.test_fraction, ctx.common.seed
    )
    builtin = ctx.task_params.source.kind == "builtin"
    # letterboxed: the longer side bounds what is not upsampled
    size, size_reason = chosen_size(
        ok["image"],
        params.size,
        ctx.task_params.source.size if builtin else None,
        REAL_SIZE,
        True,
        64,
    )
    out = ctx.paths.processed
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        counts = {}
        for name in SPLITS:
            rows = ok[ok["name"].map(split) == name]
            cached = cache(rows, objects, classes, size)
            torch.save(cached, tmp / f"{name}.pt")
            per_class = torch.cat(cached["labels"]) if cached["labels"] else torch.zeros(0)
            counts[name] = {
                "images": len(rows),
                **{c: int((per_class == i + 1).sum()) for i, c in enumerate(classes)},
            }
        summary = {"size": size, "size_reason": size_reason, "classes": classes, "counts": counts}
        (tmp / SPLITS_FILE).write_text(dump_json(summary), encoding="utf-8")
