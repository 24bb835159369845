"""report: reports/detection/report.md and a self-contained report.html."""

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
from stages.detection.files import CLASSES_TABLE, MODELS_TABLE, SPLITS_FILE


def models_table(models: pd.DataFrame, selection: dict) -> pd.DataFrame:
    trained = pd.DataFrame(selection["models"]).T[
        ["architecture", "backbone", "best_val_map_50", "best_epoch", "parameters", "seconds"]
    ]
    table = models.join(trained).sort_values("map_50", ascending=False)
    return table.rename(
        columns={
            "map_50": "test mAP@0.5",
            "map": "test mAP@[.5:.95]",
            "map_75": "test mAP@0.75",
            "mar_100": "test recall (100 dets)",
            "best_val_map_50": "val mAP@0.5",
            "best_epoch": "best epoch",
            "seconds": "train s",
        }
    ).reset_index()


def threshold_table(inference: dict) -> pd.DataFrame:
    rows = [
        {"class": name, "precision": v["precision"], "recall": v["recall"]}
        for name, v in inference["at_min_confidence"].items()
    ]
    return pd.DataFrame(rows, columns=["class", "precision", "recall"])


def report_markdown(
    metrics: dict,
    models: pd.DataFrame,
    classes: pd.DataFrame,
    selection: dict,
    splits: dict,
    validation: dict,
    promotion: dict,
    run_info: dict,
) -> str:
    selected = metrics["selected"]
    best = metrics["test"][selected]
    inference = metrics["inference"]
    kept = ", ".join(inference["classes"]) if inference["classes"] else "all classes"
    counts = {name: split["images"] for name, split in splits["counts"].items()}
    return "\n".join(
        [
            "# Detection — hard hats (Pascal VOC)",
            "",
            f"**Selected detector `{selected}` (best validation mAP@0.5): test mAP@0.5 "
            f"{best['map_50']:.4f}**, mAP@[.5:.95] {best['map']:.4f} over "
            f"{metrics['test_images']} test images letterboxed to {splits['size']} px "
            f"({splits.get('size_reason', 'the size of the cache')}); objects "
            f"marked `difficult` are not scored (VOC rule). Trained on "
            f"{selection.get('device', 'cpu')}.",
            "",
            did_not_learn_section(m.get("did_not_learn") for m in selection["models"].values()),
            registry_paragraph(promotion, run_info),
            "",
            "## Detectors",
            "",
            "Every detector in `params.yaml` (`detection.train.models`), each its own nested "
            "MLflow run.",
            "",
            markdown_table(models_table(models, selection), floatfmt=".4f"),
            "",
            "## Per class (selected detector)",
            "",
            "![AP per class](plots/ap_per_class.png)",
            "",
            markdown_table(classes.reset_index(), floatfmt=".4f"),
            "",
            "![Precision-recall curves](plots/pr_curves.png)",
            "",
            "## Test images: truth and prediction",
            "",
            f"Predictions as a user sees them: {kept}, confidence ≥ "
            f"{inference['min_confidence']:.2f}, at most {inference['max_per_class']} per class "
            f"(`detection.evaluate.inference`); {inference['detections_kept']} detections kept "
            "on the test split, listed in `submission.csv`.",
            "",
            "![Examples](plots/examples.png)",
            "",
            "## Choosing the confidence threshold",
            "",
            "![Precision and recall by threshold](plots/confidence.png)",
            "",
            f"At the chosen threshold {inference['min_confidence']:.2f}:",
            "",
            markdown_table(threshold_table(inference), floatfmt=".3f"),
            "",
            "## Training",
            "",
            "![Training curves](plots/curves.png)",
            "",
            data_section(validation, split_sizes(counts)),
        ]
    )


def run(ctx: StepContext) -> None:
    paths = ctx.paths
    text = report_markdown(
        models=pd.read_csv(paths.plots / MODELS_TABLE, index_col=0),
        classes=pd.read_csv(paths.plots / CLASSES_TABLE, index_col=0),
        selection=read_json(paths.models / SELECTION_FILE),
        splits=read_json(paths.processed / SPLITS_FILE),
        **report_inputs(paths),
    )
    write_report(text, "Detection report", paths.report_md, paths.report_html)
