"""`python -m flows run [TASK]` runs the pipeline flow in this process (with no Prefect server
configured, Prefect starts a temporary one); `python -m flows setup` creates the work pools, the
GPU limits and the crash detection of dead hosts on the configured server."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m flows", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run one task's stages, or the whole graph")
    run.add_argument("task", nargs="?", help="a task of params.yaml (default: every stage)")
    run.add_argument("--parallelism", type=int, help="stages at once (default: cores)")
    run.add_argument("--force", action="store_true", help="re-run up-to-date stages too")
    run.add_argument("--retries", type=int, default=2, help="retries of a failed stage")
    run.add_argument("--retry-delay", type=float, default=10.0, help="seconds, doubling")
    run.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    setup = sub.add_parser("setup", help="create the work pools and one limit per GPU")
    setup.add_argument("--gpus", type=int, help="GPUs on this host (default: detected)")
    setup.add_argument(
        "--crash-after",
        type=int,
        default=600,
        help="seconds without a heartbeat before a flow run counts as crashed (default 600; "
        "flow runs beat every PREFECT_FLOWS_HEARTBEAT_FREQUENCY seconds, default 180)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from flows.resources import (
        accelerator_limit,
        detected_gpus,
        ensure_crash_detection,
        ensure_limits,
        ensure_work_pools,
        local_gpu_limits,
    )

    if args.command == "setup":
        pools = ensure_work_pools()
        limits = local_gpu_limits(args.gpus if args.gpus is not None else detected_gpus())
        created = ensure_limits(limits)
        crash = ensure_crash_detection(args.crash_after)
        print(f"work pools: {', '.join(pools) or 'already there'}")
        print(f"GPU limits (1 slot each): {', '.join(limits)}; new: {', '.join(created) or 'none'}")
        print(
            f"crash detection: {'created' if crash else 'already there'} "
            f"(no heartbeat for {args.crash_after} s)"
        )
        return 0

    from flows.pipeline import full_pipeline, task_pipeline

    ensure_limits([accelerator_limit()])  # a laptop has no setup step
    options = dict(
        parallelism=args.parallelism,
        force=args.force,
        retries=args.retries,
        retry_delay=args.retry_delay,
        root=str(args.root.resolve()),
    )
    try:
        if args.task:
            outcome = task_pipeline(task=args.task, **options)
        else:
            outcome = full_pipeline(**options)
    except Exception as exc:  # the flow has logged the details; one line for the shell
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"completed {len(outcome['completed'])} stages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
