"""preprocess: one panel on the data's grid (every series in every period — day, week or month
— closed or missing periods as missing sales) with the known covariates — promotions, holidays
resolved per store and period, oil, calendar — plus the same covariates for the rows of
test.csv, and the time-based split in periods."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd

from stages.core.context import StepContext
from stages.core.errors import UserError
from stages.core.fsio import dump_json, staged_outputs
from stages.core.sources import find_file
from stages.timeseries.frequency import Frequency, of_sales
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


def holiday_flags(
    holidays: pd.DataFrame, stores: pd.DataFrame, frequency: Frequency
) -> pd.DataFrame:
    """(date, store_nbr) -> flags, a holiday counting in the period (day, week, month) that
    holds it. A holiday moved to another date (`transferred`) is celebrated on its `Transfer`
    row's date, not its own."""
    holidays = holidays.assign(date=frequency.label(holidays["date"]))
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


def add_covariates(frame: pd.DataFrame, data: StoreSales, frequency: Frequency) -> pd.DataFrame:
    flags = holiday_flags(data.holidays, data.stores, frequency)
    frame = frame.join(flags, on=["date", "store_nbr"])
    for flag in ["national_holiday", "regional_holiday", "local_holiday", "event", "workday"]:
        frame[flag] = frame[flag].fillna(0).astype(np.int8) if flag in frame else np.int8(0)
    oil = data.oil.set_index("date")["dcoilwtico"]
    first = frame["date"].min() if oil.empty else min(oil.index.min(), frame["date"].min())
    oil = oil.reindex(pd.date_range(first, frame["date"].max())).ffill().bfill()
    frame["oil"] = frame["date"].map(oil).astype(float)
    frame["dow"] = frame["date"].dt.dayofweek.astype(np.int8)
    frame["day"] = frame["date"].dt.day.astype(np.int8)
    frame["month"] = frame["date"].dt.month.astype(np.int8)
    frame["payday"] = ((frame["date"].dt.day == 15) | frame["date"].dt.is_month_end).astype(np.int8)
    stores = data.stores.set_index("store_nbr")[["city", "state", "type", "cluster"]]
    return frame.join(stores, on="store_nbr")


def build_panel(data: StoreSales, frequency: Frequency) -> pd.DataFrame:
    """Every series in every period from the first to the last train date; periods absent from
    train.csv (Dec 25, closed stores) get missing sales and `closed` = 1."""
    series = data.train[SERIES].drop_duplicates().sort_values(SERIES)
    dates = frequency.range(data.train["date"].min(), data.train["date"].max())
    grid = pd.MultiIndex.from_product([dates, range(len(series))], names=["date", "i"])
    panel = series.reset_index(drop=True).iloc[grid.get_level_values("i")].reset_index(drop=True)
    panel.insert(0, "date", grid.get_level_values("date"))
    panel = panel.merge(data.train.drop(columns=["id"]), on=["date", *SERIES], how="left")
    panel["closed"] = panel["sales"].isna().astype(np.int8)
    panel["onpromotion"] = panel["onpromotion"].fillna(0).astype(float)
    return add_covariates(panel, data, frequency)


def build_future(data: StoreSales, frequency: Frequency) -> pd.DataFrame:
    future = data.test.copy()
    future["onpromotion"] = future["onpromotion"].astype(float)
    future["closed"] = np.int8(0)
    return add_covariates(future, data, frequency)


def resolve_horizon(horizon: int | str, test: pd.DataFrame, frequency: Frequency) -> int:
    """`auto`: as many periods as test.csv asks for, else the frequency's default."""
    if horizon != "auto":
        return int(horizon)
    return int(test["date"].nunique()) or frequency.horizon


def split_dates(panel: pd.DataFrame, horizon: int, frequency: Frequency) -> dict:
    """The last `horizon` periods are the test, the `horizon` before them validation; both
    need history before them."""
    periods = panel["date"].nunique()
    if periods <= 2 * horizon:
        raise UserError(
            f"timeseries: train.csv has {frequency.periods(periods)}, too few for a validation "
            f"and a test window of {frequency.periods(horizon)} each with history before them "
            "(set timeseries.preprocess.horizon lower, or bring more history)"
        )
    last = panel["date"].max()
    test_start = frequency.add(last, -(horizon - 1))
    valid_start = frequency.add(test_start, -horizon)
    return {
        "first": f"{panel['date'].min():%Y-%m-%d}",
        "valid_start": f"{valid_start:%Y-%m-%d}",
        "test_start": f"{test_start:%Y-%m-%d}",
        "last": f"{last:%Y-%m-%d}",
        "horizon": horizon,
        "frequency": frequency.name,
        "offset": frequency.offset,
    }


def run(ctx: StepContext) -> None:
    data = read_raw(ctx.paths.raw)
    frequency = of_sales(data)
    panel = build_panel(data, frequency)
    future = build_future(data, frequency)
    horizon = resolve_horizon(ctx.task_params.preprocess.horizon, data.test, frequency)
    split = split_dates(panel, horizon, frequency)
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
