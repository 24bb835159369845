"""Wall time of every stage of a cold `dvc repro` (a fresh clone: no outputs, no MLflow store, no
caches), read from when DVC starts each stage, and each task's headline at the end. With
`--before` (an earlier run's JSON) the table gets before / after columns — the issue-note table.

    .venv/bin/python benchmarks/stage_times.py [--out stage_times.json] [--before old.json]

DVC's output goes beside the JSON (stage_times.log), a Markdown table too (stage_times.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from common import VENV_BIN, fresh_clone, headlines, project_env

STAGE_START = re.compile(r"Running stage '([^']+)'")


def timed_stages(clone: Path, env: dict[str, str], log: Path) -> tuple[dict[str, float], float]:
    """Seconds per stage: from its "Running stage" line to the next one (or to DVC's exit);
    DVC's output (the stages' own per-model timings included) goes to `log`."""
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    current, since = None, started
    with (
        subprocess.Popen(
            [str(VENV_BIN / "dvc"), "repro"],
            cwd=clone,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process,
        log.open("w") as output,
    ):
        for line in process.stdout:
            output.write(line)
            match = STAGE_START.search(line)
            if match:
                now = time.perf_counter()
                if current:
                    seconds[current] = round(now - since, 1)
                current, since = match.group(1), now
        if process.wait():
            raise SystemExit(f"dvc repro failed with exit code {process.returncode}")
    ended = time.perf_counter()
    if current:
        seconds[current] = round(ended - since, 1)
    return seconds, round(ended - started, 1)


def markdown(after: dict, before: dict | None) -> str:
    stages = list(after["stages"])
    if before:
        stages += [name for name in before["stages"] if name not in after["stages"]]
        rows = ["| stage | before (s) | after (s) |", "|---|---:|---:|"]
        for name in stages:
            old, new = before["stages"].get(name, "-"), after["stages"].get(name, "-")
            rows.append(f"| {name} | {old} | {new} |")
        rows.append(f"| **total** | **{before['total_s']}** | **{after['total_s']}** |")
        for task, value in after["headlines"].items():
            rows.append(f"| {task} headline | {before['headlines'].get(task, '-')} | {value} |")
    else:
        rows = ["| stage | seconds |", "|---|---:|"]
        rows += [f"| {name} | {after['stages'][name]} |" for name in stages]
        rows.append(f"| **total** | **{after['total_s']}** |")
        rows += [f"| {task} headline | {value} |" for task, value in after["headlines"].items()]
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("stage_times.json"))
    parser.add_argument("--before", type=Path, help="an earlier run's JSON, for before / after")
    parser.add_argument("--keep", action="store_true", help="keep the clone for inspection")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        clone = fresh_clone(workdir / "clone")
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip()
        # unbuffered: DVC's "Running stage" lines must arrive when written to time the stages
        env = {**project_env(), "PYTHONUNBUFFERED": "1"}
        stages, total = timed_stages(clone, env, args.out.with_suffix(".log"))
        results = {
            "commit": commit,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "total_s": total,
            "stages": stages,
            "headlines": headlines(clone),
        }
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    before = json.loads(args.before.read_text()) if args.before else None
    table = markdown(results, before)
    args.out.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
