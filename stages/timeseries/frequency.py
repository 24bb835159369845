"""The panel's frequency (daily, weekly or monthly), inferred from the train dates. It is the
period arithmetic every step uses, and it sets each model's seasonal period, yearly lag,
rolling windows and the default horizon, so that nothing downstream assumes days."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stages.core.errors import UserError
from stages.timeseries.schema import StoreSales

WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]


@dataclass(frozen=True)
class Frequency:
    """`offset`: the pandas alias of the grid. A panel date labels the period that starts on it
    (monthly data dated on month ends labels its month)."""

    name: str  # daily | weekly | monthly
    offset: str  # D | W-SUN .. | MS | ME
    season: int  # periods of the seasonal cycle: a week of days, a year of weeks or months
    year: int  # periods of a year: the yearly lag (364 days keeps the weekday)
    horizon: int  # periods forecast when test.csv has no rows (Kaggle: 16 days)
    rolling: tuple[int, ...]  # rolling-mean windows of the gradient boosting features

    @property
    def unit(self) -> str:
        return {"daily": "day", "weekly": "week", "monthly": "month"}[self.name]

    def periods(self, count: int) -> str:
        return f"{count} {self.unit}{'s' if count != 1 else ''}"

    def range(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DatetimeIndex:
        return pd.date_range(start, end, freq=self.offset, name="date")

    def add(self, date: pd.Timestamp, periods: int) -> pd.Timestamp:
        return date + periods * pd.tseries.frequencies.to_offset(self.offset)

    def index(self, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """A running period number: consecutive periods differ by one."""
        dates = pd.DatetimeIndex(dates)
        if self.name == "monthly":
            return np.asarray(dates.year * 12 + dates.month - 1, dtype=np.int64)
        days = (dates - pd.Timestamp(0)).days.to_numpy()
        return days // 7 if self.name == "weekly" else days

    def phase(self, dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        """The position in the season: the weekday of daily data, the month of monthly data."""
        if self.name == "daily":
            return np.asarray(pd.DatetimeIndex(dates).dayofweek)
        return self.index(dates) % self.season

    def label(self, dates: pd.Series) -> pd.Series:
        """Any day -> the panel date of the period holding it (a holiday -> its week or month)."""
        if self.name == "daily":
            return dates
        if self.name == "weekly":
            anchor = WEEKDAYS.index(self.offset.removeprefix("W-"))
            return dates - pd.to_timedelta((dates.dt.dayofweek - anchor) % 7, unit="D")
        months = dates.dt.to_period("M")
        return months.dt.start_time if self.offset == "MS" else months.dt.end_time.dt.normalize()


DAILY = Frequency("daily", "D", season=7, year=364, horizon=16, rolling=(7, 14, 28, 56))


def weekly(anchor: str) -> Frequency:
    return Frequency("weekly", f"W-{anchor}", season=52, year=52, horizon=8, rolling=(4, 8, 13, 26))


def monthly(offset: str) -> Frequency:
    return Frequency("monthly", offset, season=12, year=12, horizon=6, rolling=(3, 6, 12))


def named(name: str, offset: str) -> Frequency:
    """The Frequency written to split.json as (name, offset)."""
    if name == "daily":
        return DAILY
    return weekly(offset.removeprefix("W-")) if name == "weekly" else monthly(offset)


EXPECTED = (
    "expected one row per series per day, per week (all on one weekday) or per month "
    "(all on the 1st or all on the last day)"
)


def infer(dates: pd.Series, path: Path) -> Frequency:
    """The grid of `dates` from their most common step; any date off that grid is named."""
    unique = pd.DatetimeIndex(dates.drop_duplicates()).sort_values()
    if len(unique) < 3:
        raise UserError(f"{path}: column 'date' has {len(unique)} distinct dates ({EXPECTED})")
    steps = pd.Series((unique[1:] - unique[:-1]).days)
    step = int(steps.mode().iloc[0])
    if step == 1:
        return DAILY
    if step == 7:
        off = unique[unique.dayofweek != unique[0].dayofweek]
        if not len(off):
            return weekly(WEEKDAYS[unique[0].dayofweek])
        raise UserError(
            f"{path}: column 'date' mixes weekdays: weekly dates on {unique[0]:%a} "
            f"({unique[0]:%Y-%m-%d}) but {_examples(off)} ({EXPECTED})"
        )
    if 28 <= step <= 31:
        for offset, on_grid in (("MS", unique.is_month_start), ("ME", unique.is_month_end)):
            if on_grid.all():
                return monthly(offset)
        off = unique[~unique.is_month_start]
        raise UserError(
            f"{path}: column 'date' is monthly but not on one day of the month: "
            f"{_examples(off)} ({EXPECTED})"
        )
    first = int((steps == step).to_numpy().argmax())
    raise UserError(
        f"{path}: column 'date' is not a regular series: the most common step is {step} days, "
        f"e.g. {unique[first]:%Y-%m-%d} -> {unique[first + 1]:%Y-%m-%d} ({EXPECTED})"
    )


def check_follows(frequency: Frequency, last: pd.Timestamp, dates: pd.Series, path: Path) -> None:
    """The rows to forecast lie on the train grid, after its last date."""
    if dates.empty:
        return
    grid = frequency.range(frequency.add(last, 1), max(dates.max(), frequency.add(last, 1)))
    off = pd.DatetimeIndex(dates.drop_duplicates()).difference(grid)
    if len(off):
        raise UserError(
            f"{path}: column 'date' has {_examples(off)}, not on the {frequency.name} grid of "
            f"train.csv after {last:%Y-%m-%d} (expected {_examples(grid[:2])}, ...)"
        )


def _examples(dates: pd.DatetimeIndex) -> str:
    shown = ", ".join(f"{d:%Y-%m-%d} ({d:%a})" for d in dates[:3])
    return shown + (f" and {len(dates) - 3} more" if len(dates) > 3 else "")


def of_sales(data: StoreSales) -> Frequency:
    """The frequency of train.csv, with test.csv's dates checked to continue its grid."""
    frequency = infer(data.train["date"], data.files["train"])
    check_follows(frequency, data.train["date"].max(), data.test["date"], data.files["test"])
    return frequency
