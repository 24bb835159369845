"""params.yaml -> typed, validated models. A bad key fails before any work starts, in one line
naming the dotted key path and what was expected."""

from __future__ import annotations

import importlib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stages.core.errors import UserError

PARAMS_FILE = "params.yaml"


class StrictModel(BaseModel):
    """Every params section: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedModelsParams(StrictModel):
    """A train section with a `models` list: the names must differ (they name the nested MLflow
    runs and the saved files)."""

    @model_validator(mode="after")
    def _unique_names(self) -> NamedModelsParams:
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"model names must be unique, got {names}")
        return self


class StepBudget(StrictModel):
    """A torch train section's floor on optimizer steps (stages/core/training.py:
    training_budget): a small dataset gets more epochs rather than a handful of steps."""

    min_steps: int = Field(
        default=0,
        ge=0,
        description="at least this many optimizer steps: epochs (and patience) are raised "
        "to ceil(min_steps / batches per epoch) when the data is small; 0 = epochs as given",
    )


class CommonParams(StrictModel):
    seed: int = 42
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    n_jobs: int = Field(default=-1, description="CPU workers for scikit-learn/CatBoost; -1 = all")


class PromotionParams(StrictModel):
    """The rule that moves the registry alias `champion`."""

    metric: str
    direction: Literal["maximize", "minimize"] = "maximize"
    min_delta: float = Field(default=0.0, ge=0.0)
    # the candidate and the champion are scored on the same test items; the paired difference
    # (better = positive) or the lower end of its bootstrap CI must exceed min_delta
    decide_on: Literal["difference", "ci_lower"] = "difference"
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    resamples: int = Field(default=1000, ge=100, le=100_000)
    # what happens when the champion cannot be scored on today's test split (schema changed,
    # artifact gone): promote the candidate, or keep the champion
    unscorable_champion: Literal["promote", "keep"] = "promote"


class TaskParams(StrictModel):
    """Base of every task's section. Each step reads its own sub-section, so DVC tracks them
    one by one and a change re-runs only the affected steps."""

    source: BaseModel
    validate_: BaseModel = Field(alias="validate")
    preprocess: BaseModel
    train: BaseModel
    evaluate: BaseModel

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True)
class Params:
    common: CommonParams
    tasks: tuple[str, ...]
    sections: dict[str, TaskParams]

    def task(self, name: str) -> TaskParams:
        return self.sections[name]


def task_params_model(task: str) -> type[TaskParams]:
    """A task package `stages.<task>` declares its section as `Params` in its params module."""
    try:
        module = importlib.import_module(f"stages.{task}.params")
    except ModuleNotFoundError as exc:
        if exc.name not in (f"stages.{task}", f"stages.{task}.params"):
            raise  # a missing dependency, e.g. python outside the project's environment
        raise UserError(
            f"{PARAMS_FILE}: tasks: unknown task {task!r} (expected a package stages/{task}/)"
        ) from exc
    return module.Params


def load_params(path: Path) -> Params:
    shown = display_path(path)
    if not path.is_file():
        raise UserError(f"{shown}: file not found (expected the pipeline's params.yaml)")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(f"{shown}: not valid YAML: {' '.join(str(exc).split())}") from exc
    return parse_params(raw, source=shown)


def display_path(path: Path) -> str:
    """Relative to the working directory when inside it: what the user typed or sees."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def parse_params(raw: Any, source: str = PARAMS_FILE) -> Params:
    if not isinstance(raw, dict):
        raise UserError(f"{source}: expected a mapping at the top level")
    tasks = raw.get("tasks")
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise UserError(f"{source}: tasks: expected a list of task names")
    unknown = set(raw) - {"common", "tasks", *tasks}
    if unknown:
        key = sorted(unknown)[0]
        raise UserError(
            f"{source}: {key}: unknown key (expected 'common', 'tasks' or a task listed in "
            f"'tasks': {', '.join(tasks)})"
        )
    common = _validate(CommonParams, raw.get("common") or {}, "common", source)
    sections = {}
    for task in tasks:
        if task not in raw:
            raise UserError(f"{source}: {task}: missing section for task listed in 'tasks'")
        sections[task] = _validate(task_params_model(task), raw[task], task, source)
    return Params(common=common, tasks=tuple(tasks), sections=sections)


def _validate(model: type[BaseModel], data: Any, prefix: str, source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {format_validation_error(exc, model, prefix)}") from None


def format_validation_error(exc: ValidationError, model: type[BaseModel], prefix: str) -> str:
    errors = exc.errors()
    first = errors[0]
    loc = [prefix, *(str(part) for part in first["loc"])]
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, first["loc"][:-1])
        expected = f" (expected one of: {', '.join(allowed)})" if allowed else ""
        message = f"unknown key{expected}"
    elif first["type"] == "missing":
        message = "missing required key"
    else:
        message = f"{first['msg']}, got {first.get('input')!r}"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"{'.'.join(loc)}: {message}{more}"


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the model found at `loc`, following nested models, lists and optionals."""
    current: Any = model
    for part in loc:
        current = _unwrap_model(current)
        if current is None:
            return []
        if isinstance(part, int):
            continue
        field = next((f for n, f in current.model_fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        current = field.annotation
    current = _unwrap_model(current)
    if current is None:
        return []
    return [f.alias or n for n, f in current.model_fields.items()]


def _unwrap_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _unwrap_model(arg)
            if found is not None:
                return found
    if origin is dict:
        return _unwrap_model(typing.get_args(annotation)[-1])
    return None
