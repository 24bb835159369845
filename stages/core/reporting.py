"""Figures, tables and self-contained reports: Markdown for reading in a repo browser, HTML with
every image inlined and no external CSS/JS, so it opens offline from a file."""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{margin-top:1.6em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
code{background:#f4f4f4;padding:0 .25em;border-radius:3px}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.figs img{max-width:48%}
"""


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4f", index: bool = False) -> str:
    return frame.to_markdown(index=index, floatfmt=floatfmt)


def save_figure(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def render_html(title: str, markdown_text: str, base_dir: Path | None = None) -> str:
    """Markdown -> one HTML page; images under base_dir are embedded as data URIs."""
    import markdown

    body = markdown.markdown(
        markdown_text, extensions=["tables", "fenced_code", "sane_lists", "md_in_html"]
    )
    if base_dir is not None:
        body = re.sub(
            r'src="([^":]+)"', lambda m: f'src="{_data_uri(base_dir / m.group(1))}"', body
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _data_uri(path: Path) -> str:
    if not path.is_file():
        return path.name
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def registry_paragraph(promotion: dict, run_info: dict) -> str:
    """The registry decision (judged against the champion on the same data), the dataset
    version, and where to find the run in the MLflow UI."""
    from stages.core.dataversion import describe

    verdict = "**promoted to champion**" if promotion["promoted"] else "kept as challenger"
    experiment, run = run_info["experiment_id"], run_info["run_id"]
    lines = [
        f"Registry: `{promotion['model']}` version {promotion['version']} — {verdict} "
        f"({promotion['reason']}).",
        "",
        f"Data version: `{describe(promotion['data'])}`.",
        "",
    ]
    comparison = promotion.get("comparison")
    if comparison:
        pct = round(comparison["confidence"] * 100)
        table = pd.DataFrame(
            [
                {
                    "metric": comparison["metric"],
                    f"new v{promotion['version']}": comparison["candidate"],
                    f"champion v{promotion['previous_champion']}": comparison["champion"],
                    "difference": comparison["difference"],
                    f"{pct}% CI (paired bootstrap)": (
                        f"{comparison['ci_low']:+.4f} .. {comparison['ci_high']:+.4f}"
                    ),
                    "test items": comparison["items"],
                }
            ]
        )
        lines += ["Both scored on this run's test split:", "", markdown_table(table), ""]
    lines.append(
        f"MLflow: experiment `{experiment}`, run `{run}` — open with `mlflow ui` and go to "
        f"<http://127.0.0.1:5000/#/experiments/{experiment}/runs/{run}>; "
        f"`python -m stages registry {promotion['model']}` lists every version."
    )
    return "\n".join(lines)


def did_not_learn_section(sentences) -> str:
    """A warning block for the models whose validation metric says they learned nothing
    (stages/core/training.py: did_not_learn); empty when every model learned."""
    found = [s for s in sentences if s]
    if not found:
        return ""
    return "\n".join(
        ["> **Warning: a model did not learn.**", ">", *(f"> - {s}" for s in found), ""]
    )


def facts_table(validation: dict) -> str:
    facts = validation["facts"]
    return markdown_table(
        pd.DataFrame({"fact": list(facts), "value": [str(v) for v in facts.values()]})
    )


def data_section(validation: dict, detail: str = "") -> str:
    """The report's closing section: the validation verdict, a link to it, and its facts."""
    verdict = "passed" if validation["success"] else "FAILED"
    sentence = f"Validation: **{verdict}** ([details](validation.html)). {detail}".rstrip()
    return "\n".join(["## Data", "", sentence, "", facts_table(validation), ""])


def split_sizes(counts: dict[str, int]) -> str:
    return "Split sizes: " + ", ".join(f"{name} {n}" for name, n in counts.items()) + "."


def report_inputs(paths: Any) -> dict[str, Any]:
    """What every report reads: metrics, validation, the registry decision and the run."""
    from stages.core.fsio import read_json

    return {
        "metrics": read_json(paths.metrics_json),
        "validation": read_json(paths.validation_json),
        "promotion": read_json(paths.promotion_json),
        "run_info": read_json(paths.run_info),
    }


def write_report(text: str, title: str, md_path: Path, html_path: Path) -> None:
    """report.md as written, report.html self-contained (figures next to it inlined)."""
    from stages.core.fsio import staged_outputs

    with staged_outputs(md_path, html_path) as staging:
        staging[md_path].write_text(text, encoding="utf-8")
        staging[html_path].write_text(
            render_html(title, text, base_dir=html_path.parent), encoding="utf-8"
        )
