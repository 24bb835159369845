"""The backtest fits side by side in worker processes (a CPU host) score, pick and refit as one
after another does."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from stages.timeseries.frequency import named, of_sales
from stages.timeseries.generate import GeneratorSpec, write_store_sales
from stages.timeseries.params import TrainParams
from stages.timeseries.preprocess import build_future, build_panel, split_dates
from stages.timeseries.schema import read_raw
from stages.timeseries.train import factories, fits


@pytest.fixture(scope="module")
def store_sales(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    raw = tmp_path_factory.mktemp("raw")
    write_store_sales(raw, GeneratorSpec(stores=2, families=2, start="2016-06-01"))
    data = read_raw(raw)
    frequency = of_sales(data)
    panel = build_panel(data, frequency)
    return panel, build_future(data, frequency), split_dates(panel, 16, frequency)


def small_models(split: dict) -> dict:
    params = TrainParams.model_validate(
        {
            "sarimax": {"enabled": False},
            "prophet": {"enabled": False},
            "rnn": {"epochs": 2, "hidden": 8, "window": 28},
            "catboost": {"iterations": 60},
        }
    )
    frequency = named(split["frequency"], split["offset"])
    return factories(params, split["horizon"], frequency, seed=3, n_jobs=1, device="cpu")


@pytest.mark.slow
def test_side_by_side_fits_equal_one_after_another(store_sales):
    panel, future, split = store_sales
    made = small_models(split)
    alone = fits(made, panel, split, workers=1)
    beside = fits(made, panel, split, workers=2)

    for (forecasts, scores, best, final), other in ((alone, beside), (beside, alone)):
        assert set(scores) == {"seasonal_naive", "rnn", "catboost"}
        assert set(forecasts["split"]) == {"valid", "test"}
        assert best == min(scores, key=lambda name: scores[name]["valid_rmsle"]) == other[2]
        for name, values in scores.items():
            assert values["valid_rmsle"] == pytest.approx(other[1][name]["valid_rmsle"], rel=1e-4)
            assert values["test_rmsle"] == pytest.approx(other[1][name]["test_rmsle"], rel=1e-4)
        # the final model saw the test window: its forecast beyond it is its own
        assert np.isfinite(final.predict(future)).all()
    assert np.allclose(alone[3].predict(future), beside[3].predict(future), rtol=1e-4)
    assert alone[1]["rnn"]["valid_rmsle"] < alone[1]["seasonal_naive"]["valid_rmsle"] * 1.5


def test_the_pool_is_left_out_where_the_scheduler_gives_one_core(monkeypatch):
    from stages.timeseries.train import side_by_side_fits

    params = TrainParams()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert side_by_side_fits(params, "cpu", -1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "8")
    assert side_by_side_fits(params, "cpu", 1) == 1
    assert side_by_side_fits(params, "cpu", -1) == min(8, len(os.sched_getaffinity(0)))


def test_per_series_fits_stay_in_the_stage_where_the_scheduler_gives_one_core(monkeypatch):
    from stages.timeseries.forecasters import parallel_map

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert set(parallel_map(process_id, [0, 1, 2], n_jobs=-1)) == {os.getpid()}


def process_id(_) -> int:
    return os.getpid()
