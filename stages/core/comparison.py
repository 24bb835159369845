"""Two model versions scored on the same test items: the paired difference of a metric with a
bootstrap confidence interval (test items resampled, the same draw for both models).

MLflow's `mlflow.validate_evaluation_results` / `MetricThreshold` compare two metric *values*;
they have no paired resampling and need `mlflow.models.evaluate`'s built-in evaluators, which know
neither mAP, BLEU, IoU nor RMSLE on a panel. So the rule is written here, and the resampling is
scipy's `bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Metric = Callable[[np.ndarray], float]


class Unscorable(Exception):
    """A registered model that cannot be scored on the current test split (its input schema
    changed, its classes differ, it saw the test window, its artifact is gone)."""


@dataclass(frozen=True)
class ItemScores:
    """One model's outcome on every test item.

    `metric(indices)` is the task's metric on the items at `indices` (repeats allowed: a
    bootstrap resample). `groups` names each item's class / family / length bucket for the
    per-group deltas of `compare`; `outcomes` is what the model said for each item (a label, a
    translation, an IoU) so that `compare` can show where two versions disagree.
    """

    metric: Metric
    items: int
    groups: Sequence[str] | None = None
    outcomes: Sequence[Any] | None = None
    truths: Sequence[Any] | None = None
    item_ids: Sequence[Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def value(self) -> float:
        return float(self.metric(np.arange(self.items)))


def mean_metric(per_item: np.ndarray, finish: Callable[[float], float] | None = None) -> Metric:
    """A metric that is a mean over items (accuracy, mean IoU) or a function of one (RMSLE =
    sqrt of the mean squared log error)."""
    values = np.asarray(per_item, dtype=float)

    def metric(indices: np.ndarray) -> float:
        mean = float(values[indices].mean())
        return finish(mean) if finish else mean

    return metric


@dataclass(frozen=True)
class PairedDifference:
    metric: str
    direction: str
    candidate: float
    champion: float
    difference: float  # candidate - champion, in the metric's units
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int
    items: int

    @property
    def gain(self) -> float:
        """How much better the candidate is (positive = better, whatever the direction)."""
        return self.difference if self.direction == "maximize" else -self.difference

    @property
    def gain_ci_low(self) -> float:
        return self.ci_low if self.direction == "maximize" else -self.ci_high

    def sentence(self) -> str:
        pct = round(self.confidence * 100)
        return (
            f"{self.metric} {self.candidate:.4f} vs {self.champion:.4f} on the same "
            f"{self.items} test items: difference {self.difference:+.4f} "
            f"({pct}% CI {self.ci_low:+.4f} .. {self.ci_high:+.4f})"
        )


def paired_difference(
    candidate: ItemScores,
    champion: ItemScores,
    metric: str,
    direction: str,
    resamples: int,
    confidence: float,
    seed: int,
) -> PairedDifference:
    if candidate.items != champion.items:
        raise Unscorable(
            f"the champion was scored on {champion.items} items, the candidate on "
            f"{candidate.items}: not the same test split"
        )
    from scipy.stats import bootstrap

    def difference(indices: np.ndarray) -> float:
        return candidate.metric(indices) - champion.metric(indices)

    indices = np.arange(candidate.items)
    observed = difference(indices)
    result = bootstrap(
        (indices,),
        difference,
        vectorized=False,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return PairedDifference(
        metric=metric,
        direction=direction,
        candidate=candidate.value(),
        champion=champion.value(),
        difference=float(observed),
        ci_low=float(low),
        ci_high=float(high),
        confidence=confidence,
        resamples=resamples,
        items=candidate.items,
    )


def group_deltas(a: ItemScores, b: ItemScores) -> dict[str, dict[str, float]]:
    """The metric per group (class, family, length bucket) for both versions."""
    if a.groups is None:
        return {}
    groups = np.asarray(a.groups, dtype=object)
    table = {}
    for group in sorted(set(groups.tolist()), key=str):
        rows = np.flatnonzero(groups == group)
        try:
            va, vb = a.metric(rows), b.metric(rows)
        except ValueError:  # e.g. ROC-AUC of a group that holds one class only
            continue
        table[str(group)] = {"items": int(len(rows)), "a": va, "b": vb, "difference": va - vb}
    return table
