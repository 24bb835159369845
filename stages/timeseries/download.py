"""download: data/raw/timeseries in the Kaggle layout, from the builtin generator, a url or a
local path (the real competition zip or folder)."""

from __future__ import annotations

from stages.core.context import StepContext
from stages.core.sources import fetch_task_source
from stages.timeseries.frequency import DAILY
from stages.timeseries.generate import GeneratorSpec, write_store_sales
from stages.timeseries.params import TimeseriesSource


def generator_spec(source: TimeseriesSource, horizon: int, seed: int) -> GeneratorSpec:
    return GeneratorSpec(
        stores=source.stores,
        families=source.families,
        start=source.start,
        end=source.end,
        horizon=horizon,
        noise=source.noise,
        seed=seed,
    )


def run(ctx: StepContext) -> None:
    params = ctx.task_params
    horizon = params.preprocess.horizon
    # the generator writes daily data: `auto` is the Kaggle horizon of 16 days
    spec = generator_spec(
        params.source, DAILY.horizon if horizon == "auto" else horizon, ctx.common.seed
    )
    fetch_task_source(
        params.source,
        ctx.paths,
        builtin=lambda dest: write_store_sales(dest, spec),
    )
