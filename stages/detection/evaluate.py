"""evaluate: every trained detector on the test split with torchmetrics' MeanAveragePrecision
(faster-coco-eval): mAP@0.5 (headline), mAP@[.5:.95], per-class AP and recall, `difficult`
objects excluded (VOC rule). Plots: test images with true and predicted boxes, per-class AP,
precision-recall curves, precision and recall against the confidence threshold, training curves.
The submission lists the test detections kept by the user's inference settings; the promotion
rule pairs the selected detector with the champion on the same test images (scoring.py)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from stages.core.context import StepContext
from stages.core.evaluation import SameData, publish_evaluation
from stages.core.fsio import read_json
from stages.core.records import HISTORY_FILE, SELECTION_FILE
from stages.core.training import resolve_device
from stages.detection.files import CLASSES_TABLE, MODELS_TABLE
from stages.detection.model import mean_average_precision, score_targets
from stages.detection.params import EvaluateParams
from stages.detection.scoring import (
    drawn,
    item_scores,
    kept_labels,
    predictions,
    registered_scorer,
)
from stages.detection.train import DETECTORS_DIR

IOU = 0.5


def load_detectors(models_dir) -> dict[str, dict]:
    return {
        path.stem: torch.load(path, map_location="cpu", weights_only=False)
        for path in sorted((models_dir / DETECTORS_DIR).glob("*.pt"))
    }


def score(predictions: list[dict], targets: list[dict]) -> tuple[dict, dict]:
    """(COCO-style summary over IoU .5:.95, the same at IoU 0.5 with per-class arrays)."""
    coco = mean_average_precision(class_metrics=True)
    at_50 = mean_average_precision(iou_thresholds=[IOU], class_metrics=True, extended_summary=True)
    for metric in (coco, at_50):
        metric.update(predictions, targets)
    return coco.compute(), at_50.compute()


def _per_class(values: torch.Tensor, present: torch.Tensor, classes: list[str]) -> dict:
    values = values.flatten().tolist() if values.numel() else []
    by_label = dict(zip(present.flatten().tolist(), values, strict=False))
    return {name: by_label.get(i + 1, float("nan")) for i, name in enumerate(classes)}


def class_table(coco: dict, at_50: dict, test: dict) -> pd.DataFrame:
    classes = test["classes"]
    labels = torch.cat(test["labels"]) if test["labels"] else torch.zeros(0, dtype=torch.int64)
    difficult = torch.cat(test["difficult"]) if test["difficult"] else torch.zeros(0, dtype=bool)
    table = pd.DataFrame(
        {
            "ap_50": _per_class(at_50["map_per_class"], at_50["classes"], classes),
            "ap": _per_class(coco["map_per_class"], coco["classes"], classes),
            "recall_50": _per_class(at_50["mar_100_per_class"], at_50["classes"], classes),
        }
    )
    table["objects"] = [int(((labels == i + 1) & ~difficult).sum()) for i in range(len(classes))]
    table["difficult"] = [int(((labels == i + 1) & difficult).sum()) for i in range(len(classes))]
    table.index.name = "class"
    # torchmetrics writes -1 (or nothing) for a class without objects: no score, not zero
    return table.astype(object).where(table >= 0, None)


def precision_by_threshold(at_50: dict, classes: list[str]) -> dict[str, pd.DataFrame]:
    """Per class, COCO's interpolated precision at each recall level with the lowest confidence
    that reaches it: the precision/recall a user gets by keeping detections above a threshold."""
    recall_levels = np.linspace(0, 1, at_50["precision"].shape[1])
    curves = {}
    for k, label in enumerate(at_50["classes"].flatten().tolist()):
        precision = at_50["precision"][0, :, k, 0, -1].numpy()
        scores = at_50["scores"][0, :, k, 0, -1].numpy()
        reached = precision > 0
        if label < 1 or label > len(classes) or not reached.any():
            continue
        curves[classes[label - 1]] = pd.DataFrame(
            {
                "recall": recall_levels[reached],
                "precision": precision[reached],
                "confidence": scores[reached],
            }
        )
    return curves


def at_threshold(curves: dict[str, pd.DataFrame], threshold: float) -> dict[str, dict]:
    """Precision and recall per class when detections below `threshold` are dropped."""
    result = {}
    for name, curve in curves.items():
        kept = curve[curve["confidence"] >= threshold]
        result[name] = (
            {"precision": float(kept["precision"].iloc[-1]), "recall": float(kept["recall"].max())}
            if len(kept)
            else {"precision": None, "recall": 0.0}
        )
    return result


def examples_figure(
    test: dict, predictions: list[dict], shown: int, threshold: float
) -> plt.Figure:
    classes = test["classes"]
    count = min(shown, len(test["names"]))
    fig, axes = plt.subplots(count, 2, figsize=(7, 3.4 * count), squeeze=False)
    for row, i in zip(axes, range(count), strict=True):
        image = test["images"][i]
        truth_names = [
            classes[int(label) - 1] + (" (difficult)" if hard else "")
            for label, hard in zip(test["labels"][i], test["difficult"][i], strict=True)
        ]
        found = predictions[i]
        found_names = [
            f"{classes[int(label) - 1]} {s:.2f}"
            for label, s in zip(found["labels"], found["scores"], strict=True)
        ]
        panels = [
            (drawn(image, test["boxes"][i], test["labels"][i], truth_names), "truth"),
            (
                drawn(image, found["boxes"], found["labels"], found_names),
                f"predicted (confidence ≥ {threshold:.2f})",
            ),
        ]
        for ax, (picture, title) in zip(row, panels, strict=True):
            ax.imshow(picture.permute(1, 2, 0).numpy())
            ax.set_title(f"{test['names'][i]}: {title}", fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def ap_figure(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    frame = pd.DataFrame({name: table["ap_50"] for name, table in tables.items()}).astype(float)
    fig, ax = plt.subplots(figsize=(1.6 * len(frame) + 3, 4))
    frame.plot.bar(ax=ax, rot=0)
    ax.set_ylim(0, 1)
    ax.set_ylabel("AP@0.5 (test)")
    ax.set_title("Average precision per class")
    ax.grid(axis="y", alpha=0.3)
    return fig


def pr_figure(curves: dict[str, pd.DataFrame], table: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for name, curve in curves.items():
        ax.plot(
            curve["recall"], curve["precision"], label=f"{name} (AP {table.loc[name, 'ap_50']:.3f})"
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision (interpolated)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall at IoU 0.5, selected model")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def confidence_figure(curves: dict[str, pd.DataFrame], threshold: float) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for name, curve in curves.items():
        left.plot(curve["confidence"], curve["precision"], label=name)
        right.plot(curve["confidence"], curve["recall"], label=name)
    for ax, what in ((left, "precision"), (right, "recall")):
        ax.axvline(threshold, color="grey", ls="--", lw=1)
        ax.set_xlabel("minimum confidence")
        ax.set_ylabel(what)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    left.legend()
    fig.suptitle(f"Effect of the confidence threshold (dashed: the chosen {threshold:.2f})")
    fig.tight_layout()
    return fig


def curves_figure(history: pd.DataFrame, selected: str) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in history.groupby("model"):
        style = {"lw": 2.5 if name == selected else 1, "label": name}
        left.plot(rows["epoch"], rows["train_loss"], **style)
        right.plot(rows["epoch"], rows["val_map_50"], **style)
    left.set_ylabel("training loss")
    right.set_ylabel("validation mAP@0.5")
    for ax in (left, right):
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def submission(test: dict, predictions: list[dict]) -> pd.DataFrame:
    """Detections in each original image's pixels (the cache is letterboxed and scaled)."""
    rows = []
    for name, scale, found in zip(test["names"], test["scales"], predictions, strict=True):
        for box, label, confidence in zip(
            found["boxes"] / scale, found["labels"], found["scores"], strict=True
        ):
            rows.append(
                {
                    "image": name,
                    "label": test["classes"][int(label) - 1],
                    "confidence": round(float(confidence), 4),
                    **dict(zip(("xmin", "ymin", "xmax", "ymax"), box.tolist(), strict=True)),
                }
            )
    columns = ["image", "label", "confidence", "xmin", "ymin", "xmax", "ymax"]
    return pd.DataFrame(rows, columns=columns).round(1)


