"""report: reports/timeseries/report.md and a self-contained report.html."""

from __future__ import annotations

import pandas as pd

from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.core.reporting import (
    data_section,
    markdown_table,
    registry_paragraph,
    report_inputs,
    write_report,
)
from stages.timeseries.frequency import named
from stages.timeseries.train import BASELINE, SELECTION


def comparison_table(metrics: dict, selection: dict) -> pd.DataFrame:
    naive = metrics["test"][BASELINE]["rmsle"]
    rows = []
    for name, test in metrics["test"].items():
        timing = selection["scores"][name]
        rows.append(
            {
                "model": f"**{name}**" if name == metrics["best_model"] else name,
                "valid RMSLE": metrics["valid"][name]["rmsle"],
                "test RMSLE": test["rmsle"],
                "vs naive": test["rmsle"] / naive,
                "test MAE": test["mae"],
                "test MAPE": test["mape"],
                "fit+predict s": timing["valid_seconds"] + timing["test_seconds"],
            }
        )
    return pd.DataFrame(rows)


def noise_sentence(metrics: dict) -> str:
    oracle = metrics["irreducible_rmsle"]
    if oracle is None:
        return ""
    gap = metrics["headline"]["value"] - oracle
    return (
        f" The builtin data's noise alone costs RMSLE {oracle:.4f} on this window (the "
        f"noiseless truth's score), so the best model is {gap:.4f} above the irreducible "
        "error."
    )


def skipped_lines(selection: dict) -> list[str]:
    skipped = selection.get("skipped", {})
    if not skipped:
        return []
    return [
        "Not fitted, the history being too short for them:",
        "",
        *(f"- `{name}`: {reason}." for name, reason in skipped.items()),
        "",
    ]


def report_markdown(
    metrics: dict, selection: dict, validation: dict, promotion: dict, run_info: dict
) -> str:
    headline = metrics["headline"]
    window = named(metrics["frequency"], metrics["offset"]).periods(metrics["horizon"])
    return "\n".join(
        [
            "# Time series — store sales forecasting",
            "",
            f"**Test RMSLE of the selected model `{headline['model']}`: {headline['value']:.4f}** "
            f"on the last {window} ({metrics['frequency']} data), "
            f"{metrics['best_vs_seasonal_naive']:.2f}× the seasonal-naive "
            f"baseline ({metrics['test'][BASELINE]['rmsle']:.4f}).{noise_sentence(metrics)}",
            "",
            registry_paragraph(promotion, run_info),
            "",
            "## Models",
            "",
            f"Each model is fitted up to the validation window (the {window} before the test) "
            "and scored there — the best one is selected on that score — then refitted up to the "
            "test window and scored on it. The selected model, refitted on everything, wrote "
            "`submission.csv` for test.csv.",
            "",
            markdown_table(comparison_table(metrics, selection)),
            "",
            *skipped_lines(selection),
            "",
            '<div class="figs" markdown="1">',
            "",
            "![RMSLE by model](plots/model_comparison.png) ![By family](plots/error_by_family.png)",
            "",
            "</div>",
            "",
            "## Forecasts on the test window",
            "",
            "![Forecasts](plots/forecasts.png)",
            "",
            "## Residuals of the selected model",
            "",
            "![Residuals](plots/residuals.png)",
            "",
            data_section(validation),
        ]
    )


def run(ctx: StepContext) -> None:
    paths = ctx.paths
    text = report_markdown(
        selection=read_json(paths.models / SELECTION),
        **report_inputs(paths),
    )
    write_report(text, "Time series report", paths.report_md, paths.report_html)
