"""validate: every case has its image and mask, both readable and of the same size, masks are
binary (0/255) and cover a plausible share of the image. A failure names the case folder."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

from stages.core.context import StepContext
from stages.core.validation import TableCheck, publish_report, run_checks
from stages.segmentation.params import ValidateParams
from stages.segmentation.schema import find_cases_root, scan, usable


def check(index: pd.DataFrame, params: ValidateParams) -> list[TableCheck]:
    """Each problem is a column holding the case name where it occurs, so a failure names the
    folders to look at."""
    low, high = params.coverage
    pairs = usable(index)
    flagged = pairs.assign(
        implausible_coverage=pairs["case"].where(~pairs["coverage"].between(low, high)),
        non_binary_mask=pairs["case"].where(pairs["grey_share"] > params.max_grey_share),
    )
    return [
        TableCheck(
            "cases",
            index,
            [
                gxe.ExpectColumnValuesToBeNull(column="missing_mask"),
                gxe.ExpectColumnValuesToBeNull(column="unreadable"),
                gxe.ExpectColumnValuesToBeNull(column="size_mismatch"),
            ],
        ),
        TableCheck(
            "masks",
            flagged,
            [
                gxe.ExpectTableRowCountToBeBetween(min_value=params.min_pairs),
                gxe.ExpectColumnValuesToBeNull(column="implausible_coverage"),
                gxe.ExpectColumnValuesToBeNull(column="non_binary_mask"),
            ],
        ),
    ]


def facts(index: pd.DataFrame, cases_root: str) -> dict[str, Any]:
    ok = usable(index)
    coverage = ok["coverage"]
    return {
        "case folder": cases_root,
        "cases": len(index),
        "usable pairs": len(ok),
        "missing image or mask": ", ".join(index["missing_mask"].dropna()) or "none",
        "unreadable": ", ".join(index["unreadable"].dropna()) or "none",
        "image size min / median / max": " / ".join(
            f"{int(w)}x{int(h)}"
            for w, h in zip(
                ok["width"].quantile([0, 0.5, 1]), ok["height"].quantile([0, 0.5, 1]), strict=True
            )
        )
        if len(ok)
        else "—",
        "mask coverage min / mean / max": f"{coverage.min():.3f} / {coverage.mean():.3f} / "
        f"{coverage.max():.3f}"
        if len(ok)
        else "—",
        "masks with grey pixels (resampled?)": int((ok["grey_share"] > 0).sum()),
    }


def run(ctx: StepContext) -> None:
    params: ValidateParams = ctx.task_params.validate_
    index = scan(ctx.paths.raw)
    root = find_cases_root(ctx.paths.raw).relative_to(ctx.paths.raw)
    report = run_checks(ctx.task, check(index, params), facts(index, str(root)))
    publish_report(report, ctx.paths.validation_json, ctx.paths.validation_html)
