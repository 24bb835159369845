"""The builtin store-sales generator: the real Kaggle file format, determinism, and effects that a
model can actually learn (checked without a model)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.timeseries.generate import INFO_FILE, GeneratorSpec, write_store_sales

SPEC = GeneratorSpec()
FILES = [
    "train.csv",
    "test.csv",
    "stores.csv",
    "oil.csv",
    "holidays_events.csv",
    "transactions.csv",
    INFO_FILE,
]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("store_sales")
    write_store_sales(dest, SPEC)
    return dest


@pytest.fixture(scope="module")
def train(data: Path) -> pd.DataFrame:
    return pd.read_csv(data / "train.csv", parse_dates=["date"])


def _info(data: Path) -> dict:
    return json.loads((data / INFO_FILE).read_text())


def test_files_have_the_kaggle_columns(data: Path):
    columns = {
        "train.csv": ["id", "date", "store_nbr", "family", "sales", "onpromotion"],
        "test.csv": ["id", "date", "store_nbr", "family", "onpromotion"],
        "stores.csv": ["store_nbr", "city", "state", "type", "cluster"],
        "oil.csv": ["date", "dcoilwtico"],
        "holidays_events.csv": [
            "date",
            "type",
            "locale",
            "locale_name",
            "description",
            "transferred",
        ],
        "transactions.csv": ["date", "store_nbr", "transactions"],
    }
    for name, expected in columns.items():
        assert list(pd.read_csv(data / name, nrows=5).columns) == expected, name
    assert set(_info(data)) == {
        "noise_sigma",
        "series",
        "train_rows",
        "test_rows",
        "oracle_rmsle_last_16_days",
        "oracle_rmsle_all",
    }


def test_train_covers_every_series_and_day_but_christmas(data: Path, train: pd.DataFrame):
    days = pd.date_range(SPEC.start, SPEC.end)
    days = days[~((days.month == 12) & (days.day == 25))]
    series = SPEC.stores * SPEC.families
    info = _info(data)
    assert info["series"] == series
    assert len(train) == info["train_rows"] == len(days) * series
    assert not ((train["date"].dt.month == 12) & (train["date"].dt.day == 25)).any()
    assert set(train["date"]) == set(days)
    assert not train.duplicated(["date", "store_nbr", "family"]).any()
    assert train["id"].tolist() == list(range(len(train)))
    key = train[["date", "store_nbr", "family"]]
    pd.testing.assert_frame_equal(key, key.sort_values(["date", "store_nbr", "family"]))
    assert train.groupby(["store_nbr", "family"]).size().eq(len(days)).all()


def test_test_csv_is_the_horizon_after_end_for_every_series(data: Path, train: pd.DataFrame):
    test = pd.read_csv(data / "test.csv", parse_dates=["date"])
    horizon = pd.date_range(pd.Timestamp(SPEC.end) + pd.Timedelta(days=1), periods=SPEC.horizon)
    assert sorted(test["date"].unique()) == list(horizon)
    assert len(test) == _info(data)["test_rows"] == SPEC.horizon * SPEC.stores * SPEC.families
    assert not test.duplicated(["date", "store_nbr", "family"]).any()
    assert set(map(tuple, test[["store_nbr", "family"]].values)) == set(
        map(tuple, train[["store_nbr", "family"]].values)
    )
    assert test["id"].tolist() == list(range(len(train), len(train) + len(test)))
    assert (test["onpromotion"] >= 0).all() and (test["onpromotion"] > 0).any()


def test_comma_and_slash_family_names_round_trip(data: Path, train: pd.DataFrame):
    text = (data / "train.csv").read_text()
    assert '"LIQUOR,WINE,BEER"' in text
    assert len(train) == text.count("\n") - 1
    families = set(train["family"])
    assert {"LIQUOR,WINE,BEER", "BREAD/BAKERY", "GROCERY I", "BOOKS"} <= families
    assert len(families) == SPEC.families


def test_sales_are_nonnegative_with_zeros_and_real_rounding(data: Path, train: pd.DataFrame):
    assert (train["sales"] >= 0).all()
    assert (train["sales"] == 0).sum() > 100
    assert (train["onpromotion"] >= 0).all() and train["onpromotion"].dtype.kind == "i"
    new_year = train[(train["date"].dt.month == 1) & (train["date"].dt.day == 1)]
    assert len(new_year) and (new_year["sales"] == 0).all()
    counts = train[train["family"] == "GROCERY I"]["sales"]
    assert (counts == counts.round()).all()
    produce = train[train["family"] == "PRODUCE"]["sales"]
    assert (produce != produce.round()).mean() > 0.5
    assert np.allclose(produce, produce.round(3), rtol=0, atol=1e-9)
    books = train[train["family"] == "BOOKS"].sort_values("date")
    first_sale = books.loc[books["sales"] > 0, "date"].min()
    assert pd.Timestamp(SPEC.start) + pd.Timedelta(days=150) < first_sale


def test_stores_are_real_ecuadorian_places(data: Path):
    stores = pd.read_csv(data / "stores.csv")
    assert stores["store_nbr"].tolist() == list(range(1, SPEC.stores + 1))
    assert stores["city"].duplicated().any()
    assert "Quito" in set(stores["city"]) and "Pichincha" in set(stores["state"])
    assert set(stores["type"]) <= set("ABCDE")
    assert stores["cluster"].between(1, 17).all()


def test_oil_has_weekend_gaps_and_missing_prices(data: Path):
    oil = pd.read_csv(data / "oil.csv", parse_dates=["date"])
    assert (oil["date"].dt.dayofweek < 5).all()
    assert oil["date"].diff().dt.days.max() >= 3
    assert oil["date"].min() == pd.Timestamp(SPEC.start)
    last = pd.Timestamp(SPEC.end) + pd.Timedelta(days=SPEC.horizon)
    assert last - pd.Timedelta(days=3) <= oil["date"].max() <= last
    assert 0 < oil["dcoilwtico"].isna().sum() < 0.1 * len(oil)
    assert oil["dcoilwtico"].dropna().between(20, 90).all()
    assert 38 < oil["dcoilwtico"].mean() < 57


def test_holidays_have_transfers_and_every_kind(data: Path):
    holidays = pd.read_csv(data / "holidays_events.csv", parse_dates=["date"])
    stores = pd.read_csv(data / "stores.csv")
    lines = (data / "holidays_events.csv").read_text().splitlines()[1:]
    assert {line.rsplit(",", 1)[1] for line in lines} == {"True", "False"}
    assert holidays["transferred"].dtype == bool
    moved = holidays[holidays["transferred"]]
    transfers = holidays[holidays["type"] == "Transfer"]
    assert len(moved) >= 1 and len(transfers) >= 1
    assert set(transfers["description"]) >= {f"Traslado {d}" for d in moved["description"]}
    assert set(holidays["type"]) == {
        "Holiday",
        "Transfer",
        "Additional",
        "Bridge",
        "Work Day",
        "Event",
    }
    national = holidays[holidays["locale"] == "National"]
    assert set(national["locale_name"]) == {"Ecuador"}
    local = holidays[holidays["locale"] == "Local"]
    regional = holidays[holidays["locale"] == "Regional"]
    assert len(local) and set(local["locale_name"]) <= set(stores["city"])
    assert len(regional) and set(regional["locale_name"]) <= set(stores["state"])
    assert "Fundacion de Quito" in set(local["description"])
    for name in ["Primer dia del ano", "Carnaval", "Viernes Santo", "Dia del Trabajo"]:
        assert name in set(national["description"]), name
    assert holidays["date"].between(SPEC.start, "2017-08-31").all()
    assert holidays["date"].is_monotonic_increasing


def test_transactions_follow_store_sales(data: Path, train: pd.DataFrame):
    transactions = pd.read_csv(data / "transactions.csv", parse_dates=["date"])
    assert transactions["transactions"].dtype.kind == "i"
    total = train.groupby(["date", "store_nbr"])["sales"].sum()
    selling = total[total > 0]
    joined = transactions.set_index(["date", "store_nbr"])["transactions"]
    assert set(joined.index) == set(selling.index)
    assert np.corrcoef(np.log(joined.sort_index()), np.log(selling.sort_index()))[0, 1] > 0.8


def test_same_seed_same_bytes_other_seed_differs(data: Path, tmp_path: Path):
    again, other = tmp_path / "again", tmp_path / "other"
    again.mkdir()
    other.mkdir()
    write_store_sales(again, SPEC)
    write_store_sales(other, replace(SPEC, seed=SPEC.seed + 1))
    for name in FILES:
        assert (again / name).read_bytes() == (data / name).read_bytes(), name
    assert (other / "train.csv").read_bytes() != (data / "train.csv").read_bytes()


def test_oracle_error_is_the_noise(data: Path):
    info = _info(data)
    assert info["noise_sigma"] == SPEC.noise
    assert abs(info["oracle_rmsle_last_16_days"] - SPEC.noise) < 0.2 * SPEC.noise
    assert abs(info["oracle_rmsle_all"] - SPEC.noise) < 0.2 * SPEC.noise


def test_promotions_lift_sales_of_the_same_series(train: pd.DataFrame):
    sold = train[train["sales"] > 0].assign(log=lambda d: np.log1p(d["sales"]))
    sold = sold.assign(promo=sold["onpromotion"] > 0)
    means = sold.groupby(["store_nbr", "family", "promo"])["log"].mean().unstack("promo").dropna()
    lift = means[True] - means[False]
    assert len(lift) >= 0.8 * SPEC.stores * SPEC.families
    assert (lift > 0).mean() > 0.9
    assert lift.median() > 0.25


def test_calendar_effects_are_real(data: Path, train: pd.DataFrame):
    """Weekends, effective national holidays and back-to-school lift sales."""
    grocery = train[(train["family"] == "GROCERY I") & (train["onpromotion"] == 0)]
    grocery = grocery[grocery["sales"] > 0].assign(log=lambda d: np.log1p(d["sales"]))
    weekend = grocery["date"].dt.dayofweek >= 5
    assert grocery.loc[weekend, "log"].mean() - grocery.loc[~weekend, "log"].mean() > 0.15

    holidays = pd.read_csv(data / "holidays_events.csv", parse_dates=["date"])
    national = holidays[(holidays["locale"] == "National") & ~holidays["transferred"]]
    lifted = national[national["type"].isin(["Holiday", "Additional", "Bridge", "Transfer"])]
    weekday = grocery[~weekend]
    on_holiday = weekday["date"].isin(lifted["date"])
    assert weekday.loc[on_holiday, "log"].mean() - weekday.loc[~on_holiday, "log"].mean() > 0.1

    school = train[train["family"] == "SCHOOL AND OFFICE SUPPLIES"]
    month = school.groupby(school["date"].dt.month)["sales"].mean()
    assert month[8] > 3 * month[[3, 4, 5]].mean()


def test_other_sizes_and_bad_specs(tmp_path: Path):
    spec = GeneratorSpec(stores=1, families=33, start="2017-01-01", end="2017-03-31", horizon=5)
    info = write_store_sales(tmp_path, spec)
    assert info["series"] == 33 and info["test_rows"] == 5 * 33
    train = pd.read_csv(tmp_path / "train.csv")
    assert len(train) == info["train_rows"] == 90 * 33
    assert train["family"].nunique() == 33
    with pytest.raises(ValueError, match="families"):
        write_store_sales(tmp_path, GeneratorSpec(families=34))
    with pytest.raises(ValueError, match="stores"):
        write_store_sales(tmp_path, GeneratorSpec(stores=0))
