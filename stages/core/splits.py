"""Seeded train / val / test assignment for datasets that ship without a split.

Items are ranked by a seeded hash of their own name, not by a draw over the whole list: when new
data arrives, the items already there keep their split (only a few at a split's boundary move
to the neighbouring one), so a version trained before does not find its training items in the
new test split, and versions stay comparable. The counts are exact, also for tiny datasets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def unit_hash(keys: Iterable[str], seed: int) -> np.ndarray:
    """A number in [0, 1) per key, uniform and fixed for (key, seed)."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(), "big")
            / 2**64
            for k in keys
        ]
    )


def hash_order(keys: list[str], seed: int) -> np.ndarray:
    """Positions of `keys` sorted by their seeded hash."""
    return np.argsort(unit_hash(keys, seed), kind="stable")


def random_splits(names: list[str], val: float, test: float, seed: int) -> pd.Series:
    """`split` per name: the lowest-hash share `test` is test, the next `val` is val; val and
    test get at least one item each."""
    order = hash_order(names, seed)
    n_val, n_test = max(1, round(len(names) * val)), max(1, round(len(names) * test))
    labels = np.array(["train"] * len(names), dtype=object)
    labels[order[:n_test]] = "test"
    labels[order[n_test : n_test + n_val]] = "val"
    return pd.Series(labels, index=names, name="split")


def row_keys(frame: pd.DataFrame) -> list[str]:
    """A stable key per table row for tables without an id column: its values."""
    return [str(row) for row in pd.util.hash_pandas_object(frame, index=False).to_numpy()]
