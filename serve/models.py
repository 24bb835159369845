"""Which model a tab uses, and each version loaded once: the choices come from the MLflow
registry (`champion`, `challenger`, then every version newest first with its metric and date);
a loaded version is shared by every request until the process ends."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stages.core import registry, tracking
from stages.core.errors import UserError


@dataclass(frozen=True)
class Choice:
    label: str  # what the picker shows
    uri: str  # models:/<task>/<version>
    version: str


def choices(task: str) -> list[Choice]:
    """The aliases first (champion, challenger), then every version, newest first."""
    rows = registry.versions(task)  # UserError when the task has no registered model yet
    found = []
    for alias in (tracking.CHAMPION, tracking.CHALLENGER):
        for row in rows:
            if alias in row["aliases"]:
                found.append(Choice(f"{alias} (v{row['version']})", uri(task, row), row["version"]))
    for row in rows:
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in list(row["metrics"].items())[:1])
        label = f"v{row['version']} · {metrics or 'no metric'} · {row['created'][:10]}"
        found.append(Choice(label, uri(task, row), row["version"]))
    return found


def uri(task: str, row: dict) -> str:
    return f"models:/{task}/{row['version']}"


def champion_label(task: str) -> str | None:
    try:
        options = choices(task)
    except UserError:
        return None
    return options[0].label if options else None


def resolve(task: str, label: str | None) -> Choice:
    """The chosen version; the champion when nothing is chosen."""
    try:
        options = choices(task)
    except UserError:
        options = []
    if not options:
        raise UserError(f"{task}: no model is registered yet: run the pipeline first")
    if not label:
        champion = [c for c in options if c.label.startswith(tracking.CHAMPION)]
        if not champion:
            raise UserError(f"{task}: no version is champion yet: promote one first")
        return champion[0]
    for option in options:
        if option.label == label:
            return option
    raise UserError(f"{task}: unknown model {label!r}")


class ModelCache:
    """Loaded models by (task, version): loaded once, under a lock per key, then shared."""

    def __init__(self, root: Path):
        self.root = root
        self._models: dict[tuple[str, str], Any] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, task: str, choice: Choice, load: Callable[[str], Any]) -> Any:
        key = (task, choice.version)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._models:
                self._models[key] = load(choice.uri)
            return self._models[key]

    def loaded(self) -> list[tuple[str, str]]:
        return sorted(self._models)
