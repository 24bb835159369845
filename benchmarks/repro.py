"""Wall time of a cold `dvc repro` of one task in a fresh clone, then of a no-op repro and
`dvc status` — the numbers quoted in issue notes. Peak memory is the largest child process.

    .venv/bin/python benchmarks/repro.py [--task churn] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from common import VENV_BIN, fresh_clone, project_env, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="churn")
    parser.add_argument("--keep", action="store_true", help="keep the clone for inspection")
    args = parser.parse_args()

    env = project_env()
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    clone = fresh_clone(workdir / "clone")
    dvc = str(VENV_BIN / "dvc")
    target = f"report@{args.task}"
    results = {
        "task": args.task,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "cold_repro_s": timed([dvc, "repro", target], clone, env),
        "noop_repro_s": timed([dvc, "repro", target], clone, env),
        "status_s": timed([dvc, "status"], clone, env),
        "peak_child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }
    metrics = clone / "reports" / args.task / "metrics.json"
    results["headline"] = json.loads(metrics.read_text()).get("headline")
    print(json.dumps(results, indent=2))
    if args.keep:
        print(f"clone kept at {clone}", file=sys.stderr)
    else:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
