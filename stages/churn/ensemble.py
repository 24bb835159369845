"""The ensemble members and the stacked model that the registry holds."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from stages.churn.params import TrainParams
from stages.churn.schema import CATEGORICAL, FEATURES

EPS = 1e-6


MemberFactory = Callable[[], BaseEstimator]


def build_members(params: TrainParams, encoder, seed: int, n_jobs: int) -> dict[str, MemberFactory]:
    """A factory of a fresh unfitted estimator per member (CatBoost cannot be sklearn-cloned).

    Linear and forest models read the one-hot/scaled features of the encoder fitted in
    preprocess; CatBoost reads the categories natively."""
    members: dict[str, MemberFactory] = {
        "logreg": partial(
            Pipeline,
            [
                ("encode", FrozenEstimator(encoder)),
                (
                    "model",
                    GridSearchCV(
                        LogisticRegression(max_iter=5000, class_weight=params.logreg.class_weight),
                        {"C": params.logreg.C},
                        scoring="roc_auc",
                        cv=StratifiedKFold(params.cv.folds, shuffle=True, random_state=seed),
                    ),
                ),
            ],
        )
    }
    for forest in params.random_forests:
        members[forest.name] = partial(
            Pipeline,
            [
                ("encode", FrozenEstimator(encoder)),
                (
                    "model",
                    RandomForestClassifier(
                        n_estimators=forest.n_estimators,
                        max_depth=forest.max_depth,
                        min_samples_leaf=forest.min_samples_leaf,
                        max_features=forest.max_features,
                        n_jobs=n_jobs,
                        random_state=seed,
                    ),
                ),
            ],
        )
    for booster in params.catboost:
        members[booster.name] = partial(
            CatBoostClassifier,
            depth=booster.depth,
            iterations=booster.iterations,
            learning_rate=booster.learning_rate,
            l2_leaf_reg=booster.l2_leaf_reg,
            random_seed=booster.random_seed,
            cat_features=CATEGORICAL,
            thread_count=n_jobs,
            verbose=False,
            allow_writing_files=False,
        )
    return members


def stack_features(probabilities: np.ndarray) -> np.ndarray:
    """The meta-learner reads member log-odds: probabilities squashed near 0/1 spread out."""
    return logit(np.clip(probabilities, EPS, 1 - EPS))


class StackedEnsemble(ClassifierMixin, BaseEstimator):
    """Members fitted on the whole train split, combined by a meta-learner fitted on their
    out-of-fold predictions (`meta=None` averages the probabilities instead)."""

    def __init__(self, members: dict[str, BaseEstimator], meta: LogisticRegression | None):
        self.members = members
        self.meta = meta
        self.classes_ = np.array([0, 1])

    def member_probabilities(self, frame: pd.DataFrame) -> pd.DataFrame:
        features = frame[FEATURES]
        return pd.DataFrame(
            {name: m.predict_proba(features)[:, 1] for name, m in self.members.items()},
            index=frame.index,
        )

    def combine(self, member_probabilities: np.ndarray) -> np.ndarray:
        if self.meta is None:
            return member_probabilities.mean(axis=1)
        return self.meta.predict_proba(stack_features(member_probabilities))[:, 1]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        positive = self.combine(self.member_probabilities(frame).to_numpy())
        return np.column_stack([1 - positive, positive])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(frame)[:, 1] >= 0.5).astype(int)