def run(ctx: StepContext) -> None:
    params: EvaluateParams = ctx.task_params.evaluate
    paths = ctx.paths
    selection = read_json(paths.models / SELECTION_FILE)
    selected = selection["selected"]
    test = torch.load(paths.processed / "test.pt")
    classes = test["classes"]
    inference = params.inference
    keep = kept_labels(inference, classes)
    device = resolve_device(ctx.common.device)
    targets = score_targets(test)

    rows, tables, summaries, predicted = [], {}, {}, {}
    detectors = load_detectors(paths.models)
    for name, saved in detectors.items():
        found, kept = predictions(saved["network"], test["images"], inference, keep, device)
        predicted[name] = (found, kept)
        coco, at_50 = score(found, targets)
        summaries[name] = at_50
        tables[name] = class_table(coco, at_50, test)
        rows.append(
            {
                "model": name,
                "map_50": float(at_50["map"]),
                "map": float(coco["map"]),
                "map_75": float(coco["map_75"]),
                "mar_100": float(coco["mar_100"]),
            }
        )
    table = pd.DataFrame(rows).set_index("model")
    at_50 = summaries[selected]
    curves = precision_by_threshold(at_50, classes)
    candidate = item_scores(test, *predicted[selected])
    shown = candidate.extra["shown"]
    per_class = tables[selected]
    metrics = {
        "headline": {
            "metric": "map_50",
            "value": float(table.loc[selected, "map_50"]),
            "split": "test",
            "model": selected,
        },
        "test": {name: row.to_dict() for name, row in table.iterrows()},
        "per_class": per_class.to_dict(orient="index"),
        "valid": {
            name: {"map_50": model["best_val_map_50"]}
            for name, model in selection["models"].items()
        },
        "selected": selected,
        "test_images": len(test["names"]),
        "inference": {
            **inference.model_dump(),
            "at_min_confidence": at_threshold(curves, inference.min_confidence),
            "detections_kept": int(sum(len(f["labels"]) for f in shown)),
        },
    }
    figures = {
        "examples.png": examples_figure(
            test, shown, params.examples_shown, inference.min_confidence
        ),
        "ap_per_class.png": ap_figure(tables),
        "pr_curves.png": pr_figure(curves, per_class),
        "confidence.png": confidence_figure(curves, inference.min_confidence),
        "curves.png": curves_figure(pd.read_csv(paths.models / HISTORY_FILE), selected),
    }
    publish_evaluation(
        ctx,
        metrics,
        metrics["test"][selected],
        submission(test, shown),
        figures,
        SameData(candidate, registered_scorer(ctx, test)),
        {MODELS_TABLE: table, CLASSES_TABLE: per_class},
    )
