"""validate: class counts, image sizes and modes, unreadable files, duplicates by hash.
Unreadable files are counted and skipped later, not fatal (unless most files are)."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe

from stages.core.context import StepContext
from stages.core.validation import TableCheck, publish_report, run_checks
from stages.simpsons.params import ValidateParams
from stages.simpsons.schema import ImageIndex, read_test_labels, scan

MODES = ["RGB", "L", "RGBA", "P", "CMYK"]


def check(index: ImageIndex, params: ValidateParams) -> list[TableCheck]:
    frame = index.frame
    readable = frame[frame["readable"]]
    counts = readable[readable["split"] == "train"]["label"].value_counts()
    large_enough = sorted(counts[counts >= params.min_images_per_class].index)
    return [
        TableCheck(
            "images",
            frame,
            [
                gxe.ExpectColumnValuesToBeInSet(column="readable", value_set=[True], mostly=0.9),
            ],
        ),
        TableCheck(
            "readable images",
            readable,
            [
                gxe.ExpectColumnValuesToBeBetween(
                    column="width", min_value=params.min_side, max_value=params.max_side
                ),
                gxe.ExpectColumnValuesToBeBetween(
                    column="height", min_value=params.min_side, max_value=params.max_side
                ),
                gxe.ExpectColumnValuesToBeInSet(column="mode", value_set=MODES),
            ],
        ),
        TableCheck(
            "train labels",
            readable[readable["split"] == "train"],
            [
                gxe.ExpectColumnValuesToBeInSet(column="label", value_set=large_enough),
            ],
        ),
    ]


def facts(index: ImageIndex, has_test_labels: bool) -> dict[str, Any]:
    frame = index.frame
    train = frame[frame["split"] == "train"]
    counts = train[train["readable"]]["label"].value_counts()
    unreadable = frame[~frame["readable"]]
    return {
        "class folder": str(index.class_root),
        "classes": len(counts),
        "train images (readable)": int(counts.sum()),
        "largest class": f"{counts.index[0]} ({counts.iloc[0]})",
        "smallest classes": ", ".join(f"{k} ({v})" for k, v in counts.tail(3).items()),
        "imbalance (largest / smallest)": round(float(counts.iloc[0] / counts.iloc[-1]), 1),
        "test images": int((frame["split"] == "test").sum()),
        "test labels": "held out (test_labels.csv)" if has_test_labels else "none",
        "unreadable files (skipped)": len(unreadable),
        "unreadable examples": ", ".join(p.rsplit("/", 1)[-1] for p in unreadable["path"][:5]),
        "duplicate files (same bytes)": int(frame["sha1"].duplicated().sum()),
        "width min / median / max": "{} / {} / {}".format(
            *frame.loc[frame["readable"], "width"].quantile([0, 0.5, 1]).astype(int)
        ),
        "height min / median / max": "{} / {} / {}".format(
            *frame.loc[frame["readable"], "height"].quantile([0, 0.5, 1]).astype(int)
        ),
        "modes": ", ".join(
            f"{k} ({v})" for k, v in frame.loc[frame["readable"], "mode"].value_counts().items()
        ),
    }


def run(ctx: StepContext) -> None:
    index = scan(ctx.paths.raw)
    has_labels = read_test_labels(ctx.paths.raw) is not None
    report = run_checks(ctx.task, check(index, ctx.task_params.validate_), facts(index, has_labels))
    publish_report(report, ctx.paths.validation_json, ctx.paths.validation_html)
