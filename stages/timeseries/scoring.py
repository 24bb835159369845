"""Any forecaster version scored on the current test window: RMSLE over resampled (series, day)
rows with sales, deltas by product family, and the series where two versions differ most.

The registered model was refitted on all the data it was trained with. A version whose data
reaches into the current test window has seen the answers, so it is not asked to forecast that
window again: its own backtest forecasts of it (fitted before the window, logged by train as
`backtest.parquet`) are used when they cover exactly the current window with the same sales (a
params-only challenger on unchanged data); otherwise it is Unscorable, and the promotion rule
never compares a forecast with a memory. Train writes the last day it fitted on into the
version's model card (`trained_until`)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from stages.core import tracking
from stages.core.comparison import ItemScores, Unscorable, mean_metric
from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.timeseries.forecasters import KEY_COLUMNS
from stages.timeseries.frequency import named
from stages.timeseries.preprocess import FUTURE, PANEL, SERIES, SPLIT

BACKTEST = "backtest.parquet"  # run artifact: the selected model's test-window backtest
TRAINED_UNTIL = "trained_until"  # model card key: the last day of the data the model was fitted on
SHOWN_SERIES = 4
CONTEXT_PERIODS = 28  # history drawn before the test window


def scored_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The test rows the metric reads (sales known: closed days have none), in key order."""
    rows = frame[frame["sales"].notna()]
    return rows.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def item_scores(rows: pd.DataFrame, forecast: np.ndarray | pd.Series) -> ItemScores:
    """`rows`: scored_rows of the test window; `forecast`: sales per row, in that order."""
    actual = rows["sales"].to_numpy(dtype=float)
    predicted = np.asarray(forecast, dtype=float)
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} forecasts for {len(actual)} test rows")
    squared = (np.log1p(predicted.clip(0)) - np.log1p(actual.clip(0))) ** 2
    keys = rows[KEY_COLUMNS].reset_index(drop=True)
    return ItemScores(
        metric=mean_metric(squared, finish=np.sqrt),
        items=len(actual),
        groups=rows["family"].astype(str).tolist(),
        outcomes=predicted.round(3).tolist(),
        truths=actual.round(3).tolist(),
        item_ids=[
            f"{store}/{family}/{date:%Y-%m-%d}"
            for date, store, family in keys.itertuples(index=False)
        ],
        extra={"keys": keys},
    )


def candidate_scores(forecasts: pd.DataFrame, model: str) -> ItemScores:
    """The new version's outcome: train's test-window forecasts of `model` (forecasts.parquet)."""
    rows = scored_rows(forecasts[forecasts["split"] == "test"])
    return item_scores(rows, rows[model])


def record_training_window(history: pd.DataFrame) -> dict[str, str]:
    """The model card train logs beside the refitted model: the days it was fitted on."""
    return {
        "trained_from": f"{history['date'].min():%Y-%m-%d}",
        TRAINED_UNTIL: f"{history['date'].max():%Y-%m-%d}",
    }


