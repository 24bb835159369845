"""benchmarks/gpu.py end to end on the CPU at its tiny sizes: every torch task trains through
the project's Lightning code and in a bare loop, and both files come out."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TASKS = ("simpsons", "segmentation", "detection", "nmt", "timeseries")


def test_tiny_run_writes_a_record_and_a_table_row_per_task(tmp_path):
    # CPU only, one torch thread: a check of the script, quick even on a busy 2-core runner
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "benchmarks/gpu.py", "--tiny", "--device", "cpu"]
    command += ["--tasks", ",".join(TASKS), "--out", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]

    records = json.loads((tmp_path / "gpu_benchmark.json").read_text())
    assert [r["task"] for r in records] == list(TASKS)
    for r in records:
        for key in ("pipeline_items_per_s", "bare_items_per_s", "loader_items_per_s"):
            assert math.isfinite(r[key]) and r[key] > 0, (r["task"], key, r[key])
        assert r["ratio"] == pytest.approx(
            r["pipeline_items_per_s"] / r["bare_items_per_s"], rel=0.01, abs=0.002
        )
        assert (r["device"], r["amp"]) == ("cpu", "none")
        assert r["channels_last"] == (r["task"] in {"simpsons", "segmentation", "detection"})
        assert r["peak_memory_mib"] is None  # no GPU memory to speak of
        assert r["torch"] and r["device_name"]

    table = (tmp_path / "gpu_benchmark.md").read_text()
    for task in TASKS:
        assert f"| {task} |" in table
    assert table.strip() in done.stdout  # and printed
