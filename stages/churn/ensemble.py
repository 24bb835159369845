"""The ensemble members and the stacked model that the registry holds."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from scipy.special import logit
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
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
        "logreg": _encoded(
            encoder,
            GridSearchCV(
                LogisticRegression(max_iter=5000, class_weight=params.logreg.class_weight),
                {"C": params.logreg.C},
                scoring="roc_auc",
                cv=StratifiedKFold(params.cv.folds, shuffle=True, random_state=seed),
            ),
        )
    }
    for forest in params.random_forests:
        members[forest.name] = _encoded(
            encoder,
            RandomForestClassifier(
                **forest.model_dump(exclude={"name"}), n_jobs=n_jobs, random_state=seed
            ),
        )
    for booster in params.catboost:
        members[booster.name] = partial(
            CatBoostClassifier,
            **booster.model_dump(exclude={"name"}),
            cat_features=CATEGORICAL,
            thread_count=n_jobs,
            verbose=False,
            allow_writing_files=False,
        )
    return members


def _encoded(encoder, model: BaseEstimator) -> MemberFactory:
    """A fresh pipeline per call: the fitted preprocess encoder (frozen), then a clone of model."""
    return lambda: Pipeline([("encode", FrozenEstimator(encoder)), ("model", clone(model))])


def stack_features(probabilities: np.ndarray) -> np.ndarray:
    """The meta-learner reads member log-odds: probabilities squashed near 0/1 spread out."""
    return logit(np.clip(probabilities, EPS, 1 - EPS))


def greedy_weights(probabilities: np.ndarray, y: np.ndarray, rounds: int) -> np.ndarray:
    """Ensemble selection (Caruana et al., 2004): add, with replacement, the member whose
    addition gives the bag's mean probability the best ROC-AUC; keep the best bag seen. The
    first pick is the best single member, so the result never scores below it on the
    predictions it was chosen on. (Neither scikit-learn nor CatBoost has it; auto-sklearn's
    is bound to its own AutoML runs.) Returns one weight per column, summing to 1."""
    members = probabilities.shape[1]
    counts, bag = np.zeros(members), np.zeros(len(y))
    best_score, best_counts = -np.inf, counts
    for size in range(1, rounds + 1):
        scores = [roc_auc_score(y, (bag + probabilities[:, j]) / size) for j in range(members)]
        pick = int(np.argmax(scores))
        counts, bag = counts.copy(), bag + probabilities[:, pick]
        counts[pick] += 1
        if scores[pick] > best_score:
            best_score, best_counts = scores[pick], counts
    return best_counts / best_counts.sum()


class StackedEnsemble(ClassifierMixin, BaseEstimator):
    """Members fitted on the whole train split, combined as chosen on their out-of-fold
    predictions: `weights` (greedy selection: a weighted mean of the probabilities), or a
    meta-learner on their log-odds (`meta`), or, with neither, the plain mean."""

    def __init__(
        self,
        members: dict[str, BaseEstimator],
        meta: LogisticRegression | None,
        weights: dict[str, float] | None = None,
    ):
        self.members = members
        self.meta = meta
        self.weights = weights
        self.classes_ = np.array([0, 1])

    def member_probabilities(self, frame: pd.DataFrame) -> pd.DataFrame:
        features = frame[FEATURES]
        return pd.DataFrame(
            {name: m.predict_proba(features)[:, 1] for name, m in self.members.items()},
            index=frame.index,
        )

    def combine(self, member_probabilities: np.ndarray) -> np.ndarray:
        weights = getattr(self, "weights", None)  # versions registered before greedy had none
        if weights is not None:
            return member_probabilities @ np.array([weights[n] for n in self.members])
        if self.meta is None:
            return member_probabilities.mean(axis=1)
        return self.meta.predict_proba(stack_features(member_probabilities))[:, 1]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        positive = self.combine(self.member_probabilities(frame).to_numpy())
        return np.column_stack([1 - positive, positive])

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(frame)[:, 1] >= 0.5).astype(int)
