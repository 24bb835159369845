"""Atomic file writes: every output appears whole or not at all, and a failed step leaves the
previous output in place."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STAGING_TAGS = ("tmp", "old")


def _tmp_sibling(path: Path, tag: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}.{tag}-", dir=path.parent))


def _replace(tmp: Path, dest: Path) -> None:
    """Move tmp over dest; a directory dest is swapped out first, then deleted."""
    if dest.is_dir() and not dest.is_symlink():
        old = _tmp_sibling(dest, "old")
        old.rmdir()
        dest.rename(old)
        tmp.rename(dest)
        shutil.rmtree(old)
    else:
        os.replace(tmp, dest)


@contextmanager
def staged_outputs(*outputs: Path) -> Iterator[dict[Path, Path]]:
    """Yield a temp path for each output; rename them all into place only if the block succeeds.

    The block creates each temp path (a file, or a directory with its contents). If it raises,
    nothing is renamed and every previous output stays as it was.
    """
    staging: dict[Path, Path] = {}
    holders: list[Path] = []
    for out in outputs:
        remove_leftovers(out)
    try:
        for out in outputs:
            holder = _tmp_sibling(out, "tmp")
            holders.append(holder)
            staging[out] = holder / out.name
        yield staging
        for out, tmp in staging.items():
            if not tmp.exists():
                raise RuntimeError(f"step finished without writing {out}")
        for out, tmp in staging.items():
            _replace(tmp, out)
    finally:
        for holder in holders:
            shutil.rmtree(holder, ignore_errors=True)


def remove_leftovers(out: Path) -> None:
    """Delete the staging folders a killed step left beside `out` (a SIGKILL skips `finally`).
    Safe: DVC's lock on a stage's outputs keeps two runs from writing the same output."""
    if not out.parent.is_dir():
        return
    for tag in STAGING_TAGS:
        for leftover in out.parent.glob(f".{out.name}.{tag}-*"):
            shutil.rmtree(leftover, ignore_errors=True)


@contextmanager
def atomic_dir(dest: Path) -> Iterator[Path]:
    """Yield an empty temp directory that replaces `dest` when the block succeeds."""
    with staged_outputs(dest) as staging:
        staging[dest].mkdir()
        yield staging[dest]


def write_text(path: Path, text: str) -> None:
    with staged_outputs(path) as staging:
        staging[path].write_text(text, encoding="utf-8")


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if hasattr(value, "isoformat"):  # dates, pandas Timestamps
        return value.isoformat()
    if isinstance(value, (Path, set, frozenset)):
        return sorted(value) if isinstance(value, (set, frozenset)) else str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
