"""train: repeated stratified CV of every member (out-of-fold predictions), a stacked ensemble
on those predictions, members refitted on the whole train split; MLflow run + registry."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold

from stages.churn.ensemble import (
    MemberFactory,
    StackedEnsemble,
    build_members,
    greedy_weights,
    stack_features,
)
from stages.churn.params import TrainParams
from stages.churn.preprocess import ENCODER, TRAIN
from stages.churn.schema import FEATURES, TARGET
from stages.core import tracking
from stages.core.context import StepContext
from stages.core.fsio import dump_json, staged_outputs

log = logging.getLogger(__name__)

MODEL_FILE, OOF_FILE, CV_FILE = "ensemble.joblib", "oof.parquet", "cv.json"
ENSEMBLE = "ensemble"


@dataclass
class CrossValidation:
    folds: list[tuple[np.ndarray, np.ndarray]]
    repeats: int
    oof: dict[str, np.ndarray]  # name -> (repeats, rows) out-of-fold probabilities
    fold_auc: dict[str, list[float]]

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "roc_auc_mean": float(np.mean(scores)),
                "roc_auc_std": float(np.std(scores)),
                "folds": len(scores),
            }
            for name, scores in self.fold_auc.items()
        }

    def mean_oof(self) -> pd.DataFrame:
        return pd.DataFrame({name: p.mean(axis=0) for name, p in self.oof.items()})


def cross_validate_members(
    members: dict[str, MemberFactory],
    x: pd.DataFrame,
    y: np.ndarray,
    folds: int,
    repeats: int,
    seed: int,
) -> CrossValidation:
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
    splits = list(splitter.split(x, y))
    oof = {name: np.zeros((repeats, len(y))) for name in members}
    fold_auc: dict[str, list[float]] = {name: [] for name in members}
    for name, member in members.items():
        started = time.perf_counter()
        for i, (fit_rows, val_rows) in enumerate(splits):
            fitted = member().fit(x.iloc[fit_rows], y[fit_rows])
            predicted = fitted.predict_proba(x.iloc[val_rows])[:, 1]
            oof[name][i // folds, val_rows] = predicted
            fold_auc[name].append(roc_auc_score(y[val_rows], predicted))
        log.info(
            "cv %-14s roc_auc %.4f ± %.4f  (%.1f s)",
            name,
            np.mean(fold_auc[name]),
            np.std(fold_auc[name]),
            time.perf_counter() - started,
        )
    return CrossValidation(splits, repeats, oof, fold_auc)


def make_meta(seed: int) -> LogisticRegression:
    return LogisticRegression(C=1.0, max_iter=1000, random_state=seed)


def cross_validate_ensemble(
    cv: CrossValidation, y: np.ndarray, method: str, rounds: int, seed: int
) -> None:
    """Score the combiner on the same folds, fitted only on the other folds' OOF predictions."""
    names = list(cv.oof)
    folds = len(cv.folds) // cv.repeats
    oof = np.zeros((cv.repeats, len(y)))
    scores = []
    for i, (fit_rows, val_rows) in enumerate(cv.folds):
        stacked = np.column_stack([cv.oof[n][i // folds] for n in names])
        if method == "mean":
            predicted = stacked[val_rows].mean(axis=1)
        elif method == "greedy":
            predicted = stacked[val_rows] @ greedy_weights(stacked[fit_rows], y[fit_rows], rounds)
        else:
            meta = make_meta(seed).fit(stack_features(stacked[fit_rows]), y[fit_rows])
            predicted = meta.predict_proba(stack_features(stacked[val_rows]))[:, 1]
        oof[i // folds, val_rows] = predicted
        scores.append(roc_auc_score(y[val_rows], predicted))
    cv.oof[ENSEMBLE] = oof
    cv.fold_auc[ENSEMBLE] = scores


def fit_ensemble(
    members: dict[str, MemberFactory],
    cv: CrossValidation,
    x: pd.DataFrame,
    y: np.ndarray,
    method: str,
    rounds: int,
    seed: int,
) -> StackedEnsemble:
    fitted = {name: make().fit(x, y) for name, make in members.items()}
    member_oof = cv.mean_oof()[list(members)].to_numpy()
    if method == "greedy":
        weights = greedy_weights(member_oof, y, rounds)
        log.info("greedy ensemble weights: %s", dict(zip(members, weights.round(3), strict=True)))
        return StackedEnsemble(fitted, None, dict(zip(members, weights.tolist(), strict=True)))
    meta = make_meta(seed).fit(stack_features(member_oof), y) if method == "stacking" else None
    return StackedEnsemble(fitted, meta)


def train(params: TrainParams, train_frame: pd.DataFrame, encoder, seed: int, n_jobs: int):
    x, y = train_frame[FEATURES], train_frame[TARGET].to_numpy()
    members = build_members(params, encoder, seed, n_jobs)
    cv = cross_validate_members(members, x, y, params.cv.folds, params.cv.repeats, seed)
    rounds = params.greedy_rounds
    cross_validate_ensemble(cv, y, params.ensemble, rounds, seed)
    return fit_ensemble(members, cv, x, y, params.ensemble, rounds, seed), cv, members


def log_to_mlflow(
    ctx: StepContext, model: StackedEnsemble, cv: CrossValidation, members, sample: pd.DataFrame
) -> dict[str, str]:
    import mlflow
    from mlflow.models import infer_signature

    train_params = ctx.task_params.train
    with tracking.task_run(ctx.task, ctx.stage, ctx.root, [ctx.paths.processed]) as run:
        tracking.log_params({"train": train_params.model_dump(), "common": ctx.common.model_dump()})
        summary = cv.summary()
        for name in members:
            with tracking.member_run(name, members[name]().get_params(deep=False)):
                for step, score in enumerate(cv.fold_auc[name]):
                    mlflow.log_metric("cv_fold_roc_auc", score, step=step)
                tracking.log_metrics({f"cv_{k}": v for k, v in summary[name].items()})
        for step, score in enumerate(cv.fold_auc[ENSEMBLE]):
            mlflow.log_metric("cv_fold_roc_auc", score, step=step)
        tracking.log_metrics({f"cv_{k}": v for k, v in summary[ENSEMBLE].items()})
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba",
            code_paths=[str(Path(__file__).resolve().parents[1])],
            signature=infer_signature(sample, model.predict_proba(sample)),
            pip_requirements=tracking.pinned("scikit-learn", "catboost", "pandas", "numpy"),
        )
        return tracking.register_run_model(ctx.task, ctx.root, run, info.model_uri)


def run(ctx: StepContext) -> None:
    processed = ctx.paths.processed
    train_frame = pd.read_parquet(processed / TRAIN)
    encoder = joblib.load(processed / ENCODER)
    params = ctx.task_params.train
    model, cv, members = train(params, train_frame, encoder, ctx.common.seed, ctx.common.n_jobs)
    oof = cv.mean_oof()
    oof[TARGET] = train_frame[TARGET].to_numpy()
    out = ctx.paths.models
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        joblib.dump(model, tmp / MODEL_FILE)
        oof.to_parquet(tmp / OOF_FILE, index=False)
        (tmp / CV_FILE).write_text(dump_json(cv.summary()), encoding="utf-8")
        run_info = log_to_mlflow(ctx, model, cv, members, train_frame[FEATURES].head(5))
        (tmp / ctx.paths.run_info.name).write_text(dump_json(run_info), encoding="utf-8")
