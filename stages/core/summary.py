"""The one page across tasks: reports/index.html and reports/summary.json from each task's
reports/<task>/metrics.json (its `headline` block)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.reporting import markdown_table, render_html


def collect(root: Path, tasks: tuple[str, ...]) -> dict[str, dict]:
    summary = {}
    for task in tasks:
        metrics_path = root / "reports" / task / "metrics.json"
        if metrics_path.is_file():
            summary[task] = read_json(metrics_path).get("headline", {})
    return summary


def summary_markdown(summary: dict[str, dict], tasks: tuple[str, ...]) -> str:
    rows = []
    for task in tasks:
        headline = summary.get(task)
        if headline is None:
            rows.append({"task": task, "metric": "—", "value": "not run", "report": ""})
            continue
        rows.append(
            {
                "task": task,
                "metric": headline.get("metric", ""),
                "value": headline.get("value", ""),
                "report": f"[report]({task}/report.html)",
            }
        )
    return "\n".join(
        ["# ML course pipelines — summary", "", markdown_table(pd.DataFrame(rows)), ""]
    )


def write_summary(root: Path, tasks: tuple[str, ...]) -> None:
    summary = collect(root, tasks)
    json_path, html_path = root / "reports" / "summary.json", root / "reports" / "index.html"
    with staged_outputs(json_path, html_path) as staging:
        staging[json_path].write_text(dump_json(summary), encoding="utf-8")
        staging[html_path].write_text(
            render_html("ML course pipelines", summary_markdown(summary, tasks)), encoding="utf-8"
        )
