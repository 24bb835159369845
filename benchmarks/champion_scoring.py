"""What scoring the champion on the same data adds to `evaluate`, per task: loading the
registered champion and predicting the current test split (what `evaluate` does when a champion
exists), and the paired bootstrap against it. Run in a repository where the pipeline has run.

    .venv/bin/python benchmarks/champion_scoring.py [--root .] [--tasks churn nmt]
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

from stages.core import tracking
from stages.core.comparison import paired_difference
from stages.core.context import StepContext
from stages.core.params import PARAMS_FILE, load_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--tasks", nargs="*")
    args = parser.parse_args()
    root = args.root.resolve()
    params = load_params(root / PARAMS_FILE)
    tracking.configure(root)
    results = {}
    for task in args.tasks or params.tasks:
        ctx = StepContext(task=task, step="evaluate", root=root, params=params)
        rule = ctx.task_params.evaluate.promotion
        scorer = importlib.import_module(f"stages.{task}.scoring").registered_scorer(ctx)
        started = time.perf_counter()
        scores = scorer(f"models:/{task}/{registry_champion(task)}")
        scored = time.perf_counter()
        paired_difference(
            scores, scores, rule.metric, rule.direction, rule.resamples, rule.confidence, 0
        )
        results[task] = {
            "items": scores.items,
            "champion_scoring_s": round(scored - started, 2),
            "bootstrap_s": round(time.perf_counter() - scored, 2),
            "metric": rule.metric,
            "value": round(scores.value(), 4),
        }
        print(task, json.dumps(results[task]), flush=True)
    print(json.dumps(results, indent=2))


def registry_champion(task: str) -> str:
    from stages.core.registry import alias_holder

    return alias_holder(task, "champion")


if __name__ == "__main__":
    main()
