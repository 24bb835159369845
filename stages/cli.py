"""`python -m stages <step> <task>` — the one entry point DVC calls.

Expected failures print one line: a UserError exits 2 (fix the input; retrying will not help),
a TransientError exits 75 (retry later). Anything else is a bug and shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
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

STEPS = ("download", "validate", "preprocess", "train", "evaluate", "report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    sub = parser.add_subparsers(dest="command", required=True)
    for step in STEPS:
        p = sub.add_parser(step, help=f"run the {step} step of a task")
        p.add_argument("task")
    sub.add_parser("summary", help="write reports/index.html and reports/summary.json")
    sub.add_parser("check-params", help=f"validate {PARAMS_FILE} and exit")
    return parser


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
    step = importlib.import_module(f"stages.{args.task}.{args.command}")
    step.run(StepContext(task=args.task, step=args.command, root=root, params=params))


def main(argv: list[str] | None = None) -> int:
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
