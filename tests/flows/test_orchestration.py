"""The flows against a real Prefect server: GPU slots, retries, and a deployment run by a real
worker on a real task graph."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from flows.resources import accelerator_limit
from tests.conftest import SMALL_CHURN, copy_project, dvc, set_tasks
from tests.flows.conftest import BIN, start, stop

pytestmark = pytest.mark.slow

RECORD = """
import json, pathlib, sys, time
name, seconds = sys.argv[1], float(sys.argv[2])
start = time.time()
time.sleep(seconds)
out = pathlib.Path("intervals")
out.mkdir(exist_ok=True)
(out / name).write_text(json.dumps({"start": start, "end": time.time()}))
for output in sys.argv[3:]:
    pathlib.Path(output).write_text("done")
"""

ATTEMPT = """
import pathlib, sys
name = sys.argv[1]
log = pathlib.Path("attempts") / name
log.parent.mkdir(exist_ok=True)
attempt = len(log.read_text().splitlines()) + 1 if log.exists() else 1
log.write_text("attempt\\n" * attempt)
if name == "download@flaky" and attempt == 1:
    sys.exit("the connection was reset")
if name == "download@broken":
    print("error: params.yaml: broken.source.kind: 'ftp' is not one of builtin, url, path",
          file=sys.stderr)
    sys.exit(2)
