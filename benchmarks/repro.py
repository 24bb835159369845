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
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="churn")
    parser.add_argument("--keep", action="store_true", help="keep the clone for inspection")
    args = parser.parse_args()

    venv_bin = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    workdir = Path(tempfile.mkdtemp(prefix="bench-"))
    clone = workdir / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    dvc = str(venv_bin / "dvc")
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
