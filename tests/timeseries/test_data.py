"""Reading, validating and preparing the store-sales files; bad input at the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.core.errors import UserError
from stages.timeseries.forecasters import SeasonalNaive
from stages.timeseries.frequency import DAILY
from stages.timeseries.preprocess import build_future, build_panel, holiday_flags, split_dates
from stages.timeseries.schema import read_raw
from tests.conftest import copy_project, error_lines, set_tasks, stages_cli, tree_digest
from tests.timeseries.kaggle_fixture import FAMILIES, STORES, TEST_DAYS, write_kaggle_folder


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory) -> Path:
    return write_kaggle_folder(tmp_path_factory.mktemp("kaggle"))


def test_reads_the_real_layout_at_any_depth(kaggle: Path):
    data = read_raw(kaggle)
    assert sorted(data.train["family"].unique()) == FAMILIES
    assert sorted(data.train["store_nbr"].unique()) == STORES
    assert data.train["date"].dtype.kind == "M"
    assert data.holidays["transferred"].dtype == bool
    assert len(data.test) == len(TEST_DAYS) * len(STORES) * len(FAMILIES)


def test_transferred_holiday_counts_on_its_transfer_day_and_local_only_in_its_city(kaggle):
    data = read_raw(kaggle)
    flags = holiday_flags(data.holidays, data.stores, DAILY)
    national = flags["national_holiday"]
    assert national.get((pd.Timestamp("2017-05-24"), 1), 0) == 0  # moved away
    assert national[(pd.Timestamp("2017-05-26"), 1)] == 1  # celebrated here
    local = flags["local_holiday"]
    assert local[(pd.Timestamp("2017-07-25"), 10)] == 1  # Guayaquil
    assert local.get((pd.Timestamp("2017-07-25"), 1), 0) == 0  # not Quito


def test_panel_has_every_series_every_day_and_marks_missing_days_closed(kaggle):
    data = read_raw(kaggle)
    data.train.drop(data.train[data.train["date"] == "2017-03-01"].index, inplace=True)
    panel = build_panel(data, DAILY)
    assert len(panel) == len(pd.date_range("2017-02-01", "2017-08-15")) * 6
    missing = panel[panel["date"] == "2017-03-01"]
    assert missing["closed"].eq(1).all() and missing["sales"].isna().all()
    assert panel["oil"].notna().all()  # weekend gaps and missing prices filled forward
    future = build_future(data, DAILY)
    assert future["local_holiday"].sum() == 0 and len(future) == len(data.test)
    split = split_dates(panel, 16, DAILY)
    assert (split["valid_start"], split["test_start"]) == ("2017-07-15", "2017-07-31")


def test_seasonal_naive_repeats_last_weeks_weekday():
    days = pd.date_range("2017-01-01", periods=21)
    history = pd.DataFrame(
        {
            "date": days,
            "store_nbr": 1,
            "family": "A",
            "sales": np.arange(21.0),
            "dow": days.dayofweek,
            "closed": 0,
        }
    )
    history.loc[19, "sales"] = np.nan  # a closed day: take the same weekday a week earlier
    future_days = pd.date_range("2017-01-22", periods=7)
    future = pd.DataFrame(
        {
            "date": future_days,
            "store_nbr": 1,
            "family": "A",
            "dow": future_days.dayofweek,
            "closed": [0] * 6 + [1],
        }
    )
    predicted = SeasonalNaive().fit(history).predict(future)
    assert predicted.tolist() == [14.0, 15.0, 16.0, 17.0, 18.0, 12.0, 0.0]


# --- the whole task on the hand-built real layout, and bad input at the CLI ---

FAST_TRAIN = {
    "sarimax": {"series": 2, "maxiter": 5, "history": 90},
    "prophet": {"series": 2, "history": 90},
    "rnn": {"epochs": 1, "window": 28, "hidden": 16},
    "catboost": {"iterations": 50, "rolling_windows": [7, 14]},
}


@pytest.fixture(scope="module")
def kaggle_project(kaggle: Path, tmp_path_factory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("ts") / "project")
    set_tasks(
        root,
        ["timeseries"],
        timeseries={
            "source": {"kind": "path", "path": str(kaggle)},
            "train": FAST_TRAIN,
        },
    )
    for step in ("download", "validate"):
        result = stages_cli(root, step, "timeseries")
        assert result.returncode == 0, result.stderr
    return root


@pytest.mark.slow
def test_the_pipeline_runs_end_to_end_on_the_real_layout(kaggle_project: Path, tmp_path: Path):
    from tests.conftest import dvc

    root = Path(shutil.copytree(kaggle_project, tmp_path / "p", symlinks=True))
    dvc(root, "repro")
    reports = root / "reports" / "timeseries"
    metrics = pd.read_json(reports / "metrics.json", typ="series")
    assert set(metrics["test"]) == {"seasonal_naive", "sarimax", "prophet", "rnn", "catboost"}
    submission = pd.read_csv(reports / "submission.csv")
    test = pd.read_csv(
        kaggle_project / "data/raw/timeseries/store-sales-time-series-forecasting/test.csv"
    )
    assert submission["id"].tolist() == test["id"].tolist()
    assert (submission["sales"] >= 0).all()
    assert metrics["irreducible_rmsle"] is None  # only the builtin data knows its noise
    assert "Time series — store sales forecasting" in (reports / "report.html").read_text()


@pytest.fixture
def validated(kaggle_project: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(kaggle_project, tmp_path / "p", symlinks=True))


def raw_file(root: Path, name: str) -> Path:
    return next((root / "data" / "raw" / "timeseries").rglob(name))


def fails_cleanly(root: Path, step: str, *fragments: str) -> None:
    reports = root / "reports" / "timeseries"
    before = tree_digest(reports / "validation.json")
    result = stages_cli(root, step, "timeseries")
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert tree_digest(reports / "validation.json") == before


def test_a_missing_file_is_named(validated: Path):
    raw_file(validated, "oil.csv").unlink()
    fails_cleanly(validated, "validate", "missing oil.csv")


def test_a_date_that_does_not_parse_is_named_with_its_line(validated: Path):
    path = raw_file(validated, "train.csv")
    frame = pd.read_csv(path, dtype=str)
    frame.loc[6, "date"] = "2017-13-01"
    frame.to_csv(path, index=False)
    fails_cleanly(
        validated, "validate", "train.csv: column 'date' line 8: '2017-13-01' is not a date"
    )


def test_negative_sales_and_duplicate_keys_fail_validation(validated: Path):
    path = raw_file(validated, "train.csv")
    frame = pd.read_csv(path)
    frame.loc[3, "sales"] = -5.0
    frame.to_csv(path, index=False)
    fails_cleanly(
        validated, "validate", "column 'sales'", "expect_column_values_to_be_between", "[-5.0]"
    )
    frame.loc[3, "sales"] = 1.0
    pd.concat([frame, frame.iloc[[10]]]).to_csv(path, index=False)
    fails_cleanly(validated, "validate", "train.csv", "expect_compound_columns_to_be_unique")


def test_a_failed_download_keeps_the_data(validated: Path, tmp_path: Path):
    from tests.conftest import edit_params

    raw = validated / "data" / "raw" / "timeseries"
    before = tree_digest(raw)
    broken = tmp_path / "store-sales.zip"
    broken.write_bytes(b"PK\x03\x04 cut off")
    edit_params(validated, timeseries={"source": {"path": str(broken)}})
    result = stages_cli(validated, "download", "timeseries")
    assert result.returncode == 2 and "store-sales.zip: not a valid" in result.stderr
    assert tree_digest(raw) == before


def test_an_empty_source_names_what_was_expected(tmp_path: Path):
    with pytest.raises(UserError, match=r"missing train.csv \(expected the Kaggle files"):
        read_raw(tmp_path)
