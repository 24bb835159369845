"""The model registry over time: the promotion rule judged on the same data, every alias move
with its audit trail, and the table of all versions.

Each alias move is an `audit.<ms since epoch>` tag on the version that received the alias
(JSON: action, alias, version, from, by, at, reason), so the trail lives in MLflow itself, is
shared by every host that uses the same tracking server, and `registry` can rebuild the
champion's history from it.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stages.core import dataversion, tracking
from stages.core.comparison import ItemScores, Unscorable, paired_difference
from stages.core.errors import UserError
from stages.core.params import PromotionParams
from stages.core.tracking import CHAMPION

log = logging.getLogger(__name__)

AUDIT_PREFIX = "audit."
Scorer = Callable[[str], ItemScores]


def client():
    import mlflow

    return mlflow.MlflowClient()


def actor() -> str:
    """Who moved an alias: the MLflow user when the server has auth, else user@host."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"


def alias_holder(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def move_alias(name: str, alias: str, version: str, action: str, reason: str) -> dict:
    """Point `alias` at `version` and write the move on that version's trail."""
    previous = alias_holder(name, alias)
    client().set_registered_model_alias(name, alias, version)
    stamp = time.time_ns() // 1_000_000
    entry = {
        "action": action,
        "alias": alias,
        "version": str(version),
        "from": previous,
        "by": actor(),
        "at": datetime.fromtimestamp(stamp / 1000, UTC).isoformat(timespec="seconds"),
        "reason": reason,
    }
    client().set_model_version_tag(name, version, f"{AUDIT_PREFIX}{stamp:015d}", json.dumps(entry))
    return entry


def audit_trail(name: str) -> list[dict]:
    entries = []
    for version in client().search_model_versions(f"name='{name}'"):
        for key, value in version.tags.items():
            if key.startswith(AUDIT_PREFIX):
                entries.append((key, json.loads(value)))
    return [entry for _, entry in sorted(entries, key=lambda e: e[0])]


def champion_history(trail: list[dict]) -> list[str]:
    """The champions in order, as a stack: a promotion pushes, a rollback pops."""
    stack: list[str] = []
    for entry in trail:
        if entry["alias"] != CHAMPION:
            continue
        if entry["action"] == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != entry["version"]:
                stack.append(entry["version"])
        else:
            stack.append(entry["version"])
    return stack


def existing_version(name: str, ref: str) -> str:
    """A version number or an alias -> the version number; a clear error otherwise."""
    from mlflow.exceptions import MlflowException

    if ref.isdigit():
        try:
            return str(client().get_model_version(name, ref).version)
        except MlflowException:
            raise UserError(f"registry: {name}: no version {ref}") from None
    holder = alias_holder(name, ref)
    if holder is None:
        raise UserError(f"registry: {name}: no version has the alias {ref!r}")
    return holder


def promote(name: str, ref: str, reason: str) -> dict:
    """A person makes a version the champion."""
    version = existing_version(name, ref)
    if alias_holder(name, CHAMPION) == version:
        raise UserError(f"registry: {name}: version {version} is already the champion")
    entry = move_alias(name, CHAMPION, version, "promote (manual)", reason)
    describe_decision(name, version, "promoted to champion by hand", reason)
    return entry


def rollback(name: str, reason: str) -> dict:
    """The champion goes back to the previous champion."""
    history = champion_history(audit_trail(name))
    if len(history) < 2:
        raise UserError(f"registry: {name}: no previous champion to roll back to")
    target = history[-2]
    entry = move_alias(name, CHAMPION, target, "rollback", reason)
    describe_decision(name, target, "champion again after a rollback", reason)
    return entry


def describe_decision(name: str, version: str, outcome: str, reason: str) -> None:
    mlflow_client = client()
    mlflow_client.set_model_version_tag(name, version, "promotion", outcome)
    mlflow_client.set_model_version_tag(name, version, "promotion.reason", reason[:4900])
    mlflow_client.update_model_version(name, version, description=f"{outcome}: {reason}")


def decide_by_rule(rule: PromotionParams, gain: float, gain_low: float) -> bool:
    value = gain if rule.decide_on == "difference" else gain_low
    return value > rule.min_delta


def judge(
    root: Path,
    task: str,
    run_info: dict,
    rule: PromotionParams,
    metrics: dict[str, Any],
    candidate: ItemScores,
    score_registered: Scorer,
    data: dict[str, Any],
    seed: int,
) -> dict[str, Any]:
    """Evaluate's side of the registry: score the current champion on the same test items as
    the candidate and move `champion` only if the rule says the candidate wins. Returns what
    to write to promotion.json."""
    import mlflow

    tracking.configure(root)
    name, version = run_info["registered_model"], run_info["version"]
    with mlflow.start_run(run_id=run_info["run_id"]):
        tracking.log_metrics({f"holdout_{k}": v for k, v in metrics.items()})
        mlflow.set_tags(dataversion.tags(data))
    mlflow_client = client()
    value = float(metrics[rule.metric])
    for key, tag in {f"metric.{rule.metric}": str(value), **dataversion.tags(data)}.items():
        mlflow_client.set_model_version_tag(name, version, key, tag)

    champion = alias_holder(name, CHAMPION)
    result: dict[str, Any] = {
        "model": name,
        "version": version,
        "metric": rule.metric,
        "value": value,
        "data": data,
        "previous_champion": champion,
        "comparison": None,
        "champion_unscorable": None,
    }
    if champion == version:
        return {
            **result,
            "promoted": True,
            "reason": "already champion",
            "champion_version": version,
        }
    if champion is None:
        promoted, reason = True, f"no champion yet; {rule.metric}={value:.4f}"
    else:
        promoted, reason, extra = _against_champion(
            name, champion, rule, candidate, score_registered, data, seed
        )
        result.update(extra)
    outcome = "promoted to champion" if promoted else "kept as challenger"
    if promoted:
        move_alias(name, CHAMPION, version, "promote (pipeline)", reason)
    describe_decision(name, version, outcome, reason)
    comparison = result["comparison"]
    if comparison:
        for key in ("difference", "ci_low", "ci_high"):
            mlflow_client.set_model_version_tag(
                name, version, f"promotion.{key}", f"{comparison[key]:.6f}"
            )
        mlflow_client.set_model_version_tag(name, version, "promotion.against", champion)
    return {
        **result,
        "promoted": promoted,
        "reason": reason,
        "champion_version": version if promoted else champion,
    }


def _against_champion(
    name: str,
    champion: str,
    rule: PromotionParams,
    candidate: ItemScores,
    score_registered: Scorer,
    data: dict[str, Any],
    seed: int,
) -> tuple[bool, str, dict[str, Any]]:
    stored_tags = client().get_model_version(name, champion).tags
    stored = stored_tags.get(f"metric.{rule.metric}")
    stored_data = stored_tags.get("data.fingerprint", "unknown")
    note = (
        f"; v{champion}'s stored {rule.metric} {float(stored):.4f} was measured on data "
        f"{stored_data}"
        if stored is not None and stored_data != data["fingerprint"]
        else ""
    )
    started = time.perf_counter()
    try:
        scores = score_registered(f"models:/{name}/{champion}")
        scored = time.perf_counter()
        comparison = paired_difference(
            candidate,
            scores,
            rule.metric,
            rule.direction,
            rule.resamples,
            rule.confidence,
            seed,
        )
    except Exception as exc:  # noqa: BLE001 - any failure to score the old model is reported
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not isinstance(exc, Unscorable):
            log.debug("scoring champion v%s failed", champion, exc_info=True)
            why = f"{type(exc).__name__}: {why}"
        promoted = rule.unscorable_champion == "promote"
        reason = (
            f"champion v{champion} cannot be scored on the current test split ({why}); "
            f"rule unscorable_champion={rule.unscorable_champion}"
        )
        log.warning(reason)
        return promoted, reason, {"champion_unscorable": why}
    promoted = decide_by_rule(rule, comparison.gain, comparison.gain_ci_low)
    relation = "beats" if promoted else "does not beat"
    basis = "the difference" if rule.decide_on == "difference" else "the CI's worse end"
    better = "higher" if rule.direction == "maximize" else "lower"
    reason = (
        f"{relation} champion v{champion}: {comparison.sentence()}; rule: {basis} must be "
        f"better ({better} {rule.metric}) by more than {rule.min_delta}{note}"
    )
    seconds = {
        "champion_scoring": round(scored - started, 2),
        "bootstrap": round(time.perf_counter() - scored, 2),
    }
    return promoted, reason, {"comparison": asdict(comparison), "seconds": seconds}


def params_digest(current: dict[str, str], previous: dict[str, str] | None) -> str:
    """The train params that differ from the previous version's, e.g. `depth 6→8`."""
    if previous is None:
        return "first version"
    changed = [
        f"{key} {previous.get(key, '∅')}→{current.get(key, '∅')}"
        for key in sorted(set(current) | set(previous))
        if current.get(key) != previous.get(key)
    ]
    return "; ".join(changed) if changed else "same params"


def versions(name: str) -> list[dict[str, Any]]:
    """Every registered version, newest first, with what a person compares them by."""
    from mlflow.exceptions import MlflowException

    mlflow_client = client()
    try:
        model = mlflow_client.get_registered_model(name)
    except MlflowException:
        raise UserError(
            f"registry: no registered model {name!r} (run the pipeline first)"
        ) from None
    aliases: dict[str, list[str]] = {}
    for alias, version in model.aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    trail = audit_trail(name)
    found = sorted(
        mlflow_client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)
    )
    rows, previous_params = [], None
    for version in found:
        run = _run_or_none(mlflow_client, version.run_id)
        params = dict(run.data.params) if run else {}
        tags = dict(run.data.tags) if run else {}
        metrics = {k: v for k, v in version.tags.items() if k.startswith("metric.")}
        rows.append(
            {
                "version": str(version.version),
                "aliases": sorted(aliases.get(str(version.version), [])),
                "created": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC).isoformat(
                    timespec="seconds"
                ),
                "git_commit": tags.get("git.commit", "unknown")[:10],
                "data": version.tags.get("data.fingerprint", tags.get("data.fingerprint", "?")),
                "data_counts": version.tags.get("data.counts", ""),
                "params": params_digest(params, previous_params),
                "metrics": {k.removeprefix("metric."): float(v) for k, v in metrics.items()},
                "promotion": version.tags.get("promotion", "not judged"),
                "reason": version.tags.get("promotion.reason", ""),
                "audit": [e for e in trail if e["version"] == str(version.version)],
            }
        )
        previous_params = params
    return rows[::-1]


