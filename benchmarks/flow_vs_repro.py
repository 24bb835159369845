"""Wall time of the whole-graph flow (`python -m flows run --parallelism N`, Prefect's temporary
server included) against a sequential `dvc repro`, each from the same cold start: a fresh clone
with no outputs, no MLflow store, no caches.

    .venv/bin/python benchmarks/flow_vs_repro.py [--parallelism 2 4] [--tasks churn simpsons]
        [--flow-only] [--logs DIR]

Each run's headlines are recorded beside its seconds (a faster run must not score worse); with
`--logs`, each run's output is kept there (`dvc_repro.log`, `flow_parallelism_N.log`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import yaml
from common import VENV_BIN, fresh_clone, headlines, project_env, timed


def keep_tasks(clone: Path, tasks: list[str] | None) -> None:
    if not tasks:
        return
    path = clone / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for task in set(params["tasks"]) - set(tasks):
        params.pop(task)
    params["tasks"] = tasks
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallelism", type=int, nargs="+", default=[os.cpu_count() or 1])
    parser.add_argument("--tasks", nargs="+", help="only these tasks (default: params.yaml's)")
    parser.add_argument("--keep", action="store_true", help="keep the clones for inspection")
    parser.add_argument("--flow-only", action="store_true", help="no `dvc repro` run")
    parser.add_argument("--logs", type=Path, help="a folder for each run's output")
    args = parser.parse_args()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)

    def log(name: str) -> Path | None:
        return args.logs / f"{name}.log" if args.logs else None

    env = project_env()
    workdir = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "tasks": args.tasks or "all",
        "headlines": {},
    }
    try:
        if not args.flow_only:
            clone = fresh_clone(workdir / "repro")
            keep_tasks(clone, args.tasks)
            command = [str(VENV_BIN / "dvc"), "repro"]
            results["dvc_repro_s"] = timed(command, clone, env, log("dvc_repro"))
            results["headlines"]["dvc_repro"] = headlines(clone)
        for n in args.parallelism:
            name = f"flow_parallelism_{n}"
            clone = fresh_clone(workdir / f"flow-{n}")
            keep_tasks(clone, args.tasks)
            flow_env = {**env, "PREFECT_HOME": str(workdir / f"prefect-{n}")}
            command = [sys.executable, "-m", "flows", "run", "--parallelism", str(n)]
            results[f"{name}_s"] = timed(command, clone, flow_env, log(name))
            results["headlines"][name] = headlines(clone)
            if "dvc_repro_s" in results:
                speedup = results["dvc_repro_s"] / results[f"{name}_s"]
                results[f"speedup_parallelism_{n}"] = round(speedup, 2)
        print(json.dumps(results, indent=2))
    finally:
        if args.keep:
            print(f"clones kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
