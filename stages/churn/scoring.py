"""Any model version scored on the current held-out clients: what the promotion rule and
`compare` pair (ROC-AUC over resampled clients; per-contract-type deltas)."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from stages.churn.preprocess import HOLDOUT
from stages.churn.schema import FEATURES, TARGET
from stages.core.comparison import ItemScores
from stages.core.context import StepContext

SEGMENT = "HasContractPhone"  # churn differs most by contract type: the per-group view


def item_scores(holdout: pd.DataFrame, probability: np.ndarray) -> ItemScores:
    y = holdout[TARGET].to_numpy()
    probability = np.asarray(probability, dtype=float)

    def roc_auc(indices: np.ndarray) -> float:
        return float(roc_auc_score(y[indices], probability[indices]))

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
