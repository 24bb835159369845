"""Wall time of the whole-graph flow (`python -m flows run --parallelism N`, Prefect's temporary
server included) against a sequential `dvc repro`, each from the same cold start: a fresh clone
with no outputs, no MLflow store, no caches.

    .venv/bin/python benchmarks/flow_vs_repro.py [--parallelism 2 4] [--tasks churn simpsons]
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
from common import VENV_BIN, fresh_clone, project_env, timed


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
    args = parser.parse_args()

    env = project_env()
    workdir = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    results: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "tasks": args.tasks or "all",
    }
    try:
        clone = fresh_clone(workdir / "repro")
        keep_tasks(clone, args.tasks)
        results["dvc_repro_s"] = timed([str(VENV_BIN / "dvc"), "repro"], clone, env)
        for n in args.parallelism:
            clone = fresh_clone(workdir / f"flow-{n}")
            keep_tasks(clone, args.tasks)
            flow_env = {**env, "PREFECT_HOME": str(workdir / f"prefect-{n}")}
            command = [sys.executable, "-m", "flows", "run", "--parallelism", str(n)]
            seconds = timed(command, clone, flow_env)
            results[f"flow_parallelism_{n}_s"] = seconds
            results[f"speedup_parallelism_{n}"] = round(results["dvc_repro_s"] / seconds, 2)
        print(json.dumps(results, indent=2))
    finally:
        if args.keep:
            print(f"clones kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
