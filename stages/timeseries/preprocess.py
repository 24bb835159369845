"""preprocess: one daily panel (every series on every day, closed days as missing sales) with
the known covariates — promotions, holidays resolved per store, oil, calendar — plus the same
covariates for the Kaggle test horizon, and the time-based split."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from stages.core.context import StepContext
from stages.core.fsio import dump_json, staged_outputs
from stages.core.sources import find_file
from stages.timeseries.schema import StoreSales, read_raw

PANEL, FUTURE, SPLIT = "panel.parquet", "future.parquet", "split.json"
GENERATOR_INFO = "builtin_info.json"  # written by the builtin source only
SERIES = ["store_nbr", "family"]
CELEBRATED = ["Holiday", "Transfer", "Additional", "Bridge"]
COVARIATES = [
    "onpromotion",
    "national_holiday",
    "regional_holiday",
    "local_holiday",
    "event",
    "workday",
    "oil",
    "dow",
    "day",
    "month",
    "payday",
]


def holiday_flags(holidays: pd.DataFrame, stores: pd.DataFrame) -> pd.DataFrame:
    """(date, store_nbr) -> flags. A holiday moved to another date (`transferred`) is celebrated
    on its `Transfer` row's date, not its own."""
    celebrated = holidays[holidays["type"].isin(CELEBRATED) & ~holidays["transferred"]]
    rows = []
    for _, store in stores.iterrows():
        for flag, frame in {
            "national_holiday": celebrated[celebrated["locale"] == "National"],
            "regional_holiday": celebrated[
                (celebrated["locale"] == "Regional") & (celebrated["locale_name"] == store["state"])
            ],
            "local_holiday": celebrated[
                (celebrated["locale"] == "Local") & (celebrated["locale_name"] == store["city"])
            ],
            "event": holidays[holidays["type"] == "Event"],
            "workday": holidays[holidays["type"] == "Work Day"],
        }.items():
            rows += [(d, store["store_nbr"], flag) for d in frame["date"].unique()]
    flags = pd.DataFrame(rows, columns=["date", "store_nbr", "flag"]).assign(value=1)
    return flags.pivot_table(
        index=["date", "store_nbr"], columns="flag", values="value", aggfunc="max", fill_value=0
    )


def add_covariates(frame: pd.DataFrame, data: StoreSales) -> pd.DataFrame:
    flags = holiday_flags(data.holidays, data.stores)
    frame = frame.join(flags, on=["date", "store_nbr"])
    for flag in ["national_holiday", "regional_holiday", "local_holiday", "event", "workday"]:
        frame[flag] = frame[flag].fillna(0).astype(np.int8) if flag in frame else np.int8(0)
    oil = data.oil.set_index("date")["dcoilwtico"]
    all_days = pd.date_range(min(oil.index.min(), frame["date"].min()), frame["date"].max())
    oil = oil.reindex(all_days).ffill().bfill()
    frame["oil"] = frame["date"].map(oil).astype(float)
    frame["dow"] = frame["date"].dt.dayofweek.astype(np.int8)
    frame["day"] = frame["date"].dt.day.astype(np.int8)
    frame["month"] = frame["date"].dt.month.astype(np.int8)
    frame["payday"] = ((frame["date"].dt.day == 15) | frame["date"].dt.is_month_end).astype(np.int8)
    stores = data.stores.set_index("store_nbr")[["city", "state", "type", "cluster"]]
    return frame.join(stores, on="store_nbr")


def build_panel(data: StoreSales) -> pd.DataFrame:
    """Every series on every day from the first to the last train date; days absent from
    train.csv (Dec 25, closed stores) get missing sales and `closed` = 1."""
    series = data.train[SERIES].drop_duplicates().sort_values(SERIES)
    dates = pd.date_range(data.train["date"].min(), data.train["date"].max(), name="date")
    grid = pd.MultiIndex.from_product([dates, range(len(series))], names=["date", "i"])
    panel = series.reset_index(drop=True).iloc[grid.get_level_values("i")].reset_index(drop=True)
    panel.insert(0, "date", grid.get_level_values("date"))
    panel = panel.merge(data.train.drop(columns=["id"]), on=["date", *SERIES], how="left")
    panel["closed"] = panel["sales"].isna().astype(np.int8)
    panel["onpromotion"] = panel["onpromotion"].fillna(0).astype(float)
    return add_covariates(panel, data)


def build_future(data: StoreSales) -> pd.DataFrame:
    future = data.test.copy()
    future["onpromotion"] = future["onpromotion"].astype(float)
    future["closed"] = np.int8(0)
    return add_covariates(future, data)


def split_dates(panel: pd.DataFrame, horizon: int) -> dict[str, str]:
    """The last `horizon` days are the test, the `horizon` before them validation."""
    last = panel["date"].max()
    test_start = last - pd.Timedelta(days=horizon - 1)
    valid_start = test_start - pd.Timedelta(days=horizon)
    return {
        "first": f"{panel['date'].min():%Y-%m-%d}",
        "valid_start": f"{valid_start:%Y-%m-%d}",
        "test_start": f"{test_start:%Y-%m-%d}",
        "last": f"{last:%Y-%m-%d}",
        "horizon": horizon,
    }


def run(ctx: StepContext) -> None:
    data = read_raw(ctx.paths.raw)
    panel = build_panel(data)
    future = build_future(data)
    split = split_dates(panel, ctx.task_params.preprocess.horizon)
    out = ctx.paths.processed
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        panel.to_parquet(tmp / PANEL, index=False)
        future.to_parquet(tmp / FUTURE, index=False)
        (tmp / SPLIT).write_text(dump_json(split), encoding="utf-8")
        generator_info = find_file(ctx.paths.raw, GENERATOR_INFO)
        if generator_info is not None:
            shutil.copy2(generator_info, tmp / GENERATOR_INFO)
