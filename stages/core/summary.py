"""The one page across tasks, and the place to look first: reports/index.html and
reports/summary.json from each task's reports/<task>/metrics.json (its `headline` block) and
the registry — per task the champion and the challenger, the promotion metric of every
registered version, links to the report and the last comparison."""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import pandas as pd

from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.rendering import markdown_table, plt, render_html

log = logging.getLogger(__name__)


def collect(root: Path, tasks: tuple[str, ...]) -> dict[str, dict]:
    summary = {}
    for task in tasks:
        metrics_path = root / "reports" / task / "metrics.json"
        if metrics_path.is_file():
            summary[task] = read_json(metrics_path).get("headline", {})
    return summary


def registry_state(root: Path, tasks: tuple[str, ...]) -> dict[str, list[dict]]:
    """Every task's registered versions (newest first); a task without any is left out."""
    from stages.core import registry, tracking
    from stages.core.errors import UserError

    tracking.configure(root)
    state = {}
    for task in tasks:
        try:
            state[task] = registry.versions(task)
        except UserError:
            continue
    return state


def holder(rows: list[dict], alias: str) -> dict | None:
    return next((r for r in rows if alias in r["aliases"]), None)


def version_cell(row: dict | None, metric: str) -> str:
    if row is None:
        return "—"
    value = row["metrics"].get(metric)
    shown = f" {metric} {value:.4f}" if value is not None else ""
    return f"v{row['version']}{shown} · data `{row['data']}` · {row['created'][:10]}"


def history_figure(rows: list[dict], metric: str) -> str:
    """The promotion metric of every version as it was measured at registration, champion
    marked; returned as an inline image."""
    ordered = rows[::-1]
    points = [(int(r["version"]), r["metrics"].get(metric)) for r in ordered]
    points = [(v, m) for v, m in points if m is not None]
    if not points:
        return ""
    fig, ax = plt.subplots(figsize=(3.6, 1.6))
    ax.plot([v for v, _ in points], [m for _, m in points], marker="o", ms=3, lw=1)
    champion = holder(rows, "champion")
    if champion and champion["metrics"].get(metric) is not None:
        ax.plot(int(champion["version"]), champion["metrics"][metric], "r*", ms=10)
    ax.set_xlabel("version", fontsize=7)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(metric, fontsize=7)
    ax.tick_params(labelsize=6)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"![{metric} by version](data:image/png;base64,{encoded})"


def last_comparison(root: Path, task: str) -> str:
    pages = sorted(
        (root / "reports" / task).glob("compare-*.html"), key=lambda p: p.stat().st_mtime
    )
    return f"[{pages[-1].stem}]({task}/{pages[-1].name})" if pages else ""


def summary_markdown(
    summary: dict[str, dict], tasks: tuple[str, ...], versions: dict[str, list[dict]], root: Path
) -> str:
    rows = []
    for task in tasks:
        headline = summary.get(task)
        if headline is None:
            rows.append({"task": task, "metric": "—", "last run": "not run", "report": ""})
            continue
        champion = holder(versions.get(task, []), "champion")
        rows.append(
            {
                "task": task,
                "metric": headline.get("metric", ""),
                "last run": headline.get("value", ""),
                "champion": f"v{champion['version']}" if champion else "—",
                "report": f"[report]({task}/report.html)",
            }
        )
    lines = ["# ML course pipelines — summary", "", markdown_table(pd.DataFrame(rows)), ""]
    for task in tasks:
        if task not in versions:
            continue
        metric = summary.get(task, {}).get("metric", "")
        task_rows = versions[task]
        lines += [
            f"## {task}",
            "",
            f"- champion: {version_cell(holder(task_rows, 'champion'), metric)}",
            f"- challenger: {version_cell(holder(task_rows, 'challenger'), metric)}",
            f"- {len(task_rows)} registered version(s): `python -m stages registry {task}`",
        ]
        comparison = last_comparison(root, task)
        if comparison:
            lines.append(f"- last comparison: {comparison}")
        lines += ["", history_figure(task_rows, metric), ""]
    lines += [
        "Each version's metric is the held-out score it got when it was registered, on the "
        "test split of its day; the promotion decision scored the champion again on the same "
        "data (see each report).",
        "",
    ]
    return "\n".join(lines)


def write_summary(root: Path, tasks: tuple[str, ...]) -> None:
    summary = collect(root, tasks)
    versions = registry_state(root, tasks)
    json_path, html_path = root / "reports" / "summary.json", root / "reports" / "index.html"
    payload = {
        task: {
            **headline,
            "champion": (holder(versions.get(task, []), "champion") or {}).get("version"),
            "challenger": (holder(versions.get(task, []), "challenger") or {}).get("version"),
        }
        for task, headline in summary.items()
    }
    with staged_outputs(json_path, html_path) as staging:
        staging[json_path].write_text(dump_json(payload), encoding="utf-8")
        staging[html_path].write_text(
            render_html("ML course pipelines", summary_markdown(summary, tasks, versions, root)),
            encoding="utf-8",
        )
