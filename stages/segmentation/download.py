"""download: data/raw/segmentation in the PH2 layout, from the builtin generator, a url or a
local path (folder, zip, tar or rar)."""

from __future__ import annotations

from stages.core.context import StepContext
from stages.core.sources import fetch_task_source
from stages.segmentation.generate import GeneratorSpec, write_ph2


def run(ctx: StepContext) -> None:
    source = ctx.task_params.source
    spec = GeneratorSpec(
        images=source.images, width=source.width, height=source.height, seed=ctx.common.seed
    )
    fetch_task_source(
        source,
        ctx.paths,
        builtin=lambda dest: write_ph2(dest, spec),
    )
