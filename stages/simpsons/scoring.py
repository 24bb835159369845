"""Any model version scored on the current test images: micro-F1 (= accuracy with one label per
image) over resampled images, per-character deltas, the images two versions disagree on."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from stages.core import tracking
from stages.core.comparison import ItemScores, Unscorable, mean_metric
from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.core.training import resolve_device
from stages.simpsons.files import CLASSES_FILE
from stages.simpsons.train import predict

SHOWN = 6


def test_split(ctx: StepContext) -> tuple[dict, list[str]]:
    processed = ctx.paths.processed
    return torch.load(processed / "test.pt"), read_json(processed / CLASSES_FILE)["classes"]


def item_scores(test: dict, classes: Sequence[str], predicted: np.ndarray) -> ItemScores:
    labels = test["labels"].numpy()
    return ItemScores(
        metric=mean_metric(labels == predicted),
        items=len(labels),
        groups=[classes[i] for i in labels],
        outcomes=[classes[i] for i in predicted],
        truths=[classes[i] for i in labels],
        item_ids=list(test["names"]),
    )


def registered_scorer(ctx: StepContext) -> Callable[[str], ItemScores]:
    import mlflow

    device = resolve_device(ctx.common.device)
    split = functools.cache(lambda: test_split(ctx))  # read once, and only if a version is scored

    def score(model_uri: str) -> ItemScores:
        test, classes = split()
        card = tracking.model_card(model_uri)
        if card.get("classes") != list(classes):
            known = len(card["classes"]) if "classes" in card else "unknown"
            raise Unscorable(
                f"it predicts {known} classes, the current test split has {len(classes)} "
                "(other classes or another order)"
            )
        network = mlflow.pytorch.load_model(model_uri, map_location="cpu")
        return item_scores(test, classes, predict(network, test["images"], device).argmax(axis=1))

    return score


def disagreement_figure(ctx: StepContext, indices, a: ItemScores, b: ItemScores, labels):
    test, _ = test_split(ctx)
    shown = list(indices)[:SHOWN]
    fig, axes = plt.subplots(1, len(shown), figsize=(2.6 * len(shown), 3.2), squeeze=False)
    for ax, i in zip(axes[0], shown, strict=True):
        ax.imshow(test["images"][i].permute(1, 2, 0).numpy())
        ax.set_title(
            f"true {a.truths[i]}\n{labels[0].split()[0]}: {a.outcomes[i]}\n"
            f"{labels[1].split()[0]}: {b.outcomes[i]}",
            fontsize=8,
        )
        ax.axis("off")
    fig.tight_layout()
    return fig
