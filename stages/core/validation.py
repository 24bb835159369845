"""Data gates with Great Expectations: a task declares, per table, the expectations its data must
meet; this module runs them, writes reports/T/validation.json and a readable HTML page, and turns
a failure into one line naming the table, column, expectation and sample bad values."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from stages.core.errors import UserError
from stages.core.fsio import dump_json, staged_outputs
from stages.core.rendering import markdown_table, render_html

SAMPLE_SIZE = 5


@dataclass
class TableCheck:
    """A table (one data file) and the GX expectations it must meet."""

    name: str
    frame: pd.DataFrame
    expectations: list[Any]


@dataclass
class ValidationReport:
    task: str
    tables: dict[str, dict[str, Any]]
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return all(r["success"] for t in self.tables.values() for r in t["expectations"])

    @property
    def failures(self) -> list[tuple[str, dict[str, Any]]]:
        return [
            (name, r)
            for name, t in self.tables.items()
            for r in t["expectations"]
            if not r["success"]
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "success": self.success,
            "facts": self.facts,
            "tables": self.tables,
        }


def run_checks(task: str, checks: list[TableCheck], facts: dict[str, Any]) -> ValidationReport:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    source = context.data_sources.add_pandas(task)
    tables = {}
    for check in checks:
        batch_definition = source.add_dataframe_asset(
            check.name
        ).add_batch_definition_whole_dataframe("all")
        # a suite kept out of the context's store: adding to the store deep-copies every
        # expectation (validate churn 10.5 -> 9.7 s)
        suite = gx.ExpectationSuite(name=f"{task}.{check.name}", expectations=check.expectations)
        batch = batch_definition.get_batch(batch_parameters={"dataframe": check.frame})
        result = batch.validate(suite, result_format="SUMMARY")
        tables[check.name] = {
            "rows": len(check.frame),
            "columns": list(map(str, check.frame.columns)),
            "expectations": [_summarise(r) for r in result.results],
        }
    return ValidationReport(task=task, tables=tables, facts=facts)


def _summarise(result: Any) -> dict[str, Any]:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "column")}
    details = result.result or {}
    exception = (result.exception_info or {}).get("exception_message")
    return {
        "expectation": config.type,
        "column": config.kwargs.get("column"),
        "kwargs": kwargs,
        "success": bool(result.success),
        "unexpected_count": details.get("unexpected_count"),
        "unexpected_percent": details.get("unexpected_percent"),
        "sample": [_plain(v) for v in details.get("partial_unexpected_list", [])[:SAMPLE_SIZE]],
        "observed": _plain(details.get("observed_value")),
        "error": exception,
    }


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def failed_path(path: Path) -> Path:
    """Where a failing report goes, beside the last passing one (which stays as it was)."""
    return path.with_name(f"{path.stem}.failed{path.suffix}")


def publish_report(report: ValidationReport, json_path: Path, html_path: Path) -> None:
    """Write the report and stop on failure.

    A passing report replaces validation.json/html and clears any earlier failure; a failing
    one is written to validation.failed.json/html, so the outputs of the last good data stay
    in place, and the step exits with one line naming what failed.
    """
    if report.success:
        _write(report, json_path, html_path)
        for stale in (failed_path(json_path), failed_path(html_path)):
            stale.unlink(missing_ok=True)
        return
    _write(report, failed_path(json_path), failed_path(html_path))
    raise_on_failure(report, failed_path(html_path))


def _write(report: ValidationReport, json_path: Path, html_path: Path) -> None:
    with staged_outputs(json_path, html_path) as staging:
        staging[json_path].write_text(dump_json(report.to_dict()), encoding="utf-8")
        staging[html_path].write_text(
            render_html(f"Data validation — {report.task}", validation_markdown(report)),
            encoding="utf-8",
        )


def validation_markdown(report: ValidationReport) -> str:
    verdict = "PASSED" if report.success else f"FAILED ({len(report.failures)} expectation(s))"
    lines = [f"# Data validation — {report.task}: {verdict}", ""]
    if report.facts:
        lines += [
            "## Facts",
            "",
            markdown_table(
                pd.DataFrame(
                    {"fact": list(report.facts), "value": list(map(str, report.facts.values()))}
                )
            ),
            "",
        ]
    for name, table in report.tables.items():
        lines += [f"## {name} — {table['rows']} rows, {len(table['columns'])} columns", ""]
        rows = [
            {
                "ok": "✅" if r["success"] else "❌",
                "expectation": r["expectation"],
                "column": r["column"] or "",
                "unexpected": "" if r["unexpected_count"] is None else r["unexpected_count"],
                "observed / sample": r["error"] or (r["sample"] if r["sample"] else r["observed"]),
            }
            for r in table["expectations"]
        ]
        lines += [markdown_table(pd.DataFrame(rows)), ""]
    return "\n".join(lines)


def raise_on_failure(report: ValidationReport, html_path: Path) -> None:
    if report.success:
        return
    # Name concrete bad values first: a range check that errored on text says less.
    failures = sorted(report.failures, key=lambda failure: not failure[1]["sample"])
    table, first = failures[0]
    column = f" column {first['column']!r}" if first["column"] else ""
    if first["error"]:
        detail = first["error"]
    elif first["sample"]:
        detail = f"{first['unexpected_count']} unexpected value(s), e.g. {first['sample']}"
    else:
        detail = f"observed {first['observed']!r}, expected {first['kwargs']}"
    more = (
        f" (+{len(failures) - 1} more failed, see {html_path})"
        if len(failures) > 1
        else (f" (see {html_path})")
    )
    raise UserError(f"validation failed: {table}{column}: {first['expectation']}: {detail}{more}")
