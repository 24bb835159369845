"""download: data/raw/detection in the hard-hat layout (images/ + annotations/, Pascal VOC XML)
from the builtin generator, or a url / local path holding the Kaggle hard-hat archive or a VOC
devkit (folder, zip or tar)."""

from __future__ import annotations

from stages.core.context import StepContext
from stages.core.sources import fetch_task_source
from stages.detection.generate import GeneratorSpec, write_hardhat


def run(ctx: StepContext) -> None:
    source = ctx.task_params.source
    spec = GeneratorSpec(images=source.images, size=source.size, seed=ctx.common.seed)
    fetch_task_source(
        source,
        ctx.paths,
        builtin=lambda dest: write_hardhat(dest, spec),
    )
