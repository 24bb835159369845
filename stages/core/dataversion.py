"""A dataset version: DVC's own hash of data/raw/<task> (from dvc.lock) as a short fingerprint,
with the file count and size DVC recorded and the row / image counts validation found."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

FINGERPRINT_CHARS = 8
# validation facts that count the dataset's items (train rows, test images, pairs, ...)
COUNT_FACT = re.compile(r"(rows|images|pairs|series|cases|objects|sentences)$")


def lock_outs(root: Path) -> dict[str, dict[str, Any]]:
    """Every output recorded in dvc.lock, by path: its md5, size and file count."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages", {})
    return {out["path"]: out for stage in stages.values() for out in stage.get("outs", [])}


def data_version(root: Path, task: str, validation: dict | None = None) -> dict[str, Any]:
    """{"fingerprint", "md5", "files", "bytes", "counts"}; fingerprint "unknown" before the
    download stage has run under DVC (no dvc.lock entry)."""
    out = lock_outs(root).get(f"data/raw/{task}", {})
    md5 = str(out.get("md5") or out.get("hash") or "").removesuffix(".dir")
    facts = (validation or {}).get("facts", {})
    counts = {
        name: value
        for name, value in facts.items()
        if isinstance(value, int) and not isinstance(value, bool) and COUNT_FACT.search(name)
    }
    return {
        "fingerprint": md5[:FINGERPRINT_CHARS] or "unknown",
        "md5": md5 or None,
        "files": out.get("nfiles", 1 if out else None),
        "bytes": out.get("size"),
        "counts": counts,
    }


def describe(version: dict[str, Any]) -> str:
    """`3f2a9c1e (3 files, 1.2 MB; train rows 5282, test rows 1761)`"""
    parts = []
    if version.get("files") is not None:
        parts.append(f"{version['files']} files")
    if version.get("bytes") is not None:
        parts.append(f"{version['bytes'] / 1e6:.1f} MB")
    counted = ", ".join(f"{k} {v}" for k, v in version.get("counts", {}).items())
    detail = "; ".join(p for p in (", ".join(parts), counted) if p)
    return f"{version['fingerprint']} ({detail})" if detail else version["fingerprint"]


def tags(version: dict[str, Any]) -> dict[str, str]:
    """MLflow tags of a run / model version that read this dataset version."""
    return {
        "data.fingerprint": version["fingerprint"],
        "data.md5": str(version.get("md5")),
        "data.files": str(version.get("files")),
        "data.bytes": str(version.get("bytes")),
        "data.counts": ", ".join(f"{k} {v}" for k, v in version.get("counts", {}).items()),
    }
