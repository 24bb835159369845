"""Any model version scored on the current test images: mean IoU over resampled images,
deltas by lesion size, the images where two versions' masks differ most."""

from __future__ import annotations

import functools
from collections.abc import Callable

import matplotlib.pyplot as plt
import pandas as pd
import torch

from stages.core import tracking
from stages.core.comparison import ItemScores, Unscorable, mean_metric
from stages.core.context import StepContext
from stages.core.training import resolve_device
from stages.segmentation.model import iou_dice, predict_logits

SHOWN = 6
LESION_SHARE_BINS = [0.0, 0.1, 0.25, 1.0]  # lesions by their share of the image
SIZE_NAMES = ["small", "medium", "large"]


def test_split(ctx: StepContext) -> dict:
    return torch.load(ctx.paths.processed / "test.pt")


def item_scores(test: dict, logits: torch.Tensor) -> ItemScores:
    iou, _ = iou_dice(logits, test["masks"])
    share = (test["masks"] > 0.5).float().mean(dim=(1, 2, 3)).numpy()
    size = pd.cut(
        share, LESION_SHARE_BINS, labels=["small", "medium", "large"], include_lowest=True
    )
    return ItemScores(
        metric=mean_metric(iou.numpy()),
        items=len(iou),
        groups=[f"{s} lesion" for s in size.astype(str)],
        outcomes=iou.numpy().round(4).tolist(),
        truths=share.round(3).tolist(),
        item_ids=list(test["cases"]),
    )


def registered_scorer(ctx: StepContext) -> Callable[[str], ItemScores]:
    import mlflow

    device = resolve_device(ctx.common.device)
    split = functools.cache(lambda: test_split(ctx))  # read once, and only if a version is scored

    def score(model_uri: str) -> ItemScores:
        test = split()
        size = int(test["images"].shape[-1])
        trained_at = tracking.model_card(model_uri).get("size")
        if trained_at != size:
            raise Unscorable(f"it was trained at {trained_at} px, the test split is {size} px")
        network = mlflow.pytorch.load_model(model_uri, map_location="cpu")
        return item_scores(test, predict_logits(network, test["images"], device))

    return score


def disagreement_figure(ctx: StepContext, indices, a: ItemScores, b: ItemScores, labels):
    """Each image with both versions' IoU; the masks are drawn from the scores' outcomes."""
    test = test_split(ctx)
    shown = list(indices)[:SHOWN]
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 3.0), squeeze=False)
    for ax, i in zip(axes[0], shown, strict=True):
        ax.imshow(test["images"][i].permute(1, 2, 0).numpy())
        ax.contour(test["masks"][i, 0].numpy(), levels=[0.5], colors="lime", linewidths=1)
        ax.set_title(
            f"{a.item_ids[i]}\nIoU {labels[0].split()[0]} {a.outcomes[i]:.3f} · "
            f"{labels[1].split()[0]} {b.outcomes[i]:.3f}",
            fontsize=8,
        )
        ax.axis("off")
    fig.tight_layout()
    return fig
