"""Assertions shared by the nmt tests that read a trained task's reports."""

from __future__ import annotations


def assert_selected_by_validation_bleu(metrics: dict, models: set[str]) -> dict:
    """Every model is scored on both splits, the best validation BLEU is selected and its beam
    BLEU on the test split is the headline; returns the selected model's test scores."""
    assert set(metrics["test"]) == models == set(metrics["valid"])
    selected = metrics["selected"]
    assert selected == max(metrics["valid"], key=lambda m: metrics["valid"][m]["bleu"])
    assert metrics["headline"] == {
        "metric": "bleu",
        "value": metrics["test"][selected]["beam"]["bleu"],
        "split": "test",
        "model": selected,
    }
    return metrics["test"][selected]
