"""evaluate: every member and the ensemble on the held-out test, the Kaggle submission, plots,
and the registry's promotion rule applied to the new model version."""

from __future__ import annotations

import joblib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from stages.churn.params import EvaluateParams
from stages.churn.preprocess import HOLDOUT, PREDICT
from stages.churn.schema import FEATURES, ID, TARGET
from stages.churn.scoring import item_scores, registered_scorer
from stages.churn.train import CV_FILE, ENSEMBLE, MODEL_FILE, OOF_FILE
from stages.core.comparison import paired_difference
from stages.core.context import StepContext
from stages.core.evaluation import SameData, publish_evaluation
from stages.core.fsio import read_json
from stages.core.metrics import (
    binary_metrics,
    calibration_figure,
    f1_optimal_threshold,
    pr_figure,
    roc_figure,
)


def holdout_scores(model, holdout: pd.DataFrame) -> dict[str, np.ndarray]:
    members = model.member_probabilities(holdout)
    scores = {name: members[name].to_numpy() for name in members}
    scores[ENSEMBLE] = model.combine(members.to_numpy())
    return scores


def score_table(
    y: np.ndarray, scores: dict[str, np.ndarray], oof: pd.DataFrame, params: EvaluateParams
) -> dict[str, dict[str, float]]:
    """Metrics per model; each model's F1 threshold comes from its own out-of-fold predictions,
    never from the test labels."""
    table = {}
    for name, probability in scores.items():
        threshold = (
            f1_optimal_threshold(oof[TARGET].to_numpy(), oof[name].to_numpy())
            if params.threshold == "f1"
            else float(params.threshold)
        )
        table[name] = binary_metrics(y, probability, threshold, params.calibration_bins)
    return table


def importance_figure(model) -> plt.Figure:
    """Model-based importances of the tree members (CatBoost on raw features, forests on the
    encoded ones, summed back to the raw feature)."""
    panels = {}
    for name, member in model.members.items():
        if hasattr(member, "get_feature_importance"):
            panels[name] = pd.Series(member.get_feature_importance(), index=FEATURES)
        elif hasattr(member, "named_steps") and hasattr(member[-1], "feature_importances_"):
            encoded = member[0].get_feature_names_out()
            raw = [next(f for f in FEATURES if e == f or e.startswith(f + "_")) for e in encoded]
            panels[name] = (
                pd.Series(member[-1].feature_importances_, index=raw).groupby(level=0).sum() * 100
            )
    frame = pd.DataFrame(panels).fillna(0)
    frame = frame.loc[frame.mean(axis=1).sort_values().index]
    fig, ax = plt.subplots(figsize=(7, 6))
    frame.plot.barh(ax=ax, width=0.8)
    ax.set(title="Feature importance of tree members (%)", xlabel="importance")
    ax.legend(fontsize=7)
    return fig


def cv_figure(cv: dict[str, dict[str, float]]) -> plt.Figure:
    names = list(cv)
    fig, ax = plt.subplots(figsize=(7, 4))
    means = [cv[n]["roc_auc_mean"] for n in names]
    stds = [cv[n]["roc_auc_std"] for n in names]
    colors = ["black" if n == ENSEMBLE else "tab:blue" for n in names]
    ax.bar(names, means, yerr=stds, color=colors, capsize=4)
    ax.set(
        title="Repeated stratified CV ROC-AUC (mean ± std)",
        ylim=(min(means) - 2 * max(stds) - 0.02, max(means) + 2 * max(stds) + 0.01),
    )
    ax.tick_params(axis="x", rotation=30)
    return fig


def run(ctx: StepContext) -> None:
    params: EvaluateParams = ctx.task_params.evaluate
    models, processed = ctx.paths.models, ctx.paths.processed
    model = joblib.load(models / MODEL_FILE)
    holdout = pd.read_parquet(processed / HOLDOUT)
    predict = pd.read_parquet(processed / PREDICT)
    oof = pd.read_parquet(models / OOF_FILE)
    cv = read_json(models / CV_FILE)

    y = holdout[TARGET].to_numpy()
    scores = holdout_scores(model, holdout)
    table = score_table(y, scores, oof, params)
    best_member = max((n for n in table if n != ENSEMBLE), key=lambda n: table[n]["roc_auc"])
    versus = paired_difference(
        item_scores(holdout, scores[ENSEMBLE]),
        item_scores(holdout, scores[best_member]),
        "roc_auc",
        "maximize",
        params.promotion.resamples,
        params.promotion.confidence,
        ctx.common.seed,
    )
    metrics = {
        "headline": {
            "metric": params.promotion.metric,
            "value": table[ENSEMBLE][params.promotion.metric],
            "split": "holdout",
        },
        "holdout": table,
        "cv": cv,
        "ensemble_minus_best_member": versus.difference,
        "ensemble_vs_best_member": {
            "best_member": best_member,
            "ci_low": versus.ci_low,
            "ci_high": versus.ci_high,
            "confidence": versus.confidence,
        },
        "rows": {"holdout": len(holdout), "positive_rate": float(y.mean())},
    }

    submission = pd.DataFrame(
        {ID: predict[ID], TARGET: model.predict_proba(predict[FEATURES])[:, 1]}
    )
    figures = {
        "roc.png": roc_figure(y, scores, ENSEMBLE),
        "pr.png": pr_figure(y, scores, ENSEMBLE),
        "calibration.png": calibration_figure(y, scores, ENSEMBLE, params.calibration_bins),
        "feature_importance.png": importance_figure(model),
        "cv.png": cv_figure(cv),
    }
    same_data = SameData(item_scores(holdout, scores[ENSEMBLE]), registered_scorer(ctx))
    publish_evaluation(ctx, metrics, table[ENSEMBLE], submission, figures, same_data)
