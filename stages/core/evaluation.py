"""What every task's evaluate step ends with: metrics.json, plots/, submission.csv and
promotion.json written together (all or nothing), the registry's promotion rule applied to the
version train registered — against the champion scored on the same test split — and the plots
attached to the train run."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from stages.core import dataversion, registry, tracking
from stages.core.comparison import ItemScores
from stages.core.context import StepContext
from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.rendering import save_figure


@dataclass(frozen=True)
class SameData:
    """The new version's outcome on every test item, and how to get a registered version's
    (`models:/<task>/<n>` -> its outcome on the same items): what the promotion rule pairs."""

    candidate: ItemScores
    score_registered: Callable[[str], ItemScores]


def publish_evaluation(
    ctx: StepContext,
    metrics: dict[str, Any],
    candidate: Mapping[str, float],
    submission: pd.DataFrame,
    figures: Mapping[str, plt.Figure],
    same_data: SameData,
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """`candidate` holds the held-out metrics the promotion rule reads (its `metric` key)."""
    paths = ctx.paths
    run_info = read_json(paths.run_info)
    data = dataversion.data_version(ctx.root, ctx.task, read_json(paths.validation_json))
    promotion = registry.judge(
        ctx.root,
        ctx.task,
        run_info,
        ctx.task_params.evaluate.promotion,
        dict(candidate),
        same_data.candidate,
        same_data.score_registered,
        data,
        ctx.common.seed,
    )
    metrics = {**metrics, "data": data}
    outputs = (paths.metrics_json, paths.plots, paths.submission_csv, paths.promotion_json)
    with staged_outputs(*outputs) as staging:
        staging[paths.metrics_json].write_text(dump_json(metrics), encoding="utf-8")
        submission.to_csv(staging[paths.submission_csv], index=False)
        staging[paths.promotion_json].write_text(dump_json(promotion), encoding="utf-8")
        plots = staging[paths.plots]
        plots.mkdir()
        for name, table in (tables or {}).items():
            table.to_csv(plots / name)
        for name, figure in figures.items():
            save_figure(figure, plots / name)
    tracking.log_artifacts(ctx.root, run_info, paths.plots, "plots")
    return promotion
