"""download: data/raw/nmt/data.txt in the course's format (`english<TAB>russian` UTF-8 lines)
from the builtin corpus, or whatever a url / local path holds (the course's data.txt, Tatoeba's
rus-eng.zip with rus.txt, a folder, a tar)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.core.context import StepContext
from stages.core.sources import fetch_task_source
from stages.nmt.corpus import load_pairs

DATA_FILE = "data.txt"


def builtin_lines(max_pairs: int | None, seed: int) -> list[str]:
    """The builtin pairs as course lines; `max_pairs` keeps a seeded sample in file order."""
    pairs = load_pairs()
    if max_pairs is not None and max_pairs < len(pairs):
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False))
        pairs = [pairs[i] for i in keep]
    return [f"{english}\t{russian}" for english, russian, _ in pairs]


def write_builtin(dest: Path, max_pairs: int | None, seed: int) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    text = "\n".join(builtin_lines(max_pairs, seed)) + "\n"
    (dest / DATA_FILE).write_bytes(text.encode("utf-8"))


def run(ctx: StepContext) -> None:
    source = ctx.task_params.source
    fetch_task_source(
        source,
        ctx.paths,
        builtin=lambda dest: write_builtin(dest, source.max_pairs, ctx.common.seed),
    )
