"""validate: every image has its annotation and every annotation its image, annotations state the
image's real size, every object's class is one of `validate.classes`, and few boxes are
degenerate. Boxes reaching outside the image are clipped and counted. A failure names the file."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
import pandas as pd

from stages.core.context import StepContext
from stages.core.validation import TableCheck, publish_report, run_checks
from stages.detection.params import ValidateParams
from stages.detection.schema import scan, usable


def check(images: pd.DataFrame, objects: pd.DataFrame, params: ValidateParams) -> list[TableCheck]:
    """Each problem is a column holding the file's name where it occurs."""
    return [
        TableCheck(
            "images",
            images,
            [
                gxe.ExpectColumnValuesToBeNull(column="missing_image"),
                gxe.ExpectColumnValuesToBeNull(column="missing_annotation"),
                gxe.ExpectColumnValuesToBeNull(column="unreadable"),
                gxe.ExpectColumnValuesToBeNull(column="size_mismatch"),
            ],
        ),
        TableCheck(
            "usable_images",
            usable(images),
            [gxe.ExpectTableRowCountToBeBetween(min_value=params.min_images)],
        ),
        TableCheck(
            "objects",
            objects,
            [
                gxe.ExpectColumnValuesToBeNull(column="unknown_class"),
                gxe.ExpectColumnValuesToBeNull(
                    column="degenerate", mostly=1.0 - params.max_degenerate_share
                ),
            ],
        ),
    ]


def facts(images: pd.DataFrame, objects: pd.DataFrame, classes: list[str]) -> dict[str, Any]:
    ok = usable(images)
    counts = objects["label"].value_counts()
    sizes = (
        " / ".join(
            f"{int(w)}x{int(h)}"
            for w, h in zip(
                ok["width"].quantile([0, 0.5, 1], interpolation="nearest"),
                ok["height"].quantile([0, 0.5, 1], interpolation="nearest"),
                strict=True,
            )
        )
        if len(ok)
        else "—"
    )
    return {
        "layout": ", ".join(sorted(images["layout"].dropna().unique())) or "—",
        "annotation files": int(images["annotation"].notna().sum()),
        "usable images": len(ok),
        "images without objects": int((ok["objects"] == 0).sum()),
        "objects per class": ", ".join(f"{c} {int(counts.get(c, 0))}" for c in classes),
        "classes without objects": ", ".join(c for c in classes if c not in counts) or "none",
        "difficult objects (kept, not scored)": int(objects["difficult"].sum()),
        "boxes clipped to the image": int(objects["clipped"].sum()),
        "degenerate boxes (dropped)": int(objects["degenerate"].notna().sum()),
        "image size min / median / max": sizes,
    }


def run(ctx: StepContext) -> None:
    params: ValidateParams = ctx.task_params.validate_
    images, objects = scan(ctx.paths.raw, params.classes)
    checks = check(images, objects, params)
    report = run_checks(ctx.task, checks, facts(images, objects, params.classes))
    publish_report(report, ctx.paths.validation_json, ctx.paths.validation_html)