def log_backtest(forecasts: pd.DataFrame, model: str) -> None:
    """Keep, on the active run, `model`'s forecasts of the test window made before it."""
    import tempfile
    from pathlib import Path

    import mlflow

    rows = scored_rows(forecasts[forecasts["split"] == "test"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / BACKTEST
        rows[[*KEY_COLUMNS, "sales"]].assign(forecast=rows[model]).to_parquet(path, index=False)
        mlflow.log_artifact(str(path))


def logged_backtest(model_uri: str) -> pd.DataFrame | None:
    """The version's forecasts of its test window made before it, with the actual sales
    (KEY_COLUMNS, sales, forecast); None for versions that did not log one."""
    import mlflow
    from mlflow.exceptions import MlflowException

    run_id = tracking.version_run_id(model_uri)
    try:
        path = mlflow.artifacts.download_artifacts(f"runs:/{run_id}/{BACKTEST}")
    except (MlflowException, OSError):
        return None
    return pd.read_parquet(path)


def backtest_scores(model_uri: str, window: pd.DataFrame) -> ItemScores | None:
    """The version's logged backtest of this very window, if it is one (same rows, same sales)."""
    logged = logged_backtest(model_uri)
    if logged is None:
        return None
    rows = scored_rows(window)
    same = len(logged) == len(rows) and (
        logged[KEY_COLUMNS].reset_index(drop=True).equals(rows[KEY_COLUMNS])
        and np.allclose(logged["sales"].to_numpy(float), rows["sales"].to_numpy(float))
    )
    return item_scores(rows, logged["forecast"]) if same else None


def registered_version(model_uri: str) -> str:
    return model_uri.removeprefix("models:/").partition("/")[2]


def trained_until(model_uri: str, load: Callable[[], object]) -> pd.Timestamp | None:
    """The last day of the version's training data: its model card, else (older versions) the
    history its forecaster kept (`load()` gives the pyfunc), else None."""
    card = tracking.model_card(model_uri)
    if TRAINED_UNTIL in card:
        return pd.Timestamp(card[TRAINED_UNTIL])
    try:
        history = load().unwrap_python_model().forecaster.history
    except AttributeError:
        return None
    return pd.Timestamp(history["date"].max())


def model_input(window: pd.DataFrame, future: pd.DataFrame) -> pd.DataFrame:
    """Panel rows in the layout of future.parquet (what the registered pyfunc takes): the same
    columns and dtypes, sales hidden; `id` is only a row number here."""
    frame = window.drop(columns=["sales"]).assign(id=np.arange(len(window)))
    missing = [c for c in future.columns if c not in frame]
    if missing:
        raise Unscorable(f"the panel lacks the model input column(s) {', '.join(missing)}")
    return frame[list(future.columns)].astype(future.dtypes.to_dict()).reset_index(drop=True)


def registered_scorer(ctx: StepContext) -> Callable[[str], ItemScores]:
    """`models:/timeseries/<n>` -> its forecasts of the current test window, scored; Unscorable
    when that version was fitted on data reaching into the window."""
    import mlflow
    from mlflow.exceptions import MlflowException

    processed = ctx.paths.processed

    @functools.cache
    def data() -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
        start = pd.Timestamp(read_json(processed / SPLIT)["test_start"])
        panel = pd.read_parquet(processed / PANEL)
        window = panel[panel["date"] >= start].reset_index(drop=True)
        inputs = model_input(window, pd.read_parquet(processed / FUTURE))
        return start, window, inputs

    def score(model_uri: str) -> ItemScores:
        version = registered_version(model_uri)
        start, window, inputs = data()
        model = functools.cache(lambda: mlflow.pyfunc.load_model(model_uri))
        until = trained_until(model_uri, model)
        if until is None:
            raise Unscorable(f"v{version} does not record the last day it was fitted on")
        if until >= start:
            backtested = backtest_scores(model_uri, window)
            if backtested is not None:
                return backtested
            raise Unscorable(
                f"v{version} was fitted on data up to {until:%Y-%m-%d}, which includes "
                f"the current test window starting {start:%Y-%m-%d}"
            )
        try:
            # every row of the window, closed days too: the forecasters' lags count rows
            predicted = np.asarray(model().predict(inputs), dtype=float)
        except MlflowException as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise Unscorable(
                f"v{version}'s input schema does not fit the current data: {first}"
            ) from None
        rows = window.assign(forecast=predicted)
        rows = scored_rows(rows)
        return item_scores(rows, rows["forecast"])

    return score


def disagreement_figure(
    ctx: StepContext, indices, a: ItemScores, b: ItemScores, labels
) -> plt.Figure:
    """The series of the most disagreeing rows: recent sales, both versions over the window."""
    keys = a.extra["keys"]
    picked: list[tuple] = []
    for i in indices:
        key = (keys.at[int(i), "store_nbr"], keys.at[int(i), "family"])
        if key not in picked:
            picked.append(key)
    picked = picked[:SHOWN_SERIES]
    panel = pd.read_parquet(ctx.paths.processed / PANEL, columns=["date", *SERIES, "sales"])
    split = read_json(ctx.paths.processed / SPLIT)
    start = keys["date"].min()
    context_start = named(split["frequency"], split["offset"]).add(start, -CONTEXT_PERIODS)
    forecasts = keys.assign(a=a.outcomes, b=b.outcomes)
    fig, axes = plt.subplots(len(picked), 1, figsize=(10, 2.4 * len(picked)), squeeze=False)
    for ax, (store, family) in zip(axes[:, 0], picked, strict=True):
        series = panel[
            (panel["store_nbr"] == store)
            & (panel["family"] == family)
            & (panel["date"] >= context_start)
        ]
        ahead = forecasts[(forecasts["store_nbr"] == store) & (forecasts["family"] == family)]
        ax.plot(series["date"], series["sales"], color="black", lw=1.2, label="actual")
        ax.plot(ahead["date"], ahead["a"], lw=1.2, marker=".", label=labels[0])
        ax.plot(ahead["date"], ahead["b"], lw=1.2, marker=".", label=labels[1])
        ax.axvline(start, color="grey", ls=":")
        ax.set_title(f"store {store} · {family}", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=3)
    fig.tight_layout()
    return fig
