"""Any model version scored on the current held-out clients: what the promotion rule and
`compare` pair (ROC-AUC over resampled clients; per-contract-type deltas)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from stages.churn.preprocess import HOLDOUT
from stages.churn.schema import FEATURES, TARGET
from stages.core.comparison import ItemScores
from stages.core.context import StepContext

SEGMENT = "HasContractPhone"  # churn differs most by contract type: the per-group view


def rank_roc_auc(positive: np.ndarray, probability: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney U of the positives' ranks (ties averaged): equal to
    sklearn's `roc_auc_score`, which validates its input on every call and made the bootstrap's
    thousands of calls 13x slower (2.3 vs 0.17 ms on 1,761 clients)."""
    ranks = rankdata(probability)
    positives = int(positive.sum())
    negatives = len(positive) - positives
    if not positives or not negatives:
        raise ValueError("ROC-AUC needs both classes among the scored clients")
    u_statistic = ranks[positive].sum() - positives * (positives + 1) / 2
    return float(u_statistic / (positives * negatives))


def item_scores(holdout: pd.DataFrame, probability: np.ndarray) -> ItemScores:
    y = holdout[TARGET].to_numpy()
    positive = y == 1
    probability = np.asarray(probability, dtype=float)

    def roc_auc(indices: np.ndarray) -> float:
        return rank_roc_auc(positive[indices], probability[indices])

    return ItemScores(
        metric=roc_auc,
        items=len(y),
        groups=holdout[SEGMENT].astype(str).tolist(),
        outcomes=probability.round(4).tolist(),
        truths=y.tolist(),
        item_ids=holdout.index.tolist(),
    )


def registered_scorer(ctx: StepContext) -> Callable[[str], ItemScores]:
    import mlflow

    split = functools.cache(lambda: pd.read_parquet(ctx.paths.processed / HOLDOUT))

    def score(model_uri: str) -> ItemScores:
        holdout = split()
        model = mlflow.sklearn.load_model(model_uri)
        return item_scores(holdout, model.predict_proba(holdout[FEATURES])[:, 1])

    return score
