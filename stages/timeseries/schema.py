"""The six Kaggle store-sales files, found at any depth and read with dates parsed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from stages.core.errors import UserError
from stages.core.sources import find_file
from stages.core.tables import read_csv, require_columns

KEY = ["date", "store_nbr", "family"]
COLUMNS = {
    "train": ("train.csv", ["id", "date", "store_nbr", "family", "sales", "onpromotion"]),
    "test": ("test.csv", ["id", "date", "store_nbr", "family", "onpromotion"]),
    "stores": ("stores.csv", ["store_nbr", "city", "state", "type", "cluster"]),
    "oil": ("oil.csv", ["date", "dcoilwtico"]),
    "holidays": (
        "holidays_events.csv",
        ["date", "type", "locale", "locale_name", "description", "transferred"],
    ),
    "transactions": ("transactions.csv", ["date", "store_nbr", "transactions"]),
}
TEXT = {
    "family": str,
    "city": str,
    "state": str,
    "type": str,
    "locale": str,
    "locale_name": str,
    "description": str,
}


@dataclass(frozen=True)
class StoreSales:
    train: pd.DataFrame
    test: pd.DataFrame
    stores: pd.DataFrame
    oil: pd.DataFrame
    holidays: pd.DataFrame
    transactions: pd.DataFrame
    files: dict[str, Path]


def read_raw(raw_dir: Path) -> StoreSales:
    files, tables = {}, {}
    for table, (name, columns) in COLUMNS.items():
        path = find_file(raw_dir, name)
        if path is None:
            expected = ", ".join(n for n, _ in COLUMNS.values())
            raise UserError(f"{raw_dir}: missing {name} (expected the Kaggle files {expected})")
        files[table] = path
        tables[table] = _read(path, columns)
    return StoreSales(**tables, files=files)


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    frame = read_csv(path, dtype={c: t for c, t in TEXT.items() if c in columns})
    require_columns(frame, columns, path, "Kaggle")
    frame = frame[columns].copy()
    if "date" in frame:
        frame["date"] = _parse_dates(frame["date"], path)
    return frame


def _parse_dates(values: pd.Series, path: Path) -> pd.Series:
    """Dates are YYYY-MM-DD in every file; the first one that is not is named with its line."""
    parsed = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    bad = parsed.isna()
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise UserError(
            f"{path}: column 'date' line {row + 2}: {values.iloc[row]!r} is not a date "
            "(expected YYYY-MM-DD)"
        )
    return parsed
