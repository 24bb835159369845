"""A forecaster version scored on the current test window: RMSLE over resampled rows as evaluate
computes it, and a registered pyfunc that has seen the window refused (a tiny real MLflow
store; the Kaggle-layout fixture as data)."""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import pytest

from stages.core import tracking
from stages.core.compare import disagreements
from stages.core.comparison import Unscorable, group_deltas, paired_difference
from stages.core.context import StepContext
from stages.core.fsio import dump_json
from stages.core.metrics import rmsle
from stages.core.params import parse_params
from stages.timeseries.forecasters import KEY_COLUMNS, SeasonalNaive
from stages.timeseries.frequency import DAILY
from stages.timeseries.preprocess import (
    FUTURE,
    PANEL,
    SPLIT,
    build_future,
    build_panel,
    split_dates,
)
from stages.timeseries.schema import read_raw
from stages.timeseries.scoring import (
    candidate_scores,
    disagreement_figure,
    item_scores,
    record_training_window,
    registered_scorer,
)
from stages.timeseries.serving import ForecasterModel
from tests.timeseries.kaggle_fixture import FAMILIES, write_kaggle_folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    raw = read_raw(write_kaggle_folder(tmp_path_factory.mktemp("kaggle")))
    panel = build_panel(raw, DAILY)
    panel.loc[panel.index[-5], "sales"] = np.nan  # a closed day inside the test window
    panel["closed"] = panel["sales"].isna().astype(np.int8)
    return panel, build_future(raw, DAILY), split_dates(panel, 16, DAILY)


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch, data) -> StepContext:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    panel, future, split = data
    processed = tmp_path / "data" / "processed" / "timeseries"
    processed.mkdir(parents=True)
    panel.to_parquet(processed / PANEL, index=False)
    future.to_parquet(processed / FUTURE, index=False)
    (processed / SPLIT).write_text(dump_json(split))
    tracking.configure(tmp_path)
    params = parse_params({"tasks": ["timeseries"], "timeseries": {}})
    yield StepContext("timeseries", "evaluate", tmp_path, params)
    mlflow.set_tracking_uri(None)


def register(root: Path, forecaster, sample: pd.DataFrame, card: dict | None) -> str:
    """A version as train registers it (minus the code copy): the pyfunc and its card."""
    with tracking.task_run("timeseries", "train@timeseries", root, []) as run:
        if card is not None:
            mlflow.log_dict(card, tracking.MODEL_CARD)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ForecasterModel(forecaster),
            input_example=sample,
            pip_requirements=["pandas"],
        )
    version = tracking.register_challenger("timeseries", info.model_uri, run.info.run_id)
    return f"models:/timeseries/{version.version}"


def test_full_set_rmsle_is_evaluates_and_resamples_are_fast(data):
    panel, _, split = data
    window = panel[panel["date"] >= split["test_start"]]
    forecasts = window[[*KEY_COLUMNS, "sales", "closed"]].assign(split="test")
    rng = np.random.default_rng(0)
    forecasts["model"] = forecasts["sales"].fillna(0) * rng.lognormal(0, 0.2, len(forecasts))
    scores = candidate_scores(forecasts, "model")
    known = forecasts[forecasts["sales"].notna()]
    assert scores.items == len(known) == len(window) - 1
    assert scores.value() == pytest.approx(rmsle(known["sales"], known["model"]), abs=1e-12)
    ordered = known.sort_values(KEY_COLUMNS)  # the items' order
    indices = rng.integers(0, scores.items, scores.items)  # a bootstrap resample
    resampled = ordered.iloc[indices]
    assert scores.metric(indices) == pytest.approx(
        rmsle(resampled["sales"], resampled["model"]), abs=1e-12
    )
    assert sorted(set(scores.groups)) == FAMILIES
    first = ordered.iloc[0]
    assert scores.item_ids[0] == f"{first.store_nbr}/{first.family}/{first.date:%Y-%m-%d}"
    per_family = group_deltas(scores, scores)
    for family, rows in known.groupby("family"):
        assert per_family[family]["a"] == pytest.approx(rmsle(rows["sales"], rows["model"]))

    # the size of the Kaggle test window: 54 stores x 33 families x 16 days
    big = pd.DataFrame(
        {
            "date": pd.Timestamp("2017-08-01"),
            "store_nbr": 1,
            "family": "A",
            "sales": rng.lognormal(3, 1, 28_512),
        }
    )
    large = item_scores(big, big["sales"] * rng.lognormal(0, 0.3, len(big)))
    started = time.perf_counter()
    difference = paired_difference(large, large, "rmsle", "minimize", 1000, 0.95, 0)
    seconds = time.perf_counter() - started
    print(f"1000 paired resamples of {large.items} rows: {seconds:.2f} s")
    assert difference.difference == 0 and seconds < 20


