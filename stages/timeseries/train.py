"""train: every enabled forecaster is fitted up to the validation window and scored on it, then
refitted up to the test window and forecasts it (scored by evaluate); the best on validation is
refitted on all the data, forecasts test.csv, and becomes the registered model."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from functools import partial
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.metrics import rmsle
from stages.core.processes import cpu_workers, worker_pool
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
    """A maker of each enabled forecaster; makers pickle, so fits can run in worker processes."""
    made: dict[str, Callable[[], Forecaster]] = {BASELINE: partial(SeasonalNaive, frequency)}
    if params.sarimax.enabled:
        made["sarimax"] = partial(Sarimax, params.sarimax, n_jobs, horizon, frequency)
    if params.prophet.enabled:
        made["prophet"] = partial(ProphetModel, params.prophet, n_jobs, horizon, frequency)
    if params.rnn.enabled:
        from stages.timeseries.rnn import RecurrentForecaster

        made["rnn"] = partial(RecurrentForecaster, horizon, params.rnn, seed, device, frequency)
    if params.catboost.enabled:
        made["catboost"] = partial(
            GradientBoosting, horizon, params.catboost, seed, n_jobs, frequency
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


# the slowest fits first, so the last one to finish is a short one
SLOWEST_FIRST = ("rnn", "catboost", "sarimax", "prophet", BASELINE)


def fit_forecaster(
    make: Callable[[], Forecaster], history: pd.DataFrame, target: pd.DataFrame | None
) -> tuple[Forecaster | np.ndarray, float]:
    """A fit on `history` and its forecast of `target` (or, without one, the fitted model),
    with the seconds it took: one job of `fits`, in this process or a worker."""
    started = time.perf_counter()
    fitted = make().fit(history)
    result = fitted if target is None else fitted.predict(target.assign(sales=np.nan))
    return result, time.perf_counter() - started


def fits(
    made: dict[str, Callable[[], Forecaster]], panel: pd.DataFrame, split: dict, workers: int
) -> tuple[pd.DataFrame, dict[str, dict[str, float]], str, Forecaster]:
    """Every model fitted before the validation and the test window and scored on them, then the
    best on validation refitted on the whole panel: the backtest forecasts, scores, the best's
    name and its final fit. With `workers` > 1 the fits run side by side in worker processes
    (the final one as soon as validation has picked it); otherwise one after another here."""
    cut = windows(panel, split)
    frames = {
        window: target[[*KEY_COLUMNS, "sales", "closed"]].assign(split=window)
        for window, (_, target) in cut.items()
    }
    order = sorted(made, key=lambda name: SLOWEST_FIRST.index(name))
    queue = [(window, name) for window in cut for name in order]
    scores: dict[str, dict[str, float]] = {name: {} for name in order}
    best: str | None = None
    final: Forecaster | None = None

    def record(job: tuple[str, str], result, seconds: float) -> None:
        nonlocal best, final
        window, name = job
        if window == "final":
            final = result
            log.info("final %-15s refitted on everything  (%.1f s)", name, seconds)
            return
        frame = frames[window]
        frame[name] = result
        scored = frame["sales"].notna()
        score = rmsle(frame.loc[scored, "sales"], frame.loc[scored, name])
        scores[name][f"{window}_rmsle"] = score
        scores[name][f"{window}_seconds"] = round(seconds, 2)
        log.info("%-5s %-15s rmsle %.4f  (%.1f s)", window, name, score, seconds)
        if best is None and all("valid_rmsle" in scores[n] for n in order):
            best = min(order, key=lambda n: scores[n]["valid_rmsle"])
            log.info("best on validation: %s", best)
            queue.insert(0, ("final", best))  # before the test fits left: it is the longest

    def arguments(job: tuple[str, str]) -> tuple:
        window, name = job
        if window == "final":
            return made[name], panel, None
        history, target = cut[window]
        return made[name], history, target

    if workers <= 1:
        while queue:
            job = queue.pop(0)
            record(job, *fit_forecaster(*arguments(job)))
    else:
        with worker_pool(workers, threads=1) as pool:
            running: dict[Future, tuple[str, str]] = {}
            while queue or running:
                while queue and len(running) < workers:
                    job = queue.pop(0)
                    running[pool.submit(fit_forecaster, *arguments(job))] = job
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    record(running.pop(future), *future.result())
    forecasts = pd.concat(frames.values(), ignore_index=True)
    return forecasts, {name: scores[name] for name in made}, best, final


def side_by_side_fits(params: TrainParams, device: str, n_jobs: int) -> int:
    """Worker processes for the fits: on a CPU one per core (the RNN's small steps use a second
    thread poorly, the statistical models one each anyway); one where the RNN takes a GPU."""
    if params.rnn.enabled:
        from stages.core.training import resolve_device

        if resolve_device(device) != "cpu":
            return 1
    return cpu_workers(n_jobs)


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
    workers = side_by_side_fits(ctx.task_params.train, ctx.common.device, ctx.common.n_jobs)
    made, skipped = fitting(
        factories(
            ctx.task_params.train,
            split["horizon"],
            frequency,
            ctx.common.seed,
            # a worker process fits its per-series models on its own core
            1 if workers > 1 else ctx.common.n_jobs,
            ctx.common.device,
        ),
        periods=panel.loc[panel["date"] < pd.Timestamp(split["valid_start"]), "date"].nunique(),
    )
    forecasts, scores, best, final = fits(made, panel, split, workers)
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
