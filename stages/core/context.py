"""What a step gets: its task's validated params and the uniform paths of the task contract."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from stages.core.params import CommonParams, Params, TaskParams
from stages.core.tracking import RUN_INFO_FILE


@dataclass(frozen=True)
class TaskPaths:
    root: Path
    task: str

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw" / self.task

    @property
    def processed(self) -> Path:
        return self.root / "data" / "processed" / self.task

    @property
    def models(self) -> Path:
        return self.root / "models" / self.task

    @property
    def reports(self) -> Path:
        return self.root / "reports" / self.task

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    @property
    def validation_json(self) -> Path:
        return self.reports / "validation.json"

    @property
    def validation_html(self) -> Path:
        return self.reports / "validation.html"

    @property
    def metrics_json(self) -> Path:
        return self.reports / "metrics.json"

    @property
    def report_md(self) -> Path:
        return self.reports / "report.md"

    @property
    def report_html(self) -> Path:
        return self.reports / "report.html"

    @property
    def submission_csv(self) -> Path:
        return self.reports / "submission.csv"

    @property
    def promotion_json(self) -> Path:
        return self.reports / "promotion.json"

    @property
    def run_info(self) -> Path:
        """Written by train: the MLflow run and registered version the later steps refer to."""
        return self.models / RUN_INFO_FILE

    @property
    def source_check(self) -> Path:
        """Written by the `source` step on every repro: what the source holds now."""
        return self.root / "data" / "sources" / f"{self.task}.json"

    @property
    def downloads(self) -> Path:
        """Archives fetched from a url, kept by checksum so a re-run never downloads twice."""
        return self.root / "data" / "downloads"


@dataclass(frozen=True)
class StepContext:
    task: str
    step: str
    root: Path
    params: Params

    @cached_property
    def paths(self) -> TaskPaths:
        return TaskPaths(self.root, self.task)

    @property
    def common(self) -> CommonParams:
        return self.params.common

    @property
    def task_params(self) -> TaskParams:
        return self.params.task(self.task)

    @property
    def stage(self) -> str:
        """The DVC stage name this step runs as (foreach stages are `<step>@<task>`)."""
        return f"{self.step}@{self.task}"
