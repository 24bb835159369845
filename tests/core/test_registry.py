"""The registry over time, against a real MLflow sqlite store: promotion judged on the same
test items, unscorable champions, manual promote / rollback and their audit trail."""

from __future__ import annotations

import numpy as np
import pytest

from stages.core import registry
from stages.core.comparison import ItemScores, Unscorable, mean_metric, paired_difference
from stages.core.errors import UserError
from stages.core.params import PromotionParams
from tests.core.test_tracking import aliases, new_version

RULE = PromotionParams(metric="accuracy", direction="maximize", resamples=300)
DATA = {"fingerprint": "newdata1", "md5": None, "files": 1, "bytes": 10, "counts": {}}


def correct(share: float, items: int = 400, seed: int = 0) -> ItemScores:
    """A model right on `share` of the items (which ones: random per seed)."""
    hits = np.random.default_rng(seed).random(items) < share
    return ItemScores(metric=mean_metric(hits), items=items, outcomes=hits.tolist())


def judge(store_root, version, candidate: ItemScores, registered: dict, data=DATA, rule=RULE):
    def score(uri: str) -> ItemScores:
        if isinstance(registered[uri], Exception):
            raise registered[uri]
        return registered[uri]

    run_info = {"registered_model": version.name, "version": version.version}
    run_info["run_id"] = new_run_id(version)
    return registry.judge(
        store_root,
        version.name,
        run_info,
        rule,
        {"accuracy": candidate.value()},
        candidate,
        score,
        data,
        seed=0,
    )


def new_run_id(version) -> str:
    import mlflow

    return mlflow.MlflowClient().get_model_version(version.name, version.version).run_id


def test_paired_bootstrap_ci_covers_the_difference_and_is_narrow_for_paired_items():
    a = correct(0.9, items=2000, seed=1)
    hits = np.asarray(a.outcomes, dtype=float)
    b = ItemScores(metric=mean_metric(np.where(np.arange(2000) < 100, 0.0, hits)), items=2000)
    d = paired_difference(a, b, "accuracy", "maximize", 500, 0.95, seed=0)
    assert d.ci_low <= d.difference <= d.ci_high
    assert d.difference == pytest.approx(a.value() - b.value())
    assert d.ci_low > 0  # b is a strictly worse copy of a: pairing makes that visible
    with pytest.raises(Unscorable, match="not the same test split"):
        paired_difference(a, correct(0.9, items=10), "accuracy", "maximize", 200, 0.95, 0)


def test_a_worse_version_on_the_same_data_stays_challenger(store):
    first = new_version(store)
    assert judge(store, first, correct(0.80), {})["promoted"]
    assert aliases("demo") == {"champion": "1", "challenger": "1"}

    second = new_version(store)
    champion_now = correct(0.80)
    result = judge(store, second, correct(0.70, seed=3), {"models:/demo/1": champion_now})
    assert not result["promoted"] and result["champion_version"] == "1"
    assert aliases("demo") == {"champion": "1", "challenger": "2"}
    comparison = result["comparison"]
    assert comparison["difference"] < 0 and comparison["ci_low"] <= comparison["difference"]
    assert "does not beat champion v1" in result["reason"]
    tags = registry.client().get_model_version("demo", "2").tags
    assert tags["promotion"] == "kept as challenger"
    assert float(tags["promotion.difference"]) == pytest.approx(comparison["difference"])
    assert tags["data.fingerprint"] == "newdata1"


def test_the_decision_follows_the_same_data_not_the_stored_number(store):
    """The champion's stored 0.95 was measured on easier data; today it scores 0.70 on the
    current test split, so a candidate at 0.85 (below the stored number) wins."""
    first = new_version(store)
    easy = {**DATA, "fingerprint": "easydata"}
    judge(store, first, correct(0.95), {}, data=easy)
    second = new_version(store)
    result = judge(store, second, correct(0.85, seed=5), {"models:/demo/1": correct(0.70, seed=6)})
    assert result["promoted"], result["reason"]
    assert aliases("demo")["champion"] == "2"
    assert "v1's stored accuracy 0.93" in result["reason"]
    assert "was measured on data easydata" in result["reason"]


def test_an_unscorable_champion_is_said_in_one_line_and_the_rule_decides(store):
    first = new_version(store)
    judge(store, first, correct(0.9), {})
    second = new_version(store)
    gone = {"models:/demo/1": Unscorable("it predicts 41 classes, the test split has 42")}
    keep = PromotionParams(**{**RULE.model_dump(), "unscorable_champion": "keep"})
    result = judge(store, second, correct(0.5), gone, rule=keep)
    assert not result["promoted"]
    assert (
        "champion v1 cannot be scored on the current test split (it predicts 41"
        in (result["reason"])
    )
    third = new_version(store)
    broken = {"models:/demo/1": OSError("artifact missing")}
    result = judge(store, third, correct(0.5), broken)
    assert result["promoted"] and "OSError: artifact missing" in result["reason"]


def test_promote_and_rollback_move_the_champion_and_leave_the_trail(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    for share in (0.80, 0.85, 0.90):
        version = new_version(store)
        previous = registry.alias_holder("demo", "champion")
        scores = {f"models:/demo/{previous}": correct(share - 0.05)} if previous else {}
        judge(store, version, correct(share), scores)
    assert aliases("demo")["champion"] == "3"

    entry = registry.rollback("demo", "v3 breaks on real photos")
    assert (entry["version"], entry["from"], entry["by"].split("@")[0]) == ("2", "3", "alice")
    assert registry.rollback("demo", "again")["version"] == "1"
    with pytest.raises(UserError, match="no previous champion"):
        registry.rollback("demo", "once more")
    registry.promote("demo", "3", "fixed upstream")
    assert aliases("demo")["champion"] == "3"
    with pytest.raises(UserError, match="already the champion"):
        registry.promote("demo", "champion", "no-op")
    with pytest.raises(UserError, match="no version 9"):
        registry.promote("demo", "9", "typo")

    rows = registry.versions("demo")
    assert [r["version"] for r in rows] == ["3", "2", "1"]
    assert rows[0]["aliases"] == ["challenger", "champion"]
    moves = [(e["action"], e["version"], e["from"]) for e in rows[0]["audit"]]
    assert moves[-1] == ("promote (manual)", "3", "1")
    trail = registry.audit_trail("demo")
    assert [e["action"] for e in trail if e["alias"] == "champion"] == [
        "promote (pipeline)",
        "promote (pipeline)",
        "promote (pipeline)",
        "rollback",
        "rollback",
        "promote (manual)",
    ]
    assert all(e["by"].startswith("alice@") and e["at"] for e in trail)
    assert "v3 breaks on real photos" in registry.versions_text("demo", rows)
