"""Small data gets enough optimizer steps, and a model that learned nothing is called out."""

from __future__ import annotations

import logging

from stages.core.reporting import did_not_learn_section
from stages.core.training import did_not_learn, learning_verdict, training_budget


def test_small_data_gets_more_epochs_and_patience_until_the_step_floor():
    # a dozen images in batches of 8: 2 steps an epoch, 12 epochs = 24 steps
    assert training_budget(2, 12, None, 300) == (150, None)
    assert training_budget(2, 12, 4, 300) == (150, 50)
    assert training_budget(3, 10, 5, 100) == (34, 17)


def test_enough_data_or_no_floor_keeps_the_epochs_as_given():
    assert training_budget(53, 12, 3, 300) == (12, 3)  # 636 steps already
    assert training_budget(2, 12, 3, 0) == (12, 3)
    assert training_budget(0, 5, None, 10) == (10, None)  # an empty loader still counts one


def test_a_metric_near_zero_or_never_above_its_first_epoch_did_not_learn(caplog):
    flat = [{"epoch": e, "val_map_50": v} for e, v in enumerate([0.004, 0.005, 0.003])]
    assert "stayed near zero (best 0.0050 < 0.05)" in learning_verdict(flat, "val_map_50", 0.05)
    worse = [{"epoch": e, "val_iou": v} for e, v in enumerate([0.40, 0.31, 0.38])]
    assert learning_verdict(worse, "val_iou", 0.05) == (
        "val_iou never rose above its first epoch's 0.4000 in 3 epochs"
    )
    learned = [{"epoch": e, "val_iou": v} for e, v in enumerate([0.40, 0.61, 0.70])]
    assert learning_verdict(learned, "val_iou", 0.05) is None
    assert learning_verdict([{"epoch": 0, "val_iou": 0.5}], "val_iou", 0.05) is None

    with caplog.at_level(logging.WARNING):
        sentence = did_not_learn("fcos", flat, "val_map_50", 0.05)
    assert sentence.startswith("fcos did not learn: val_map_50 stayed near zero")
    assert "try more optimizer steps (train.min_steps or epochs)" in sentence
    assert sentence in caplog.text
    section = did_not_learn_section([None, sentence])
    assert (
        section.startswith("> **Warning: a model did not learn.**") and f"> - {sentence}" in section
    )
    assert did_not_learn_section([None, None]) == ""
