"""evaluate: micro-F1 (the Kaggle metric, = accuracy) and macro-F1 on the held-out test, per-class
precision / recall / F1, the confusion matrix, the misclassified images, the submission."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torchmetrics.classification import (
    MulticlassConfusionMatrix,
    MulticlassF1Score,
    MulticlassPrecision,
    MulticlassRecall,
)

from stages.core.context import StepContext
from stages.core.evaluation import SameData, publish_evaluation
from stages.core.records import HISTORY_FILE
from stages.core.training import resolve_device
from stages.simpsons.files import PER_CLASS
from stages.simpsons.model import build_network
from stages.simpsons.params import EvaluateParams
from stages.simpsons.scoring import item_scores, registered_scorer
from stages.simpsons.train import MODEL_FILE, predict


def load_network(path) -> tuple[torch.nn.Module, list[str]]:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    network, _ = build_network(saved["architecture"], len(saved["classes"]), pretrained=False)
    network.load_state_dict(saved["state_dict"])
    return network.eval(), saved["classes"]


def scores(labels: torch.Tensor, predicted: torch.Tensor, classes: int) -> dict:
    def metric(kind, average):
        return kind(classes, average=average)(predicted, labels)

    return {
        "f1_micro": float(metric(MulticlassF1Score, "micro")),
        "f1_macro": float(metric(MulticlassF1Score, "macro")),
        "accuracy": float((predicted == labels).float().mean()),
        "per_class": pd.DataFrame(
            {
                "precision": metric(MulticlassPrecision, "none").numpy(),
                "recall": metric(MulticlassRecall, "none").numpy(),
                "f1": metric(MulticlassF1Score, "none").numpy(),
                "support": torch.bincount(labels, minlength=classes).numpy(),
            }
        ),
        "confusion": MulticlassConfusionMatrix(classes)(predicted, labels).numpy(),
    }


def confusion_figure(confusion: np.ndarray, classes: list[str]) -> plt.Figure:
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    side = 3 + 0.35 * len(classes)
    fig, ax = plt.subplots(figsize=(side, side))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax.text(
                j,
                i,
                int(count),
                ha="center",
                va="center",
                fontsize=6,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    ax.set(
        title="Confusion matrix (held-out test; rows = truth)", xlabel="predicted", ylabel="true"
    )
    return fig


def per_class_figure(per_class: pd.DataFrame) -> plt.Figure:
    ordered = per_class.sort_values("support")
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(ordered) + 1.5))
    ax.barh(
        [f"{n} ({s})" for n, s in zip(ordered.index, ordered["support"], strict=True)],
        ordered["f1"],
        color="tab:blue",
    )
    ax.set(title="F1 per class (support in brackets)", xlim=(0, 1.02), xlabel="F1")
    return fig


def misclassified_figure(images: torch.Tensor, labels, predicted, classes, shown: int):
    wrong = np.flatnonzero(labels.numpy() != predicted.numpy())[:shown]
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(5, 1))
        ax.text(0.5, 0.5, "no misclassified test images", ha="center", va="center")
        ax.axis("off")
        return fig
    cols = min(8, len(wrong))
    rows = int(np.ceil(len(wrong) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 2.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(images[i].permute(1, 2, 0).numpy())
        ax.set_title(f"true {classes[labels[i]]}\npred {classes[predicted[i]]}", fontsize=6)
    fig.tight_layout()
    return fig


def curves_figure(history: pd.DataFrame) -> plt.Figure:
    fig, (loss, f1) = plt.subplots(1, 2, figsize=(10, 3.5))
    for column in ("train_loss", "val_loss"):
        if column in history:
            loss.plot(history["epoch"], history[column], marker="o", ms=3, label=column)
    for column in ("val_f1_micro", "val_f1_macro"):
        if column in history:
            f1.plot(history["epoch"], history[column], marker="o", ms=3, label=column)
    loss.set(title="loss", xlabel="epoch")
    f1.set(title="validation F1", xlabel="epoch", ylim=(0, 1.02))
    loss.legend()
    f1.legend()
    return fig


def run(ctx: StepContext) -> None:
    params: EvaluateParams = ctx.task_params.evaluate
    paths = ctx.paths
    network, classes = load_network(paths.models / MODEL_FILE)
    test = torch.load(paths.processed / "test.pt")
    unlabelled = torch.load(paths.processed / "predict.pt")

    device = resolve_device(ctx.common.device)
    predicted = torch.from_numpy(predict(network, test["images"], device).argmax(axis=1))
    result = scores(test["labels"], predicted, len(classes))
    per_class = result["per_class"].set_axis(classes)
    metrics = {
        "headline": {"metric": "f1_micro", "value": result["f1_micro"], "split": "test"},
        "test": {k: result[k] for k in ("f1_micro", "f1_macro", "accuracy")},
        "test_images": len(test["labels"]),
        "worst_classes": per_class["f1"].nsmallest(3).round(4).to_dict(),
    }
    submission = pd.DataFrame(
        {
            "Id": unlabelled["names"],
            "Expected": [
                classes[i] for i in predict(network, unlabelled["images"], device).argmax(axis=1)
            ]
            if len(unlabelled["names"])
            else [],
        }
    )
    history = pd.read_csv(paths.models / HISTORY_FILE)
    figures = {
        "confusion.png": confusion_figure(result["confusion"], classes),
        "per_class_f1.png": per_class_figure(per_class),
        "misclassified.png": misclassified_figure(
            test["images"], test["labels"], predicted, classes, params.misclassified_shown
        ),
        "curves.png": curves_figure(history),
    }
    same_data = SameData(item_scores(test, classes, predicted.numpy()), registered_scorer(ctx))
    publish_evaluation(
        ctx, metrics, metrics["test"], submission, figures, same_data, {PER_CLASS: per_class}
    )