pathlib.Path("out", name.replace("@", "-")).write_text("done")
"""


def synthetic_repo(root: Path, stages: dict, scripts: dict[str, str]) -> Path:
    """A DVC repository whose stages are small scripts: the flow cannot tell it from ours."""
    root.mkdir(parents=True)
    (root / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (root / "out").mkdir()
    for name, text in scripts.items():
        (root / name).write_text(text)
    dvc(root, "init", "--no-scm", "-q")
    return root


def run_flow(server, root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flows", "run", *args],
        cwd=root,
        env=server.env(**env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def latest_flow_run(server) -> dict:
    return server.post("/flow_runs/filter", {"sort": "START_TIME_DESC", "limit": 1})[0]


@pytest.mark.parametrize("slot", ["on", "off"])
def test_two_gpu_stages_never_overlap_while_a_cpu_stage_runs_beside_them(
    prefect_server, tmp_path, slot
):
    """`on`: a GPU host (what `auto` does where torch sees a GPU); `off`: a CPU-only host, where
    the accelerated stages are CPU work sharing the cores like any other."""
    seconds = 4
    root = synthetic_repo(
        tmp_path / "repo",
        {
            # train@simpsons and train@timeseries are accelerated steps (their packages say so)
            "train": {
                "foreach": ["simpsons", "timeseries"],
                "do": {"cmd": f"python record.py train@${{item}} {seconds}"},
            },
            "download": {
                "foreach": ["churn"],
                "do": {"cmd": f"python record.py download@${{item}} {seconds}"},
            },
        },
        {"record.py": RECORD},
    )
    result = run_flow(prefect_server, root, "--parallelism", "3", ML_PIPELINES_GPU_SLOT=slot)
    assert result.returncode == 0, result.stdout + result.stderr

    spans = {p.name: json.loads(p.read_text()) for p in (root / "intervals").iterdir()}
    assert set(spans) == {"train@simpsons", "train@timeseries", "download@churn"}
    first, second = sorted(
        [spans["train@simpsons"], spans["train@timeseries"]], key=lambda s: s["start"]
    )
    if slot == "off":
        assert second["start"] < first["end"], "CPU-only: the trainings waited for each other"
        return
    assert first["end"] <= second["start"], "two GPU stages ran at the same time"
    cpu = spans["download@churn"]
    assert cpu["start"] < first["end"] and first["start"] < cpu["end"], "the CPU stage waited"

    limit = prefect_server.get(f"/v2/concurrency_limits/{accelerator_limit()}")
    assert limit["limit"] == 1 and limit["active_slots"] == 0
    assert latest_flow_run(prefect_server)["state_type"] == "COMPLETED"


def test_a_stage_starts_when_its_upstream_completed_not_the_slowest_of_its_level(
    prefect_server, tmp_path
):
    slow = 10
    root = synthetic_repo(
        tmp_path / "repo",
        {
            "download": {
                "foreach": {"quick": 1, "slow": slow},
                "do": {
                    "cmd": "python record.py download@${key} ${item} out/download-${key}",
                    "outs": ["out/download-${key}"],
                },
            },
            "validate": {
                "foreach": ["quick"],
                "do": {
                    "cmd": "python record.py validate@${item} 1 out/validate-${item}",
                    "deps": ["out/download-${item}"],
                    "outs": ["out/validate-${item}"],
                },
            },
        },
        {"record.py": RECORD},
    )
    result = run_flow(prefect_server, root, "--parallelism", "2")
    assert result.returncode == 0, result.stdout + result.stderr

    spans = {p.name: json.loads(p.read_text()) for p in (root / "intervals").iterdir()}
    assert spans["download@quick"]["end"] <= spans["validate@quick"]["start"]
    assert spans["validate@quick"]["end"] < spans["download@slow"]["end"], (
        "validate@quick waited for download@slow, which it does not depend on"
    )


def test_a_failed_stage_is_retried_but_a_user_error_fails_once(prefect_server, tmp_path):
    stage = {"foreach": ["flaky", "broken"]}
    root = synthetic_repo(
        tmp_path / "repo",
        {
            "download": {
                **stage,
                "do": {
                    "cmd": "python attempt.py download@${item}",
                    "outs": ["out/download-${item}"],
                },
            },
            "validate": {
                **stage,
                "do": {
                    "cmd": "python attempt.py validate@${item}",
                    "deps": ["out/download-${item}"],
                    "outs": ["out/validate-${item}"],
                },
            },
        },
        {"attempt.py": ATTEMPT},
    )
    result = run_flow(prefect_server, root, "--retries", "2", "--retry-delay", "0.5")

    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: download@broken: params.yaml: broken.source.kind: 'ftp' is not one of builtin, "
        "url, path (user error, not retried); skipped downstream: validate@broken"
    )
    attempts = {p.name: len(p.read_text().splitlines()) for p in (root / "attempts").iterdir()}
    assert attempts == {"download@flaky": 2, "download@broken": 1, "validate@flaky": 1}
    assert (root / "out" / "validate-flaky").is_file()

    flow_run = latest_flow_run(prefect_server)
    assert flow_run["state_type"] == "FAILED"
    task_runs = prefect_server.post(
        "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run["id"]]}}}
    )
    by_name = {run["name"]: run for run in task_runs}
    assert by_name["download@flaky"]["run_count"] == 2
    assert by_name["download@flaky"]["state_type"] == "COMPLETED"
    assert by_name["download@broken"]["run_count"] == 1
    assert by_name["download@broken"]["state_type"] == "FAILED"
    assert "validate@broken" not in by_name


MAKE = """
import pathlib, sys, yaml
value = yaml.safe_load(open("params.yaml"))["value"]
if value == "bad":
    sys.exit("cannot make a bad value")
