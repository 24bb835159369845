"""Greedy ensemble selection: it never loses to its best member on the predictions it was
chosen on, and it gives a member that only adds noise no weight."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

from stages.churn.ensemble import greedy_weights


def members(rows: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two informative members with independent errors, one slightly worse, and pure noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    signal = y * 1.0
    good = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.8, rows))))
    other = 1 / (1 + np.exp(-(signal + rng.normal(0, 0.9, rows))))
    noise = rng.random(rows)
    return np.column_stack([good, other, noise]), y


def test_the_bag_beats_its_best_member_and_ignores_noise():
    probabilities, y = members()
    weights = greedy_weights(probabilities, y, rounds=25)
    assert np.isclose(weights.sum(), 1) and (weights >= 0).all()
    assert weights[2] == 0, weights  # the noise member
    assert weights[0] > 0 and weights[1] > 0, weights  # independent errors: both help
    best = max(roc_auc_score(y, probabilities[:, j]) for j in range(3))
    assert roc_auc_score(y, probabilities @ weights) > best + 0.01


def test_a_single_dominant_member_is_kept_alone():
    probabilities, y = members()
    probabilities[:, 0] = y * 0.9 + 0.05  # perfect ranking: nothing can improve on it
    weights = greedy_weights(probabilities, y, rounds=10)
    assert roc_auc_score(y, probabilities @ weights) == 1.0
    assert weights[0] == 1.0