def _run_or_none(mlflow_client, run_id: str | None):
    from mlflow.exceptions import MlflowException

    if not run_id:
        return None
    try:
        return mlflow_client.get_run(run_id)
    except MlflowException:
        return None


def versions_text(name: str, rows: list[dict[str, Any]]) -> str:
    """The terminal table and, under it, the alias moves."""
    import pandas as pd

    table = pd.DataFrame(
        [
            {
                "version": r["version"],
                "aliases": ",".join(r["aliases"]),
                "created": r["created"].replace("T", " ")[:16],
                "commit": r["git_commit"][:8],
                "data": r["data"],
                "metric": ", ".join(f"{k} {v:.4f}" for k, v in r["metrics"].items()),
                "decision": r["promotion"],
                "params vs previous": _short(r["params"], 48),
            }
            for r in rows
        ]
    )
    lines = [f"registered model {name}", table.to_string(index=False), "", "decisions:"]
    lines += [f"  v{r['version']}: {r['reason']}" for r in rows if r["reason"]]
    lines += ["", "alias moves:"]
    moves = sorted((e for r in rows for e in r["audit"]), key=lambda e: e["at"])
    lines += [
        f"  {e['at']}  {e['alias']} → v{e['version']} (from "
        f"{'v' + e['from'] if e['from'] else 'none'}) {e['action']} by {e['by']}: {e['reason']}"
        for e in moves
    ]
    return "\n".join(lines)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
