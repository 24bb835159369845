"""The ROC-AUC the promotion bootstrap resamples thousands of times is scikit-learn's, faster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from stages.churn.schema import TARGET
from stages.churn.scoring import item_scores


def test_resampled_roc_auc_equals_scikit_learns_with_ties_and_repeats():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    probability = np.round(0.4 * y + rng.random(500), 1)  # rounded: many tied scores
    scores = item_scores(pd.DataFrame({TARGET: y, "HasContractPhone": 1}), probability)
    for _ in range(20):
        drawn = rng.integers(0, 500, 500)  # a bootstrap resample: items repeat
        assert scores.metric(drawn) == pytest.approx(roc_auc_score(y[drawn], probability[drawn]))
    assert scores.value() == pytest.approx(roc_auc_score(y, probability))
    with pytest.raises(ValueError, match="both classes"):
        scores.metric(np.flatnonzero(y == 1))
