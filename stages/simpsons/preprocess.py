"""preprocess: drop unreadable files and byte-identical duplicates, split per class so that even
a 3-image class lands in train, validation and test, and cache every split resized to a square
uint8 tensor (one file per split) so training never decodes a JPEG."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from PIL import Image

from stages.core.context import StepContext
from stages.core.fsio import dump_json, staged_outputs
from stages.simpsons.files import CLASSES_FILE
from stages.simpsons.schema import ImageIndex, read_test_labels, scan

SPLITS = ("train", "val", "test", "predict")


def assign_splits(
    index: ImageIndex,
    test_labels: pd.Series | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """Per class: at least one image in validation (and in test, unless the test folder has
    labels), the rest in train. The unlabelled test folder is the `predict` split."""
    frame = index.frame[index.frame["readable"]].drop_duplicates("sha1")
    rng = np.random.default_rng(seed)
    labelled = frame[frame["split"] == "train"]
    parts = []
    for _, group in labelled.groupby("label", sort=True):
        order = group.iloc[rng.permutation(len(group))]
        n = len(order)
        n_val = max(1, round(n * val_fraction))
        n_test = 0 if test_labels is not None else max(1, round(n * test_fraction))
        n_test = min(n_test, n - n_val - 1)
        names = ["val"] * n_val + ["test"] * n_test + ["train"] * (n - n_val - n_test)
        parts.append(order.assign(split=names))
    unlabelled = frame[frame["split"] == "test"].assign(split="predict", label=None)
    parts.append(unlabelled)
    if test_labels is not None:
        names = unlabelled["path"].map(lambda p: p.rsplit("/", 1)[-1])
        known = unlabelled.assign(label=names.map(test_labels), split="test")
        parts.append(known[known["label"].notna()])
    return pd.concat(parts, ignore_index=True)[["path", "label", "split"]]


def load_square(path: str, size: int) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))


def cache(rows: pd.DataFrame, classes: list[str], size: int) -> dict:
    images = (
        np.stack([load_square(p, size) for p in rows["path"]])
        if len(rows)
        else (np.zeros((0, size, size, 3), np.uint8))
    )
    lookup = {name: i for i, name in enumerate(classes)}
    return {
        "images": torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        "labels": torch.tensor([lookup.get(label, -1) for label in rows["label"]]),
        "names": [p.rsplit("/", 1)[-1] for p in rows["path"]],
    }


def run(ctx: StepContext) -> None:
    params = ctx.task_params.preprocess
    index = scan(ctx.paths.raw)
    splits = assign_splits(
        index,
        read_test_labels(ctx.paths.raw),
        params.val_fraction,
        params.test_fraction,
        ctx.common.seed,
    )
    classes = index.classes
    out = ctx.paths.processed
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        for split in SPLITS:
            torch.save(
                cache(splits[splits["split"] == split], classes, params.image_size),
                tmp / f"{split}.pt",
            )
        splits.to_csv(tmp / "splits.csv", index=False)
        counts = splits.groupby("split").size().to_dict()
        (tmp / CLASSES_FILE).write_text(
            dump_json({"classes": classes, "counts": counts}), encoding="utf-8"
        )
