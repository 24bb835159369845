"""validate: the Great Expectations suite of the churn files; a failure stops the pipeline."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe

from stages.churn.params import ValidateParams
from stages.churn.schema import CATEGORIES, TARGET, RawChurn, read_raw
from stages.core.context import StepContext
from stages.core.validation import TableCheck, publish_report, run_checks

INTEGER_PATTERN = r"^\d+$"
NUMBER_PATTERN = r"^-?\d+(?:\.\d+)?$"
# A number, or blank for a new client (the competition's quirk).
TOTAL_SPENT_PATTERN = r"^\s*$|^\d+(?:\.\d+)?$"


def expectations(params: ValidateParams, labelled: bool) -> list[Any]:
    # Types first: a value that is not a number is named before any range check trips on it.
    suite: list[Any] = [
        gxe.ExpectColumnValuesToNotBeNull(column="ClientPeriod"),
        gxe.ExpectColumnValuesToMatchRegex(column="ClientPeriod", regex=INTEGER_PATTERN),
        gxe.ExpectColumnValuesToBeBetween(
            column="ClientPeriod", min_value=0, max_value=params.max_client_period
        ),
        gxe.ExpectColumnValuesToNotBeNull(column="MonthlySpending"),
        gxe.ExpectColumnValuesToMatchRegex(column="MonthlySpending", regex=NUMBER_PATTERN),
        gxe.ExpectColumnValuesToBeBetween(
            column="MonthlySpending", min_value=0, max_value=params.max_monthly_spending
        ),
        gxe.ExpectColumnValuesToMatchRegex(column="TotalSpent", regex=TOTAL_SPENT_PATTERN),
    ]
    for column, values in CATEGORIES.items():
        suite.append(gxe.ExpectColumnValuesToNotBeNull(column=column))
        suite.append(gxe.ExpectColumnValuesToBeInSet(column=column, value_set=values))
    if labelled:
        low, high = params.target_rate
        suite += [
            gxe.ExpectColumnValuesToBeInSet(column=TARGET, value_set=[0, 1]),
            gxe.ExpectColumnMeanToBeBetween(column=TARGET, min_value=low, max_value=high),
        ]
    return suite


def facts(raw: RawChurn) -> dict[str, Any]:
    """What the report states but does not fail on: the known quirks of the real files."""
    found = {
        "layout": raw.layout,
        "files": ", ".join(sorted(p.name for p in raw.files.values())),
        "train rows": len(raw.train),
        "train duplicate rows": int(raw.train.duplicated().sum()),
        "train blank TotalSpent": int(raw.train["TotalSpent"].str.strip().eq("").sum()),
        "train churn rate": round(float(raw.train[TARGET].astype(float).mean()), 4)
        if raw.train[TARGET].map(lambda v: v in (0, 1)).all()
        else "not 0/1",
    }
    if raw.test is not None:
        found["test rows"] = len(raw.test)
        found["test blank TotalSpent"] = int(raw.test["TotalSpent"].str.strip().eq("").sum())
        found["test labels"] = (
            "held out (test_labels.csv)" if raw.test_labels is not None else "none"
        )
    return found


def check(raw: RawChurn, params: ValidateParams) -> list[TableCheck]:
    checks = [TableCheck(raw.files["train"].name, raw.train, expectations(params, labelled=True))]
    if raw.test is not None:
        checks.append(TableCheck(raw.files["test"].name, raw.test, expectations(params, False)))
    return checks


def run(ctx: StepContext) -> None:
    raw = read_raw(ctx.paths.raw)
    report = run_checks(ctx.task, check(raw, ctx.task_params.validate_), facts(raw))
    publish_report(report, ctx.paths.validation_json, ctx.paths.validation_html)