pathlib.Path("out/made").write_text(str(value))
"""


def test_a_failed_stage_gets_its_last_good_outputs_back(prefect_server, tmp_path):
    root = synthetic_repo(
        tmp_path / "repo",
        {"make": {"cmd": "python make.py", "params": ["value"], "outs": ["out/made"]}},
        {"make.py": MAKE, "params.yaml": "value: 1\n"},
    )
    assert run_flow(prefect_server, root).returncode == 0
    (root / "params.yaml").write_text("value: bad\n")
    result = run_flow(prefect_server, root, "--retries", "0")
    assert result.returncode == 1
    assert "cannot make a bad value" in result.stdout + result.stderr
    # DVC deleted out/made before running the stage; the flow checked the last good one out
    assert (root / "out" / "made").read_text() == "1"


def test_a_deployment_runs_the_churn_graph_on_a_worker(prefect_server, tmp_path):
    clone = copy_project(tmp_path / "clone")
    set_tasks(clone, ["churn"], churn=SMALL_CHURN)
    env = prefect_server.env()
    prefect = str(BIN / "prefect")

    def cli(*args: str) -> str:
        result = subprocess.run(
            args, cwd=clone, env=env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    assert "GPU limits (1 slot each): gpu-" in cli(
        sys.executable, "-m", "flows", "setup", "--gpus", "1"
    )
    cli(prefect, "--no-prompt", "deploy", "--name", "churn")  # without ML_PIPELINES_ROOT here

    worker_log = tmp_path / "worker.log"
    worker = start(
        [prefect, "worker", "start", "--pool", "cpu", "--name", "test-worker"],
        cwd=tmp_path,  # not the clone: the deployment's pull step must find it
        env=prefect_server.env(ML_PIPELINES_ROOT=str(clone)),
        log=worker_log,
    )

    def run_deployment(*params: str) -> tuple[str, dict]:
        started = cli(prefect, "deployment", "run", "task-pipeline/churn", *params)
        flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", started).group(1)
        deadline = time.monotonic() + 600
        while True:
            flow_run = prefect_server.get(f"/flow_runs/{flow_run_id}")
            if flow_run["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
                return flow_run_id, flow_run
            assert time.monotonic() < deadline, f"still {flow_run['state_type']}"
            time.sleep(2)

    try:
        flow_run_id, flow_run = run_deployment()
        params_before = (clone / "params.yaml").read_text()
        # a challenger from the UI: the deployment's `overrides` parameter
        override = json.dumps({"overrides": {"churn.train.catboost.0.depth": 3}})
        _, challenger_run = run_deployment("--params", override)
        bad = json.dumps({"overrides": ["churn.train.catboost.0.depth=deep"]})
        _, bad_run = run_deployment("--params", bad)
    finally:
        stop(worker, worker_log)
    assert flow_run["state_type"] == "COMPLETED", worker_log.read_text()[-5000:]
    assert challenger_run["state_type"] == "COMPLETED", worker_log.read_text()[-5000:]
    assert (clone / "params.yaml").read_text() == params_before
    assert bad_run["state_type"] == "FAILED" and bad_run["run_count"] == 1
    assert "churn.train.catboost.0.depth" in bad_run["state"]["message"]

    task_runs = prefect_server.post(
        "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}}
    )
    assert sorted(run["name"] for run in task_runs) == sorted(
        [
            f"{step}@churn"
            for step in (
                "source",
                "download",
                "validate",
                "preprocess",
                "train",
                "evaluate",
                "report",
            )
        ]
        + ["summary"]
    )
    assert all(run["state_type"] == "COMPLETED" for run in task_runs)
    logs = prefect_server.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}})
    assert any("python -m stages train churn" in log["message"] for log in logs)

    artifacts = prefect_server.post(
        "/artifacts/filter", {"artifacts": {"key": {"any_": ["pipeline-metrics"]}}}
    )
    assert any("## churn: roc_auc" in a["data"] for a in artifacts)

    metrics = json.loads((clone / "reports" / "churn" / "metrics.json").read_text())
    assert metrics["headline"]["value"] > 0.8
    assert any((clone / "models" / "churn").iterdir())
    status = dvc(clone, "status", "--json").stdout
    assert json.loads(status) == {"source@churn": ["always changed"]}

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{clone / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("churn")
    runs = client.search_runs([experiment.experiment_id], "tags.`dvc.stage` = 'train@churn'")
    assert len(runs) == 2 and all(run.info.status == "FINISHED" for run in runs)
    challenger = client.get_model_version("churn", "2")
    assert str(client.get_model_version_by_alias("churn", "challenger").version) == "2"
    assert "on the same" in challenger.tags["promotion.reason"]
    assert challenger.tags["promotion.against"] == "1"
