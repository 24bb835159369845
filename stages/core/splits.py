"""Seeded train / val / test assignment for datasets that ship without a split.

An item's split depends only on its own name (a seeded hash), not on which other items exist:
when new data arrives, every item already there keeps its split, so a version trained before
never finds its training items in the new test split, and versions stay comparable.
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


def random_splits(names: list[str], val: float, test: float, seed: int) -> pd.Series:
    """`split` per name: test below `test` on the name's hash, val up to `test + val`, train
    above; val and test get at least one item each (the lowest hashes) when there are three."""
    u = unit_hash(names, seed)
    labels = np.where(u < test, "test", np.where(u < test + val, "val", "train")).astype(object)
    order = np.argsort(u, kind="stable")
    for split, position in (("test", 0), ("val", 1)):
        if len(names) >= 3 and not (labels == split).any():
            labels[order[position]] = split
    return pd.Series(labels, index=names, name="split")


def row_keys(frame: pd.DataFrame) -> list[str]:
    """A stable key per table row for tables without an id column: its values."""
    return [str(row) for row in pd.util.hash_pandas_object(frame, index=False).to_numpy()]
