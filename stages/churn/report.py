"""report: reports/churn/report.md and a self-contained report.html with every figure."""

from __future__ import annotations

import pandas as pd

from stages.churn.preprocess import INFO
from stages.churn.train import ENSEMBLE
from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.core.reporting import (
    data_section,
    markdown_table,
    registry_paragraph,
    report_inputs,
    write_report,
)

COLUMNS = [
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
    "f1",
    "precision",
    "recall",
    "threshold",
]


def comparison_table(metrics: dict) -> pd.DataFrame:
    rows = []
    for name, scores in metrics["holdout"].items():
        cv = metrics["cv"].get(name, {})
        rows.append(
            {
                "model": f"**{name}**" if name == ENSEMBLE else name,
                **{c: scores[c] for c in COLUMNS},
                "cv roc_auc": f"{cv.get('roc_auc_mean', float('nan')):.4f} ± "
                f"{cv.get('roc_auc_std', float('nan')):.4f}",
            }
        )
    return pd.DataFrame(rows)


def best_member_sentence(metrics: dict) -> str:
    """The paired difference on the same clients, with its bootstrap CI (older metrics: none)."""
    difference = f"{metrics['ensemble_minus_best_member']:+.4f}"
    versus = metrics.get("ensemble_vs_best_member")
    if not versus:
        return difference
    return (
        f"{difference} ROC-AUC vs {versus['best_member']} "
        f"({round(versus['confidence'] * 100)}% paired bootstrap CI "
        f"{versus['ci_low']:+.4f} .. {versus['ci_high']:+.4f})"
    )


def report_markdown(
    metrics: dict, validation: dict, features: dict, promotion: dict, run_info: dict
) -> str:
    headline = metrics["headline"]
    return "\n".join(
        [
            "# Churn — telecom customer churn",
            "",
            f"**Held-out {headline['metric']} of the ensemble: {headline['value']:.4f}** "
            f"on {metrics['rows']['holdout']} clients (positive rate "
            f"{metrics['rows']['positive_rate']:.3f}); "
            f"ensemble minus best single member: {best_member_sentence(metrics)}.",
            "",
            registry_paragraph(promotion, run_info),
            "",
            "## Models on the held-out test",
            "",
            "Thresholds are F1-optimal on each model's out-of-fold predictions (never on the test "
            "labels); `cv roc_auc` is repeated stratified cross-validation on the train split.",
            "",
            markdown_table(comparison_table(metrics)),
            "",
            '<div class="figs" markdown="1">',
            "",
            "![ROC](plots/roc.png) ![PR](plots/pr.png)",
            "",
            "![Calibration](plots/calibration.png) ![CV](plots/cv.png)",
            "",
            "</div>",
            "",
            "## Feature importance",
            "",
            "![Feature importance](plots/feature_importance.png)",
            "",
            data_section(
                validation,
                f"Held-out test from {features['holdout_from']}; rows: "
                + ", ".join(f"{k} {v}" for k, v in features["rows"].items())
                + f"; {len(features['encoded'])} encoded features.",
            ),
        ]
    )


def run(ctx: StepContext) -> None:
    paths = ctx.paths
    text = report_markdown(
        features=read_json(paths.processed / INFO),
        **report_inputs(paths),
    )
    write_report(text, "Churn report", paths.report_md, paths.report_html)
