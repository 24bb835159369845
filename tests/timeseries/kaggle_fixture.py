"""A tiny folder in the real Kaggle store-sales layout, written by hand (not by the generator):
nested in the competition's folder name, stores sorted as text like the real train.csv,
family names with a comma and a slash, oil with weekend gaps, a transferred holiday."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

FAMILIES = ["AUTOMOTIVE", "BREAD/BAKERY", "LIQUOR,WINE,BEER"]
STORES = [1, 10]  # text order in the real file: 1, 10, 2, ...
TRAIN_DAYS = pd.date_range("2017-02-01", "2017-08-15")
TEST_DAYS = pd.date_range("2017-08-16", "2017-08-31")


def write_kaggle_folder(root: Path) -> Path:
    folder = root / "store-sales-time-series-forecasting"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for day in TRAIN_DAYS:
        for store in sorted(STORES, key=str):
            for i, family in enumerate(FAMILIES):
                promo = int(rng.random() < 0.2) * int(rng.integers(1, 9))
                weekly = 1.3 if day.dayofweek >= 5 else 1.0
                level = [3, 400, 150][i] * (1 + store / 20) * weekly * (1.4 if promo else 1)
                sales = float(np.round(level * np.exp(rng.normal(0, 0.1)), 3))
                rows.append((day.date().isoformat(), store, family, sales, promo))
    train = pd.DataFrame(rows, columns=["date", "store_nbr", "family", "sales", "onpromotion"])
    train.insert(0, "id", range(len(train)))
    train.to_csv(folder / "train.csv", index=False)

    test = pd.DataFrame(
        [
            (d.date().isoformat(), s, f, 0)
            for d in TEST_DAYS
            for s in sorted(STORES, key=str)
            for f in FAMILIES
        ],
        columns=["date", "store_nbr", "family", "onpromotion"],
    )
    test.insert(0, "id", range(len(train), len(train) + len(test)))
    test.to_csv(folder / "test.csv", index=False)

    pd.DataFrame(
        {
            "store_nbr": STORES,
            "city": ["Quito", "Guayaquil"],
            "state": ["Pichincha", "Guayas"],
            "type": ["D", "A"],
            "cluster": [13, 5],
        }
    ).to_csv(folder / "stores.csv", index=False)
    weekdays = pd.bdate_range(TRAIN_DAYS[0], TEST_DAYS[-1])
    oil = pd.DataFrame(
        {
            "date": weekdays.strftime("%Y-%m-%d"),
            "dcoilwtico": np.round(48 + rng.normal(0, 1, len(weekdays)).cumsum(), 2),
        }
    )
    oil.loc[[0, 30], "dcoilwtico"] = np.nan
    oil.to_csv(folder / "oil.csv", index=False)
    pd.DataFrame(
        [
            ("2017-04-14", "Holiday", "National", "Ecuador", "Viernes Santo", "False"),
            ("2017-05-24", "Holiday", "National", "Ecuador", "Batalla de Pichincha", "True"),
            (
                "2017-05-26",
                "Transfer",
                "National",
                "Ecuador",
                "Traslado Batalla de Pichincha",
                "False",
            ),
            ("2017-07-25", "Holiday", "Local", "Guayaquil", "Fundacion de Guayaquil", "False"),
            (
                "2017-08-10",
                "Holiday",
                "National",
                "Ecuador",
                "Primer Grito de Independencia",
                "False",
            ),
        ],
        columns=["date", "type", "locale", "locale_name", "description", "transferred"],
    ).to_csv(folder / "holidays_events.csv", index=False)
    transactions = train.groupby(["date", "store_nbr"], as_index=False)["sales"].sum()
    transactions["transactions"] = (transactions["sales"] / 3).astype(int)
    transactions.drop(columns="sales").to_csv(folder / "transactions.csv", index=False)
    return root
