"""download: data/raw/simpsons in the Kaggle journey-springfield layout, from the builtin
generator, a url or a local path."""

from __future__ import annotations

from stages.core.context import StepContext
from stages.core.sources import fetch_task_source
from stages.simpsons.generate import GeneratorSpec, write_simpsons


def run(ctx: StepContext) -> None:
    source = ctx.task_params.source
    spec = GeneratorSpec(
        classes=source.classes,
        images=source.images,
        test_images=source.test_images,
        size=source.size,
        min_per_class=source.min_per_class,
        seed=ctx.common.seed,
    )
    fetch_task_source(
        source,
        ctx.paths,
        builtin=lambda dest: write_simpsons(dest, spec),
    )
