"""evaluate: every (model, loss) pair on the test split — IoU (headline), Dice and the course's
thresholded IoU, per image then averaged; the models × losses heatmap, best and worst overlays of
the selected pair, training curves; run-length-encoded test predictions as the submission."""

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
from stages.segmentation.files import PAIRS_TABLE, PER_IMAGE_TABLE
from stages.segmentation.model import build_network, iou_dice, predict_logits, thresholded_iou
from stages.segmentation.params import EvaluateParams, ModelSpec
from stages.segmentation.scoring import item_scores, registered_scorer
from stages.segmentation.train import PAIRS_DIR


def load_pairs(models_dir) -> dict[str, torch.nn.Module]:
    networks = {}
    for path in sorted((models_dir / PAIRS_DIR).glob("*.pt")):
        saved = torch.load(path, map_location="cpu")
        network = build_network(ModelSpec(**saved["spec"]))
        network.load_state_dict(saved["state_dict"])
        networks[path.stem] = network.eval()
    return networks


def score(logits: torch.Tensor, masks: torch.Tensor) -> pd.DataFrame:
    iou, dice = iou_dice(logits, masks)
    return pd.DataFrame(
        {"iou": iou.numpy(), "dice": dice.numpy(), "thresholded_iou": thresholded_iou(iou).numpy()}
    )


def rle_encode(mask: np.ndarray) -> str:
    """Kaggle run-length encoding: pixels numbered from 1 top to bottom, then left to right;
    `start length` pairs of the foreground runs."""
    pixels = np.concatenate([[0], mask.T.flatten().astype(np.uint8), [0]])
    runs = np.flatnonzero(pixels[1:] != pixels[:-1]) + 1
    runs[1::2] -= runs[::2]
    return " ".join(map(str, runs))


def heatmap_figure(table: pd.DataFrame) -> plt.Figure:
    grid = table.pivot(index="model", columns="loss", values="iou")
    fig, ax = plt.subplots(figsize=(1.4 * grid.shape[1] + 2, 0.7 * grid.shape[0] + 1.5))
    image = ax.imshow(grid.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns)
    ax.set_yticks(range(grid.shape[0]), grid.index)
    middle = np.nanmean([np.nanmin(grid.to_numpy()), np.nanmax(grid.to_numpy())])
    for (i, j), value in np.ndenumerate(grid.to_numpy()):
        colour = "black" if value > middle else "white"  # readable on viridis' light end
        ax.text(j, i, f"{value:.3f}", ha="center", va="center", color=colour, fontsize=9)
    ax.set_title("Test IoU: models × losses")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def overlays_figure(
    images: torch.Tensor,
    masks: torch.Tensor,
    logits: torch.Tensor,
    per_image: pd.DataFrame,
    shown: int,
) -> plt.Figure:
    order = per_image.sort_values("iou").index.to_list()
    picked = [("worst", i) for i in order[:shown]] + [("best", i) for i in order[::-1][:shown]]
    fig, axes = plt.subplots(len(picked), 3, figsize=(7, 2.3 * len(picked)), squeeze=False)
    for row, (kind, i) in zip(axes, picked, strict=True):
        picture = images[i].permute(1, 2, 0).numpy()
        truth, predicted = masks[i, 0].numpy() > 0, logits[i, 0].numpy() > 0
        row[0].imshow(picture)
        row[0].set_title(f"{kind}: {per_image.loc[i, 'case']}", fontsize=8)
        row[1].imshow(truth, cmap="gray")
        row[1].set_title("truth", fontsize=8)
        row[2].imshow(picture)
        row[2].contour(truth, levels=[0.5], colors="lime", linewidths=1)
        row[2].contour(predicted, levels=[0.5], colors="red", linewidths=1)
        row[2].set_title(f"prediction (red), IoU {per_image.loc[i, 'iou']:.3f}", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    return fig


def curves_figure(history: pd.DataFrame, selected: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for pair, rows in history.groupby("pair"):
        ax.plot(
            rows["epoch"],
            rows["val_iou"],
            lw=2.5 if pair == selected else 1,
            alpha=1 if pair == selected else 0.6,
            label=pair,
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation IoU")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return fig


def run(ctx: StepContext) -> None:
    params: EvaluateParams = ctx.task_params.evaluate
    paths = ctx.paths
    selection = read_json(paths.models / SELECTION_FILE)
    selected = selection["selected"]
    test = torch.load(paths.processed / "test.pt")
    device = resolve_device(ctx.common.device)

    rows, logits_of = [], {}
    for name, network in load_pairs(paths.models).items():
        logits_of[name] = predict_logits(network, test["images"], device)
        scores = score(logits_of[name], test["masks"]).mean()
        pair = selection["pairs"][name]
        rows.append({"pair": name, "model": pair["model"], "loss": pair["loss"], **scores})
    table = pd.DataFrame(rows).set_index("pair")
    per_image = score(logits_of[selected], test["masks"]).assign(case=test["cases"])

    metrics = {
        "headline": {
            "metric": "iou",
            "value": float(table.loc[selected, "iou"]),
            "split": "test",
            "model": selected,
        },
        "test": {
            name: {k: float(row[k]) for k in ("iou", "dice", "thresholded_iou")}
            for name, row in table.iterrows()
        },
        "valid": {name: {"iou": pair["best_val_iou"]} for name, pair in selection["pairs"].items()},
        "selected": selected,
        "test_images": len(test["cases"]),
    }
    submission = pd.DataFrame(
        {
            "Id": test["cases"],
            "EncodedPixels": [rle_encode(m[0].numpy() > 0) for m in logits_of[selected]],
        }
    )
    figures = {
        "grid_heatmap.png": heatmap_figure(table),
        "overlays.png": overlays_figure(
            test["images"], test["masks"], logits_of[selected], per_image, params.overlays_shown
        ),
        "curves.png": curves_figure(pd.read_csv(paths.models / HISTORY_FILE), selected),
    }
    publish_evaluation(
        ctx,
        metrics,
        metrics["test"][selected],
        submission,
        figures,
        SameData(item_scores(test, logits_of[selected]), registered_scorer(ctx)),
        {PAIRS_TABLE: table, PER_IMAGE_TABLE: per_image.set_index("case")},
    )