def test_a_version_fitted_before_the_window_is_scored_on_it_as_train_forecast_it(ctx, data):
    panel, future, split = data
    start = pd.Timestamp(split["test_start"])
    history, window = panel[panel["date"] < start], panel[panel["date"] >= start]
    forecaster = SeasonalNaive().fit(history)
    uri = register(ctx.root, forecaster, future.head(16), record_training_window(history))
    champion = registered_scorer(ctx)(uri)

    # what train's backtest writes to forecasts.parquet for the same model
    forecasts = window[[*KEY_COLUMNS, "sales", "closed"]].assign(split="test")
    forecasts["seasonal_naive"] = forecaster.predict(window.assign(sales=np.nan))
    candidate = candidate_scores(forecasts, "seasonal_naive")
    assert champion.items == candidate.items
    assert champion.item_ids == candidate.item_ids
    assert champion.outcomes == candidate.outcomes
    assert champion.value() == pytest.approx(candidate.value(), abs=1e-12)

    diff = paired_difference(candidate, champion, "rmsle", "minimize", 200, 0.95, 0)
    assert diff.difference == 0 and diff.ci_low == diff.ci_high == 0


def test_a_version_that_saw_the_test_window_is_unscorable(ctx, data):
    panel, future, split = data
    uri = register(
        ctx.root, SeasonalNaive().fit(panel), future.head(16), record_training_window(panel)
    )
    with pytest.raises(Unscorable) as caught:
        registered_scorer(ctx)(uri)
    assert str(caught.value) == (
        f"v1 was fitted on data up to {panel['date'].max():%Y-%m-%d}, which includes the "
        f"current test window starting {split['test_start']}"
    )


def test_without_a_card_the_forecasters_history_or_nothing_tells(ctx, data):
    panel, future, split = data
    kept_history = SeasonalNaive().fit(panel)
    kept_history.history = panel  # as GradientBoosting and the per-series models keep it
    with pytest.raises(Unscorable, match="fitted on data up to 2017-08-15"):
        registered_scorer(ctx)(register(ctx.root, kept_history, future.head(16), None))
    silent = SeasonalNaive().fit(panel[panel["date"] < split["test_start"]])
    with pytest.raises(Unscorable, match="does not record the last day"):
        registered_scorer(ctx)(register(ctx.root, silent, future.head(16), None))


def test_a_version_whose_input_the_data_no_longer_has_is_unscorable(ctx, data):
    panel, future, split = data
    history = panel[panel["date"] < split["test_start"]]
    uri = register(
        ctx.root, SeasonalNaive().fit(history), future.head(16), record_training_window(history)
    )
    processed = ctx.paths.processed
    panel.drop(columns="oil").to_parquet(processed / PANEL, index=False)
    future.drop(columns="oil").to_parquet(processed / FUTURE, index=False)
    with pytest.raises(Unscorable, match="input schema"):
        registered_scorer(ctx)(uri)


def test_train_records_the_days_the_registered_model_was_fitted_on(ctx, data):
    from stages.timeseries.train import log_to_mlflow

    panel, future, split = data
    scores = {"seasonal_naive": {"valid_rmsle": 0.5, "test_rmsle": 0.5}}
    window = panel[panel["date"] >= split["test_start"]]
    forecasts = window[[*KEY_COLUMNS, "sales"]].assign(
        split="test", seasonal_naive=window["sales"].fillna(0) * 1.1
    )
    final = SeasonalNaive().fit(panel)
    run_info = log_to_mlflow(
        ctx, scores, "seasonal_naive", final, future.head(16), panel, forecasts
    )
    uri = f"models:/timeseries/{run_info['version']}"
    assert tracking.model_card(uri) == {
        "trained_from": f"{panel['date'].min():%Y-%m-%d}",
        "trained_until": f"{panel['date'].max():%Y-%m-%d}",
    }
    # fitted on the window, but its backtest of this very window was logged: that is scored
    backtested = registered_scorer(ctx)(uri)
    assert backtested.items == int(window["sales"].notna().sum())
    assert backtested.value() == pytest.approx(
        candidate_scores(forecasts, "seasonal_naive").value()
    )

    other_window = forecasts.iloc[:-5]  # a backtest of another window does not count
    run_info = log_to_mlflow(
        ctx, scores, "seasonal_naive", final, future.head(16), panel, other_window
    )
    with pytest.raises(Unscorable, match="which includes the current test window"):
        registered_scorer(ctx)(f"models:/timeseries/{run_info['version']}")


def test_disagreement_figure_draws_the_series_that_differ_most(ctx, data):
    panel, _, split = data
    window = panel[panel["date"] >= split["test_start"]]
    forecasts = window[[*KEY_COLUMNS, "sales", "closed"]].assign(split="test")
    forecasts["a"] = forecasts["sales"].fillna(0)
    forecasts["b"] = forecasts["a"] * np.where(forecasts["family"] == FAMILIES[1], 2.0, 1.01)
    a, b = candidate_scores(forecasts, "a"), candidate_scores(forecasts, "b")
    rows = disagreements(a, b)
    assert {a.groups[i] for i in rows} == {FAMILIES[1]}
    figure = disagreement_figure(ctx, rows, a, b, ("v2 (champion)", "v3 (challenger)"))
    assert 1 <= len(figure.axes) <= 4
    assert all(FAMILIES[1] in ax.get_title() for ax in figure.axes)
    plt.close(figure)
