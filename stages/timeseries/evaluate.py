"""evaluate: RMSLE (primary), MAE and MAPE of every model on the held-out test window, next to
seasonal naive and, on builtin data, the irreducible error; per-family errors; plots; the
Kaggle submission; the registry's promotion rule."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from stages.core.context import StepContext
from stages.core.evaluation import SameData, publish_evaluation
from stages.core.fsio import read_json
from stages.core.metrics import regression_metrics, rmsle
from stages.timeseries.frequency import Frequency, named
from stages.timeseries.preprocess import GENERATOR_INFO, PANEL, SERIES, SPLIT
from stages.timeseries.scoring import candidate_scores, registered_scorer
from stages.timeseries.train import BASELINE, FORECASTS, SELECTION

FAMILY_ERRORS = "error_by_family.csv"
CONTEXT_PERIODS = 42  # history drawn before the test window


def window_scores(forecasts: pd.DataFrame, models: list[str]) -> dict[str, dict]:
    scores: dict[str, dict] = {}
    for window in ("valid", "test"):
        rows = forecasts[(forecasts["split"] == window) & forecasts["sales"].notna()]
        scores[window] = {m: regression_metrics(rows["sales"], rows[m]) for m in models}
    return scores


def family_errors(forecasts: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    rows = forecasts[(forecasts["split"] == "test") & forecasts["sales"].notna()]
    return pd.DataFrame(
        {
            m: rows.groupby("family").apply(
                lambda g, m=m: rmsle(g["sales"], g[m]), include_groups=False
            )
            for m in models
        }
    )


def comparison_figure(scores: dict, oracle: float | None) -> plt.Figure:
    frame = pd.DataFrame({w: {m: s["rmsle"] for m, s in scores[w].items()} for w in scores})
    fig, ax = plt.subplots(figsize=(7, 4))
    frame.plot.bar(ax=ax, rot=20)
    if oracle is not None:
        ax.axhline(oracle, color="black", ls="--", lw=1, label="irreducible (noise)")
    ax.set(title="RMSLE by model (lower is better)", ylabel="RMSLE")
    ax.legend(fontsize=8)
    return fig


def forecast_figure(
    panel: pd.DataFrame,
    forecasts: pd.DataFrame,
    models: list[str],
    count: int,
    frequency: Frequency,
) -> plt.Figure:
    test = forecasts[forecasts["split"] == "test"]
    volume = panel.groupby(SERIES)["sales"].mean().sort_values(ascending=False)
    picks = list(volume.index[: max(1, count - 1)]) + [volume.index[len(volume) // 2]]
    fig, axes = plt.subplots(len(picks), 1, figsize=(10, 2.6 * len(picks)), squeeze=False)
    start = frequency.add(test["date"].min(), -CONTEXT_PERIODS)
    for ax, key in zip(axes[:, 0], picks, strict=True):
        past = panel[
            (panel["store_nbr"] == key[0]) & (panel["family"] == key[1]) & (panel["date"] >= start)
        ]
        ahead = test[(test["store_nbr"] == key[0]) & (test["family"] == key[1])]
        ax.plot(past["date"], past["sales"], color="black", lw=1.2, label="actual")
        for m in models:
            ax.plot(ahead["date"], ahead[m], lw=1, label=m)
        ax.axvline(ahead["date"].min(), color="grey", ls=":")
        ax.set_title(f"store {key[0]} · {key[1]}", fontsize=9)
    axes[0, 0].legend(fontsize=7, ncol=len(models) + 1)
    fig.tight_layout()
    return fig


def family_figure(errors: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(errors) + 1.5))
    errors.sort_values(errors.columns[0]).plot.barh(ax=ax, width=0.8)
    ax.set(title="Test RMSLE by product family", xlabel="RMSLE")
    ax.legend(fontsize=7)
    return fig


def residual_figure(forecasts: pd.DataFrame, best: str, frequency: Frequency) -> plt.Figure:
    rows = forecasts[(forecasts["split"] == "test") & forecasts["sales"].notna()].copy()
    rows["residual"] = np.log1p(rows["sales"]) - np.log1p(rows[best])
    ahead = frequency.index(rows["date"])
    rows["ahead"] = ahead - ahead.min() + 1
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].hist(rows["residual"], bins=50, color="tab:blue")
    axes[0].set(title=f"{best}: log residuals", xlabel="log1p(actual) - log1p(forecast)")
    axes[1].scatter(np.log1p(rows[best]), rows["residual"], s=3, alpha=0.4)
    axes[1].axhline(0, color="black", lw=0.8)
    axes[1].set(title="residual vs forecast", xlabel="log1p(forecast)")
    by_period = rows.groupby("ahead")["residual"].apply(lambda r: float(np.sqrt(np.mean(r**2))))
    axes[2].bar(by_period.index, by_period.to_numpy())
    axes[2].set(title=f"RMSLE by forecast {frequency.unit}", xlabel=f"{frequency.unit}s ahead")
    fig.tight_layout()
    return fig


def run(ctx: StepContext) -> None:
    params, paths = ctx.task_params.evaluate, ctx.paths
    forecasts = pd.read_parquet(paths.models / FORECASTS)
    selection = read_json(paths.models / SELECTION)
    panel = pd.read_parquet(paths.processed / PANEL, columns=["date", *SERIES, "sales"])
    split = read_json(paths.processed / SPLIT)
    frequency = named(split["frequency"], split["offset"])
    info_path = paths.processed / GENERATOR_INFO
    oracle = read_json(info_path)["oracle_rmsle_last_16_days"] if info_path.is_file() else None

    best = selection["best"]
    models = list(selection["scores"])
    scores = window_scores(forecasts, models)
    test = scores["test"]
    metrics = {
        "headline": {
            "metric": "rmsle",
            "value": test[best]["rmsle"],
            "split": "test",
            "model": best,
        },
        "best_model": best,
        "frequency": frequency.name,
        "offset": frequency.offset,
        "horizon": split["horizon"],
        "best_vs_seasonal_naive": test[best]["rmsle"] / test[BASELINE]["rmsle"],
        "irreducible_rmsle": oracle,
        **scores,
    }
    errors = family_errors(forecasts, models)
    future = forecasts[forecasts["split"] == "future"]
    submission = pd.DataFrame({"id": future["id"].astype(int), "sales": future[best]})
    figures = {
        "model_comparison.png": comparison_figure(scores, oracle),
        "forecasts.png": forecast_figure(panel, forecasts, models, params.plot_series, frequency),
        "error_by_family.png": family_figure(errors),
        "residuals.png": residual_figure(forecasts, best, frequency),
    }
    same_data = SameData(candidate_scores(forecasts, best), registered_scorer(ctx))
    publish_evaluation(
        ctx, metrics, test[best], submission, figures, same_data, {FAMILY_ERRORS: errors}
    )
