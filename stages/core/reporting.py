"""The task reports' shared text: the registry decision, the data section, the did-not-learn
warning, and report.md / report.html written together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from stages.core.rendering import markdown_table, render_html


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
