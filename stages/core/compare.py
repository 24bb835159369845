"""`python -m stages compare <task> A B`: two registered versions scored on the current test
split — headline side by side with the CI of the difference, per-group deltas, and the items
where they disagree — as reports/<task>/compare-A-B.html and .json.

The task says how a version is scored in `stages/<task>/scoring.py`: `registered_scorer(ctx)`
returns a function of a model URI to its ItemScores; an optional `disagreement_figure(ctx,
indices, a, b, labels)` draws the disagreeing items (images, series)."""

from __future__ import annotations

import importlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.core import registry
from stages.core.comparison import ItemScores, Unscorable, group_deltas, paired_difference
from stages.core.context import StepContext
from stages.core.errors import UserError
from stages.core.fsio import dump_json, staged_outputs
from stages.core.rendering import markdown_table, render_html, save_figure

SHOWN = 12


def numeric_outcomes(a: ItemScores, b: ItemScores) -> bool:
    sample = list(a.outcomes or [])[:50] + list(b.outcomes or [])[:50]
    return bool(sample) and all(isinstance(v, (int, float)) for v in sample)


def disagreements(a: ItemScores, b: ItemScores, shown: int = SHOWN) -> np.ndarray:
    """The items where the two versions differ most: other outcomes, or the largest gap."""
    if a.outcomes is None or b.outcomes is None:
        return np.array([], dtype=int)
    first, second = list(a.outcomes), list(b.outcomes)
    if numeric_outcomes(a, b):
        gap = np.abs(np.asarray(first, dtype=float) - np.asarray(second, dtype=float))
        order = np.argsort(-gap, kind="stable")
        return order[gap[order] > 0][:shown]
    return np.array([i for i in range(len(first)) if first[i] != second[i]][:shown], dtype=int)


def disagreement_sentence(a: ItemScores, b: ItemScores, shown: int) -> str:
    items = a.items
    if numeric_outcomes(a, b):
        gap = np.abs(np.asarray(a.outcomes, dtype=float) - np.asarray(b.outcomes, dtype=float))
        return (
            f"Per item the outcomes differ by {gap.mean():.4f} on average (largest "
            f"{gap.max():.4f}); the {shown} items with the largest difference are below."
        )
    differing = sum(1 for x, y in zip(a.outcomes or [], b.outcomes or [], strict=True) if x != y)
    return f"{differing} of {items} items get a different outcome; {shown} of them are below."


def scored(score, name: str, version: str) -> ItemScores:
    try:
        return score(f"models:/{name}/{version}")
    except Unscorable as exc:
        raise UserError(
            f"compare: {name} v{version} cannot be scored on the current test split ({exc})"
        ) from None


def compare_versions(ctx: StepContext, ref_a: str, ref_b: str) -> Path:
    name, rule = ctx.task, ctx.task_params.evaluate.promotion
    version_a = registry.existing_version(name, ref_a)
    version_b = registry.existing_version(name, ref_b)
    scoring = importlib.import_module(f"stages.{ctx.task}.scoring")
    score = scoring.registered_scorer(ctx)
    a, b = (scored(score, name, v) for v in (version_a, version_b))
    difference = paired_difference(
        a, b, rule.metric, rule.direction, rule.resamples, rule.confidence, ctx.common.seed
    )
    rows = disagreements(a, b)
    label_a, label_b = (
        f"v{version}" if ref == version else f"v{version} ({ref})"
        for ref, version in ((ref_a, version_a), (ref_b, version_b))
    )
    examples = pd.DataFrame(
        {
            "item": [a.item_ids[i] if a.item_ids is not None else int(i) for i in rows],
            "truth": [a.truths[i] if a.truths is not None else "" for i in rows],
            label_a: [a.outcomes[i] for i in rows] if len(rows) else [],
            label_b: [b.outcomes[i] for i in rows] if len(rows) else [],
        }
    )
    groups = group_deltas(a, b)
    result: dict[str, Any] = {
        "task": name,
        "a": {"ref": ref_a, "version": version_a},
        "b": {"ref": ref_b, "version": version_b},
        "difference": asdict(difference),
        "groups": groups,
        "disagreements": examples.to_dict(orient="records"),
        "disagreement": disagreement_sentence(a, b, len(rows)),
    }
    html_path = ctx.paths.reports / f"compare-{ref_a}-{ref_b}.html"
    json_path = html_path.with_suffix(".json")
    figure = None
    if hasattr(scoring, "disagreement_figure") and len(rows):
        figure = scoring.disagreement_figure(ctx, rows, a, b, (label_a, label_b))
    with staged_outputs(html_path, json_path) as staging:
        staging[json_path].write_text(dump_json(result), encoding="utf-8")
        figure_name = None
        if figure is not None:
            figure_name = f"compare-{ref_a}-{ref_b}.png"
            save_figure(figure, staging[html_path].parent / figure_name)
        text = comparison_markdown(result, label_a, label_b, examples, figure_name)
        staging[html_path].write_text(
            render_html(f"{name}: {label_a} vs {label_b}", text, staging[html_path].parent),
            encoding="utf-8",
        )
        if figure_name:
            (staging[html_path].parent / figure_name).unlink()
    return html_path


def comparison_markdown(
    result: dict, label_a: str, label_b: str, examples: pd.DataFrame, figure: str | None
) -> str:
    d = result["difference"]
    pct = round(d["confidence"] * 100)
    headline = pd.DataFrame(
        [
            {
                "metric": d["metric"],
                label_a: d["candidate"],
                label_b: d["champion"],
                "difference (A − B)": d["difference"],
                f"{pct}% CI": f"{d['ci_low']:+.4f} .. {d['ci_high']:+.4f}",
                "items": d["items"],
            }
        ]
    )
    better = "higher" if d["direction"] == "maximize" else "lower"
    lines = [
        f"# {result['task']}: {label_a} vs {label_b}",
        "",
        f"Both versions scored now on the same current test split ({d['items']} items); "
        f"{better} {d['metric']} is better. The CI is a paired bootstrap over test items "
        f"({d['resamples']} resamples).",
        "",
        markdown_table(headline),
        "",
    ]
    if result["groups"]:
        groups = pd.DataFrame(result["groups"]).T.rename(columns={"a": label_a, "b": label_b})
        groups = groups.sort_values("difference").astype({"items": int}).astype({"items": str})
        lines += ["## Per group", "", markdown_table(groups, index=True), ""]
    lines += [
        "## Where they disagree",
        "",
        result["disagreement"],
        "",
    ]
    if figure:
        lines += [f"![disagreements]({figure})", ""]
    if len(examples):
        lines += [markdown_table(examples.astype(str)), ""]
    return "\n".join(lines)
