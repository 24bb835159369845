"""train: every enabled forecaster is fitted up to the validation window and scored on it, then
refitted up to the test window and forecasts it (scored by evaluate); the best on validation is
refitted on all the data, forecasts test.csv, and becomes the registered model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.metrics import rmsle
from stages.timeseries.forecasters import (
    KEY_COLUMNS,
    Forecaster,
    GradientBoosting,
    ProphetModel,
    Sarimax,
    SeasonalNaive,
)
from stages.timeseries.frequency import Frequency, named
from stages.timeseries.params import TrainParams
from stages.timeseries.preprocess import FUTURE, PANEL, SPLIT
from stages.timeseries.scoring import log_backtest, record_training_window

log = logging.getLogger(__name__)

FORECASTS, FINAL, SELECTION = "forecasts.parquet", "forecaster.joblib", "selection.json"
BASELINE = "seasonal_naive"


def factories(
    params: TrainParams, horizon: int, frequency: Frequency, seed: int, n_jobs: int, device: str
) -> dict[str, Callable[[], Forecaster]]:
    made: dict[str, Callable[[], Forecaster]] = {BASELINE: lambda: SeasonalNaive(frequency)}
    if params.sarimax.enabled:
        made["sarimax"] = lambda: Sarimax(params.sarimax, n_jobs, horizon, frequency)
    if params.prophet.enabled:
        made["prophet"] = lambda: ProphetModel(params.prophet, n_jobs, horizon, frequency)
    if params.rnn.enabled:
        from stages.timeseries.rnn import RecurrentForecaster

        made["rnn"] = lambda: RecurrentForecaster(horizon, params.rnn, seed, device, frequency)
    if params.catboost.enabled:
        made["catboost"] = lambda: GradientBoosting(
            horizon, params.catboost, seed, n_jobs, frequency
        )
    return made


def fitting(
    made: dict[str, Callable[[], Forecaster]], periods: int
) -> tuple[dict[str, Callable[[], Forecaster]], dict[str, str]]:
    """The models `periods` of history (the validation window's, the shortest) can fit, and
    why each other one is skipped."""
    skipped = {name: make().too_short(periods) for name, make in made.items()}
    for name, reason in skipped.items():
        if reason:
            log.warning("%s skipped: %s", name, reason)
    kept = {name: make for name, make in made.items() if not skipped[name]}
    return kept, {name: reason for name, reason in skipped.items() if reason}


def windows(panel: pd.DataFrame, split: dict) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """(history, rows to forecast) for the validation and the test window."""
    valid_start, test_start = pd.Timestamp(split["valid_start"]), pd.Timestamp(split["test_start"])
    return {
        "valid": (
            panel[panel["date"] < valid_start],
            panel[(panel["date"] >= valid_start) & (panel["date"] < test_start)],
        ),
        "test": (panel[panel["date"] < test_start], panel[panel["date"] >= test_start]),
    }


def backtest(
    made: dict[str, Callable[[], Forecaster]], panel: pd.DataFrame, split: dict
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    frames, scores = [], {}
    for window, (history, target) in windows(panel, split).items():
        frame = target[[*KEY_COLUMNS, "sales", "closed"]].assign(split=window)
        hidden = target.assign(sales=np.nan)
        for name, make in made.items():
            started = time.perf_counter()
            frame[name] = make().fit(history).predict(hidden)
            seconds = time.perf_counter() - started
            scored = frame["sales"].notna()
            score = rmsle(frame.loc[scored, "sales"], frame.loc[scored, name])
            scores.setdefault(name, {})[f"{window}_rmsle"] = score
            scores[name][f"{window}_seconds"] = round(seconds, 2)
            log.info("%-5s %-15s rmsle %.4f  (%.1f s)", window, name, score, seconds)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), scores


def log_to_mlflow(
    ctx: StepContext,
    scores: dict,
    best: str,
    final: Forecaster,
    sample: pd.DataFrame,
    fitted_on: pd.DataFrame,
    forecasts: pd.DataFrame,
) -> dict[str, str]:
    """The run, the pyfunc and its model card: the days `final` was fitted on (`fitted_on`), so
    that a later evaluate does not score it on a test window it has seen."""
    import mlflow

    from stages.timeseries.serving import ForecasterModel

    with tracking.task_run(ctx.task, ctx.stage, ctx.root, [ctx.paths.processed]) as run:
        tracking.log_params(
            {
                "train": ctx.task_params.train.model_dump(),
                "best": best,
                "common": ctx.common.model_dump(),
            }
        )
        for name, metrics in scores.items():
            member = getattr(ctx.task_params.train, name, None)
            with tracking.member_run(name, member.model_dump() if member else {}):
                tracking.log_metrics(metrics)
        tracking.log_metrics({f"best_{k}": v for k, v in scores[best].items()})
        mlflow.log_dict(record_training_window(fitted_on), tracking.MODEL_CARD)
        log_backtest(forecasts, best)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ForecasterModel(final),
            code_paths=[str(Path(__file__).resolve().parents[1])],
            input_example=sample,
            pip_requirements=tracking.pinned(
                "pandas", "numpy", "catboost", "statsmodels", "prophet", "torch", "lightning"
            ),
        )
        return tracking.register_run_model(ctx.task, ctx.root, run, info.model_uri)


def run(ctx: StepContext) -> None:
    processed = ctx.paths.processed
    panel = pd.read_parquet(processed / PANEL)
    future = pd.read_parquet(processed / FUTURE)
    split = read_json(processed / SPLIT)
    frequency = named(split["frequency"], split["offset"])
    made, skipped = fitting(
        factories(
            ctx.task_params.train,
            split["horizon"],
            frequency,
            ctx.common.seed,
            ctx.common.n_jobs,
            ctx.common.device,
        ),
        periods=panel.loc[panel["date"] < pd.Timestamp(split["valid_start"]), "date"].nunique(),
    )
    forecasts, scores = backtest(made, panel, split)
    best = min(scores, key=lambda name: scores[name]["valid_rmsle"])
    log.info("best on validation: %s", best)
    final = made[best]().fit(panel)
    submission = future[["id", *KEY_COLUMNS]].assign(split="future", sales=np.nan)
    submission[best] = final.predict(future)
    forecasts = pd.concat([forecasts, submission], ignore_index=True)
    selection = {"best": best, "baseline": BASELINE, "scores": scores, "skipped": skipped}
    out = ctx.paths.models
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        forecasts.to_parquet(tmp / FORECASTS, index=False)
        joblib.dump(final, tmp / FINAL)
        (tmp / SELECTION).write_text(dump_json(selection), encoding="utf-8")
        run_info = log_to_mlflow(ctx, scores, best, final, future.head(16), panel, forecasts)
        (tmp / ctx.paths.run_info.name).write_text(dump_json(run_info), encoding="utf-8")
