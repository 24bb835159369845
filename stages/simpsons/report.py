"""report: reports/simpsons/report.md and a self-contained report.html."""

from __future__ import annotations

import pandas as pd

from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.core.reporting import (
    data_section,
    did_not_learn_section,
    markdown_table,
    registry_paragraph,
    report_inputs,
    split_sizes,
    write_report,
)
from stages.simpsons.files import CLASSES_FILE, PER_CLASS


def report_markdown(
    metrics: dict,
    per_class: pd.DataFrame,
    splits: dict,
    validation: dict,
    promotion: dict,
    run_info: dict,
) -> str:
    test = metrics["test"]
    step = run_info.get("resumed_at_step", 0)
    resumed = f" (resumed from a checkpoint at step {step})" if step else ""
    training = f"{run_info['training']}, on " if "training" in run_info else "on "
    return "\n".join(
        [
            "# Simpsons — character classification",
            "",
            f"**Held-out micro-F1 (the Kaggle metric, = accuracy): {test['f1_micro']:.4f}**; "
            f"macro-F1 {test['f1_macro']:.4f} over {metrics['test_images']} test images. "
            f"Trained {training}{run_info.get('device', 'cpu')}{resumed}.",
            "",
            did_not_learn_section([run_info.get("did_not_learn")]),
            registry_paragraph(promotion, run_info),
            "",
            "## Per class",
            "",
            '<div class="figs" markdown="1">',
            "",
            "![Per-class F1](plots/per_class_f1.png) ![Confusion matrix](plots/confusion.png)",
            "",
            "</div>",
            "",
            markdown_table(per_class.reset_index(names="class"), floatfmt=".3f"),
            "",
            "## Misclassified test images",
            "",
            "![Misclassified](plots/misclassified.png)",
            "",
            "## Training",
            "",
            "![Training curves](plots/curves.png)",
            "",
            data_section(validation, split_sizes(splits["counts"])),
        ]
    )


def run(ctx: StepContext) -> None:
    paths = ctx.paths
    text = report_markdown(
        per_class=pd.read_csv(paths.plots / PER_CLASS, index_col=0),
        splits=read_json(paths.processed / CLASSES_FILE),
        **report_inputs(paths),
    )
    write_report(text, "Simpsons report", paths.report_md, paths.report_html)
