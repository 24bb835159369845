"""`python -m stages <step> <task>` — the one entry point DVC calls.

Expected failures print one line: a UserError exits 2 (fix the input; retrying will not help),
a TransientError exits 75 (retry later). Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from stages.core.context import StepContext
from stages.core.errors import (
    TRANSIENT_ERROR_EXIT,
    USER_ERROR_EXIT,
    TransientError,
    UserError,
)
from stages.core.params import PARAMS_FILE, load_params
from stages.core.processes import end_with_parent

STEPS = ("download", "validate", "preprocess", "train", "evaluate", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    sub = parser.add_subparsers(dest="command", required=True)
    for step in STEPS:
        p = sub.add_parser(step, help=f"run the {step} step of a task")
        p.add_argument("task")
    p = sub.add_parser(
        "source", help="write what a task's source and code hold now (data/sources/, data/code/)"
    )
    p.add_argument("task")
    sub.add_parser("summary", help="write reports/index.html and reports/summary.json")
    sub.add_parser("check-params", help=f"validate {PARAMS_FILE} and exit")
    p = sub.add_parser("registry", help="every registered version of a task's model")
    p.add_argument("task")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("compare", help="score two versions on the current test split")
    p.add_argument("task")
    p.add_argument("a", nargs="?", default="champion", help="version or alias (champion)")
    p.add_argument("b", nargs="?", default="challenger", help="version or alias (challenger)")
    p = sub.add_parser("promote", help="make a version the champion by hand")
    p.add_argument("task")
    p.add_argument("version", help="version number or alias")
    p.add_argument("--reason", required=True)
    p = sub.add_parser("rollback", help="the champion back to the previous champion")
    p.add_argument("task")
    p.add_argument("--reason", default="rolled back by hand")
    return parser


def registry_command(args: argparse.Namespace, ctx: StepContext) -> None:
    from stages.core import registry, tracking
    from stages.core.fsio import dump_json

    tracking.configure(ctx.root)
    if args.command == "registry":
        rows = registry.versions(ctx.task)
        print(dump_json(rows) if args.json else registry.versions_text(ctx.task, rows))
        return
    if args.command == "compare":
        from stages.core.compare import compare_versions

        written = compare_versions(ctx, args.a, args.b)
        print(f"wrote {written.relative_to(ctx.root)} (+ .json)")
        return
    if args.command == "promote":
        entry = registry.promote(ctx.task, args.version, args.reason)
    else:
        entry = registry.rollback(ctx.task, args.reason)
    from stages.core.summary import write_summary

    write_summary(ctx.root, ctx.params.tasks)  # the index shows the champion of now
    print(
        f"{ctx.task}: champion → v{entry['version']} (was v{entry['from']}), "
        f"by {entry['by']}: {entry['reason']}"
    )


def run(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    root = args.root.resolve()
    params = load_params(root / PARAMS_FILE)
    if args.command == "check-params":
        print(f"{PARAMS_FILE}: ok ({', '.join(params.tasks)})")
        return
    if args.command == "summary":
        from stages.core.summary import write_summary

        write_summary(root, params.tasks)
        return
    if args.task not in params.tasks:
        raise UserError(
            f"{PARAMS_FILE}: tasks: {args.task!r} is not listed (listed: {', '.join(params.tasks)})"
        )
    ctx = StepContext(task=args.task, step=args.command, root=root, params=params)
    if args.command == "source":
        from stages.core.code_deps import write_manifests
        from stages.core.sources import write_source_check

        write_source_check(ctx.task_params.source, ctx.paths.downloads, ctx.paths.source_check)
        write_manifests(root, ctx.task)
        return
    if args.command in ("registry", "compare", "promote", "rollback"):
        registry_command(args, ctx)
        return
    step = importlib.import_module(f"stages.{args.task}.{args.command}")
    step.run(ctx)


def main(argv: list[str] | None = None) -> int:
    if os.environ.get("DVC_STAGE"):  # run by DVC: stop when DVC is stopped
        end_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "mlflow", "urllib3", "matplotlib", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        run(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    except TransientError as exc:
        print(f"error: {exc} (temporary: try again)", file=sys.stderr)
        return TRANSIENT_ERROR_EXIT
    return 0
