"""The DVC graph as the orchestrator sees it, read from DVC's own index so that dvc.yaml stays
the one definition of the pipeline: stages, what each waits for, how far along its chain each
one is, and which stages need the accelerator."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stage:
    name: str  # as `dvc repro -s` takes it: `train@churn`, `summary`
    upstream: frozenset[str]  # stages whose outputs this one reads
    restorable: bool = False  # DVC's run-cache records it: cached outputs, none persistent

    @property
    def task(self) -> str | None:
        """`churn` for `train@churn`; None for stages outside any task (`summary`)."""
        return self.name.partition("@")[2] or None

    @property
    def step(self) -> str:
        return self.name.partition("@")[0]


def address(stage, root: Path) -> str:
    """How `dvc repro -s` names a stage from the repository root (DVC's own `addressing` is
    relative to the working directory)."""
    path = os.path.relpath(stage.path, root)
    name = getattr(stage, "name", None)
    if not name:  # a .dvc file
        return path
    return name if path == "dvc.yaml" else f"{path}:{name}"


def read_graph(root: Path) -> dict[str, Stage]:
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        return {
            address(node, root): Stage(
                address(node, root),
                frozenset(address(dep, root) for dep in graph.successors(node)),
                restorable=restorable(node),
            )
            for node in graph.nodes
        }


def restorable(stage) -> bool:
    """Whether DVC saves a run-cache entry for the stage (the rule of dvc/stage/cache.py), so
    that its outputs are worth pushing to the remote for other hosts."""
    outs = getattr(stage, "outs", [])
    return (
        bool(outs and getattr(stage, "cmd", None))
        and not getattr(stage, "always_changed", False)
        and all(out.use_cache and not out.persist for out in outs)
    )


def select(stages: dict[str, Stage], task: str | None) -> dict[str, Stage]:
    """The stages of one task plus the task-less stages downstream of them (the summary);
    everything when task is None."""
    if task is None:
        return stages
    chosen = {name for name, stage in stages.items() if stage.task == task}
    if not chosen:
        known = sorted({s.task for s in stages.values() if s.task})
        raise ValueError(f"dvc.yaml has no stages for task {task!r} (tasks: {', '.join(known)})")
    grew = True
    while grew:
        grew = False
        for name, stage in stages.items():
            if name not in chosen and stage.task is None and stage.upstream & chosen:
                chosen.add(name)
                grew = True
    return {name: stages[name] for name in stages if name in chosen}


def levels(stages: dict[str, Stage]) -> list[list[str]]:
    """Stages grouped by their longest chain of upstream stages within `stages`: every stage of
    a level depends only on earlier levels, so a level may run all at once."""
    depth: dict[str, int] = {}

    def depth_of(name: str) -> int:
        if name not in depth:
            upstream = [u for u in stages[name].upstream if u in stages]
            depth[name] = 1 + max((depth_of(u) for u in upstream), default=-1)
        return depth[name]

    for name in stages:
        depth_of(name)
    grouped: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in sorted(stages):
        grouped[depth[name]].append(name)
    return grouped


def needs_accelerator(stage: Stage) -> bool:
    """A task package lists the steps that run on the GPU in `ACCELERATED_STEPS`."""
    if stage.task is None:
        return False
    try:
        package = importlib.import_module(f"stages.{stage.task}")
    except ModuleNotFoundError:
        return False
    return stage.step in getattr(package, "ACCELERATED_STEPS", ())
