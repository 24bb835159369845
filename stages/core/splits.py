"""Seeded train / val / test assignment for datasets that ship without a split."""

from __future__ import annotations

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def random_splits(names: list[str], val: float, test: float, seed: int) -> pd.Series:
    """`split` per name: the same seed and names always give the same split; val and test get
    at least one item each."""
    order = np.random.default_rng(seed).permutation(len(names))
    n_val, n_test = max(1, round(len(names) * val)), max(1, round(len(names) * test))
    labels = np.array(["train"] * len(names), dtype=object)
    labels[order[:n_val]] = "val"
    labels[order[n_val : n_val + n_test]] = "test"
    return pd.Series(labels, index=names, name="split")
