"""validate: schema, dates, keys, value ranges and cross-file consistency of the six files."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

from stages.core.context import StepContext
from stages.core.validation import TableCheck, publish_report, run_checks
from stages.timeseries.frequency import Frequency, of_sales
from stages.timeseries.params import ValidateParams
from stages.timeseries.schema import KEY, StoreSales, read_raw

HOLIDAY_TYPES = ["Holiday", "Transfer", "Additional", "Bridge", "Work Day", "Event"]
LOCALES = ["National", "Regional", "Local"]


def check(data: StoreSales, params: ValidateParams) -> list[TableCheck]:
    stores = sorted(data.stores["store_nbr"].tolist())
    families = sorted(data.train["family"].unique().tolist())
    last_train_day = data.train["date"].max()
    name = {table: path.name for table, path in data.files.items()}
    return [
        TableCheck(
            name["train"],
            data.train,
            [
                gxe.ExpectCompoundColumnsToBeUnique(column_list=KEY),
                gxe.ExpectColumnValuesToNotBeNull(column="sales"),
                gxe.ExpectColumnValuesToBeBetween(
                    column="sales", min_value=0, max_value=params.max_sales
                ),
                gxe.ExpectColumnValuesToBeBetween(column="onpromotion", min_value=0),
                gxe.ExpectColumnValuesToBeInSet(column="store_nbr", value_set=stores),
            ],
        ),
        TableCheck(
            name["test"],
            data.test,
            [
                gxe.ExpectCompoundColumnsToBeUnique(column_list=KEY),
                gxe.ExpectColumnValuesToBeBetween(column="onpromotion", min_value=0),
                gxe.ExpectColumnValuesToBeInSet(column="store_nbr", value_set=stores),
                gxe.ExpectColumnValuesToBeInSet(column="family", value_set=families),
                gxe.ExpectColumnMinToBeBetween(
                    column="date", min_value=last_train_day + pd.Timedelta(days=1)
                ),
            ],
        ),
        TableCheck(
            name["stores"],
            data.stores,
            [
                gxe.ExpectColumnValuesToBeUnique(column="store_nbr"),
                gxe.ExpectColumnValuesToNotBeNull(column="city"),
            ],
        ),
        TableCheck(
            name["oil"],
            data.oil,
            [
                gxe.ExpectColumnValuesToBeUnique(column="date"),
                gxe.ExpectColumnValuesToBeBetween(column="dcoilwtico", min_value=0, max_value=500),
            ],
        ),
        TableCheck(
            name["holidays"],
            data.holidays,
            [
                gxe.ExpectColumnValuesToBeInSet(column="type", value_set=HOLIDAY_TYPES),
                gxe.ExpectColumnValuesToBeInSet(column="locale", value_set=LOCALES),
                gxe.ExpectColumnValuesToBeInSet(column="transferred", value_set=[True, False]),
            ],
        ),
        TableCheck(
            name["transactions"],
            data.transactions,
            [
                gxe.ExpectColumnValuesToBeBetween(column="transactions", min_value=0),
                gxe.ExpectColumnValuesToBeInSet(column="store_nbr", value_set=stores),
            ],
        ),
    ]


def facts(data: StoreSales, frequency: Frequency) -> dict[str, Any]:
    train = data.train
    series = train.groupby(["store_nbr", "family"]).ngroups
    days = train["date"].dt.normalize().unique()
    christmas = sum(1 for d in days if d.month == 12 and d.day == 25)
    grid = frequency.range(train["date"].min(), train["date"].max())
    return {
        "frequency": f"{frequency.name} ({frequency.offset})",
        "train rows": len(train),
        "series (store x family)": series,
        "stores": train["store_nbr"].nunique(),
        "families": train["family"].nunique(),
        "train dates": f"{train['date'].min():%Y-%m-%d} .. {train['date'].max():%Y-%m-%d}",
        "test dates": f"{data.test['date'].min():%Y-%m-%d} .. {data.test['date'].max():%Y-%m-%d}",
        f"missing {frequency.unit}s in train (e.g. Dec 25)": len(grid) - len(days),
        "Dec 25 rows in train": christmas,
        "zero-sales share": round(float((train["sales"] == 0).mean()), 4),
        "days on promotion share": round(float((train["onpromotion"] > 0).mean()), 4),
        "oil days missing a price": int(data.oil["dcoilwtico"].isna().sum()),
        "holidays (of them transferred)": (
            f"{len(data.holidays)} ({int(data.holidays['transferred'].sum())})"
        ),
    }


def run(ctx: StepContext) -> None:
    data = read_raw(ctx.paths.raw)
    frequency = of_sales(data)
    report = run_checks(ctx.task, check(data, ctx.task_params.validate_), facts(data, frequency))
    publish_report(report, ctx.paths.validation_json, ctx.paths.validation_html)
