"""Binary-classification metrics and plots shared by tabular tasks (scikit-learn underneath)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)


def f1_optimal_threshold(y: np.ndarray, probability: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(y, probability)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def expected_calibration_error(y: np.ndarray, probability: np.ndarray, bins: int) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            error += mask.mean() * abs(y[mask].mean() - probability[mask].mean())
    return float(error)


def binary_metrics(
    y: np.ndarray, probability: np.ndarray, threshold: float, bins: int
) -> dict[str, float]:
    predicted = (probability >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, probability)),
        "pr_auc": float(average_precision_score(y, probability)),
        "log_loss": float(log_loss(y, probability)),
        "brier": float(brier_score_loss(y, probability)),
        "ece": expected_calibration_error(y, probability, bins),
        "f1": float(f1_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted)),
        "threshold": float(threshold),
    }


def _curves_figure(title: str, xlabel: str, ylabel: str) -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    return fig, ax


def _style(name: str, highlight: str) -> dict:
    return (
        {"lw": 2.6, "color": "black", "zorder": 3} if name == highlight else {"lw": 1, "alpha": 0.7}
    )


def roc_figure(y: np.ndarray, scores: Mapping[str, np.ndarray], highlight: str) -> plt.Figure:
    fig, ax = _curves_figure(
        "ROC curves (held-out test)", "false positive rate", "true positive rate"
    )
    for name, probability in scores.items():
        fpr, tpr, _ = roc_curve(y, probability)
        ax.plot(
            fpr,
            tpr,
            label=f"{name} ({roc_auc_score(y, probability):.3f})",
            **_style(name, highlight),
        )
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def pr_figure(y: np.ndarray, scores: Mapping[str, np.ndarray], highlight: str) -> plt.Figure:
    fig, ax = _curves_figure("Precision-recall curves (held-out test)", "recall", "precision")
    for name, probability in scores.items():
        precision, recall, _ = precision_recall_curve(y, probability)
        label = f"{name} ({average_precision_score(y, probability):.3f})"
        ax.plot(recall, precision, label=label, **_style(name, highlight))
    ax.axhline(y.mean(), ls="--", color="grey", lw=0.8)
    ax.legend(loc="upper right", fontsize=8)
    return fig


def calibration_figure(
    y: np.ndarray, scores: Mapping[str, np.ndarray], highlight: str, bins: int
) -> plt.Figure:
    fig, ax = _curves_figure(
        "Calibration (held-out test)", "mean predicted probability", "observed positive rate"
    )
    for name, probability in scores.items():
        observed, predicted = calibration_curve(y, probability, n_bins=bins, strategy="quantile")
        ax.plot(predicted, observed, marker="o", ms=3, label=name, **_style(name, highlight))
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
    ax.legend(loc="upper left", fontsize=8)
    return fig


def rmsle(actual, predicted) -> float:
    """Root mean squared log error, the Kaggle store-sales metric (on log1p)."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    return float(np.sqrt(np.mean((np.log1p(predicted.clip(0)) - np.log1p(actual.clip(0))) ** 2)))


def regression_metrics(actual, predicted) -> dict[str, float]:
    """RMSLE (primary), MAE, and MAPE over the rows whose actual value is not zero."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    nonzero = actual != 0
    return {
        "rmsle": rmsle(actual, predicted),
        "mae": float(np.mean(np.abs(actual - predicted))),
        "mape": float(np.mean(np.abs((actual - predicted)[nonzero] / actual[nonzero])))
        if nonzero.any()
        else float("nan"),
    }
