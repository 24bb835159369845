"""report: reports/segmentation/report.md and a self-contained report.html."""

from __future__ import annotations

import pandas as pd

from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.core.records import SELECTION_FILE
from stages.core.reporting import (
    data_section,
    did_not_learn_section,
    markdown_table,
    registry_paragraph,
    report_inputs,
    split_sizes,
    write_report,
)
from stages.segmentation.files import PAIRS_TABLE, SPLITS_FILE


def grid_table(pairs: pd.DataFrame, selection: dict) -> pd.DataFrame:
    trained = pd.DataFrame(selection["pairs"]).T[
        ["best_val_iou", "best_epoch", "parameters", "seconds"]
    ]
    table = pairs.join(trained).sort_values("iou", ascending=False)
    return table.rename(
        columns={
            "iou": "test IoU",
            "dice": "test Dice",
            "thresholded_iou": "test thresholded IoU",
            "best_val_iou": "val IoU",
            "best_epoch": "best epoch",
            "seconds": "train s",
        }
    ).reset_index()


def report_markdown(
    metrics: dict,
    pairs: pd.DataFrame,
    selection: dict,
    splits: dict,
    validation: dict,
    promotion: dict,
    run_info: dict,
) -> str:
    selected = metrics["selected"]
    best = metrics["test"][selected]
    return "\n".join(
        [
            "# Segmentation — skin-lesion masks (PH2)",
            "",
            f"**Selected pair `{selected}` (best validation IoU): test IoU {best['iou']:.4f}**, "
            f"Dice {best['dice']:.4f}, thresholded IoU {best['thresholded_iou']:.3f} over "
            f"{metrics['test_images']} test images at {splits['size']}×{splits['size']} px "
            f"({splits.get('size_reason', 'the size of the cache')}). "
            f"Trained on {selection.get('device', 'cpu')}.",
            "",
            did_not_learn_section(m.get("did_not_learn") for m in selection["pairs"].values()),
            registry_paragraph(promotion, run_info),
            "",
            "## Models × losses",
            "",
            "Every pair of the grid in `params.yaml` (`segmentation.train.models` × `losses`), "
            "each its own nested MLflow run; per-image scores averaged over the test split.",
            "",
            "![Test IoU heatmap](plots/grid_heatmap.png)",
            "",
            markdown_table(grid_table(pairs, selection), floatfmt=".4f"),
            "",
            "## Best and worst test images of the selected pair",
            "",
            "Truth in green, prediction in red.",
            "",
            "![Overlays](plots/overlays.png)",
            "",
            "## Training",
            "",
            "![Validation IoU per epoch](plots/curves.png)",
            "",
            data_section(validation, split_sizes(splits["counts"])),
        ]
    )


def run(ctx: StepContext) -> None:
    paths = ctx.paths
    text = report_markdown(
        pairs=pd.read_csv(paths.plots / PAIRS_TABLE, index_col=0),
        selection=read_json(paths.models / SELECTION_FILE),
        splits=read_json(paths.processed / SPLITS_FILE),
        **report_inputs(paths),
    )
    write_report(text, "Segmentation report", paths.report_md, paths.report_html)
