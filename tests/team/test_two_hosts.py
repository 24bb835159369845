"""Two hosts and a colleague sharing one DVC remote (S3), one MLflow server (PostgreSQL +
proxied S3 artifacts) and one Prefect server (PostgreSQL), all behind credentials: a stage
computed on one host is restored on the other, a dead host's run is marked crashed and retried
elsewhere with nothing lost, a cancelled run leaves no stage process behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx
import mlflow
import psutil
import pytest
from botocore.exceptions import ClientError

from services.local import DVC_BUCKET
from tests.conftest import REPO, STEPS, edit_params
from tests.flows.conftest import BIN, stop
from tests.team.conftest import (
    Host,
    flow_logs,
    make_host,
    prefect_api,
    run_deployment,
    task_runs,
    wait_for,
)

pytestmark = pytest.mark.slow

DEPLOYMENT = "task-pipeline/churn"


def test_requests_without_the_right_credentials_are_refused(team):
    viewer = ("viewer", team.secrets["mlflow.viewer"])
    search = f"{team.mlflow.url}/api/2.0/mlflow/experiments/search?max_results=5"
    assert httpx.get(search).status_code == 401
    assert httpx.get(search, auth=("pipeline", "wrong")).status_code == 401
    assert httpx.get(search, auth=viewer).status_code == 200
    assert (
        httpx.get(f"{team.mlflow.url}/api/2.0/mlflow/users/get?username=admin").status_code == 401
    )

    # the compose job's script, run again on a server that has the users: it keeps them
    rerun = subprocess.run(
        [sys.executable, str(REPO / "services" / "mlflow_users.py")],
        env={
            **os.environ,
            "MLFLOW_URL": team.mlflow.url,
            "MLFLOW_ADMIN_PASSWORD": team.secrets["mlflow.admin"],
            "MLFLOW_PIPELINE_PASSWORD": "another-password",
            "MLFLOW_VIEWER_PASSWORD": "another-password",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "none (all exist)" in rerun.stdout
    assert httpx.get(search, auth=viewer).status_code == 200

    flows = f"{team.prefect.url}/flows/filter"
    assert httpx.post(flows, json={}).status_code == 401
    assert httpx.post(flows, json={}, auth=("admin", "wrong")).status_code == 401
    with prefect_api(team) as api:
        assert api.post("/flows/filter", json={}).status_code == 200

    assert httpx.get(f"{team.s3.endpoint}/{DVC_BUCKET}").status_code >= 400  # unsigned

    def s3(key_id: str, secret: str):
        return boto3.client(
            "s3",
            endpoint_url=team.s3.endpoint,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )

    dvc_id, dvc_secret = team.s3.keys["dvc"]
    with pytest.raises(ClientError):
        s3(dvc_id, "wrong").list_objects_v2(Bucket=DVC_BUCKET)
    with pytest.raises(ClientError, match="AccessDenied"):  # the hosts' key, MLflow's bucket
        s3(dvc_id, dvc_secret).list_objects_v2(Bucket="mlflow-artifacts")
    assert s3(dvc_id, dvc_secret).list_objects_v2(Bucket=DVC_BUCKET)["ResponseMetadata"]


@pytest.fixture(scope="module")
def hosts(team, tmp_path_factory):
    base = tmp_path_factory.mktemp("hosts")
    beat = {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}
    a = make_host(team, base / "host-a", "host-a", "pipelines", **beat)
    b = make_host(team, base / "host-b", "host-b", "pipelines", **beat)
    a.check(sys.executable, "-m", "flows", "setup", "--gpus", "1", "--crash-after", "45")
    b.check(sys.executable, "-m", "flows", "setup", "--gpus", "1", "--crash-after", "45")
    a.check(str(BIN / "prefect"), "--no-prompt", "deploy", "--name", "churn")
    return a, b


def registry(team) -> mlflow.MlflowClient:
    os.environ["MLFLOW_TRACKING_USERNAME"] = "viewer"
    os.environ["MLFLOW_TRACKING_PASSWORD"] = team.secrets["mlflow.viewer"]
    return mlflow.MlflowClient(tracking_uri=team.mlflow.url)


def remote_keys(team) -> set[str]:
    key_id, secret = team.s3.keys["dvc"]
    client = boto3.client(
        "s3",
        endpoint_url=team.s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=DVC_BUCKET)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def ran(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if "Running stage '" in line]


def test_a_stage_run_on_one_host_is_restored_on_the_other(team, hosts, tmp_path):
    a, b = hosts
    with prefect_api(team) as api:
        worker = a.start_worker(tmp_path / "worker-a.log")
        started = time.monotonic()
        try:
            run_a = run_deployment(a, api, DEPLOYMENT)
        finally:
            stop(worker, tmp_path / "worker-a.log")
        seconds_a = time.monotonic() - started
        assert run_a["state_type"] == "COMPLETED", (tmp_path / "worker-a.log").read_text()[-4000:]
        versions = registry(team).search_model_versions("name = 'churn'")
        assert [v.version for v in versions] == ["1"]
        metrics = json.loads((a.root / "reports/churn/metrics.json").read_text())
        assert metrics["headline"]["value"] > 0.8
        pushed = remote_keys(team)
        assert any(key.startswith("pipelines/runs/") for key in pushed)
        pushes = [line for line in flow_logs(api, run_a["id"]) if line.startswith("pushed ")]
        assert len(pushes) == len(STEPS)  # every restorable stage, not source@ nor summary

        worker = b.start_worker(tmp_path / "worker-b.log")
        started = time.monotonic()
        try:
            run_b = run_deployment(b, api, DEPLOYMENT)
        finally:
            stop(worker, tmp_path / "worker-b.log")
        seconds_b = time.monotonic() - started
        assert run_b["state_type"] == "COMPLETED", (tmp_path / "worker-b.log").read_text()[-4000:]
        logs = "\n".join(flow_logs(api, run_b["id"]))
        for step in STEPS:
            assert f"Stage '{step}@churn' is cached - skipping run" in logs, step
        assert not [s for s in ran(logs) if s.endswith("@churn") and not s.startswith("source")]
        durations = {
            name: run["total_run_time"] for name, run in task_runs(api, run_b["id"]).items()
        }
    assert [v.version for v in registry(team).search_model_versions("name = 'churn'")] == ["1"]
    assert (b.root / "models/churn").is_dir()
    assert (b.root / "reports/churn/metrics.json").read_bytes() == (
        a.root / "reports/churn/metrics.json"
    ).read_bytes()
    print("\n" + "\n".join(pushes))
    print(
        f"host A ran the deployment in {seconds_a:.1f} s, host B restored it in "
        f"{seconds_b:.1f} s; B's stages (s): {json.dumps(durations)}"
    )

    # a colleague's fresh clone: DVC computes each stage's key from its checkout and restores it
    colleague = make_host(team, tmp_path / "colleague", "colleague", "pipelines")
    started = time.monotonic()
    result = colleague.dvc("repro", "--pull")
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "train@churn" not in ran(result.stdout)
    assert "Stage 'train@churn' is cached - skipping run" in result.stdout
    assert (colleague.root / "reports/churn/report.html").is_file()
    assert any((colleague.root / "models/churn").iterdir())
    status = json.loads(colleague.dvc("status", "--json").stdout)
    assert status == {"source@churn": ["always changed"]}
    print(f"a colleague's `dvc repro --pull` restored the pipeline in {seconds:.1f} s")


def descendants(process) -> list[psutil.Process]:
    parent = psutil.Process(process.pid)
    return [parent, *parent.children(recursive=True)]


def stage_processes(root: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "stages train churn" in cmdline and process.info["cwd"] == str(root):
            found.append(process)
    return found


def wait_for_training(api, flow_run_id: str, root: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not stage_processes(root):
        assert time.monotonic() < deadline, "train@churn never started"
        flow_run = api.get(f"/flow_runs/{flow_run_id}").json()
        assert flow_run["state_type"] in {"SCHEDULED", "PENDING", "RUNNING"}, flow_run["state"]
        time.sleep(0.5)


def start_run(host: Host) -> str:
    import re

    started = host.check(str(BIN / "prefect"), "deployment", "run", DEPLOYMENT)
    return re.search(r"UUID: ([0-9a-f-]{36})", started).group(1)


def test_a_dead_host_crashes_its_run_and_another_host_finishes_it(team, hosts, tmp_path):
    a, b = hosts
    slower = {"train": {"catboost": [{**SLOW_CATBOOST}]}}
    for host in hosts:
        edit_params(host.root, churn=slower)
    before = remote_keys(team)
    with prefect_api(team) as api:
        worker_a = a.start_worker(tmp_path / "worker-a.log")
        flow_run_id = start_run(a)
        wait_for_training(api, flow_run_id, a.root)
        time.sleep(5)
        # host A dies: its worker, the flow run, DVC and the training, all at once
        for process in descendants(worker_a):
            process.kill()
        worker_a.wait()
        assert not stage_processes(a.root)
        assert remote_keys(team) == before, "a killed stage pushed something"
        dead_run_id = flow_run_id  # the server marks it crashed once its heartbeats stop (~1 min)

        # cancelling a run from the UI / API stops the stage's whole process tree
        worker_b = b.start_worker(tmp_path / "worker-b.log")
        try:
            flow_run_id = start_run(b)
            wait_for_training(api, flow_run_id, b.root)
            training = stage_processes(b.root)
            api.post(
                f"/flow_runs/{flow_run_id}/set_state",
                json={"state": {"type": "CANCELLING"}, "force": True},
            ).raise_for_status()
            cancelled = wait_for(api, flow_run_id, {"CANCELLED", "FAILED", "CRASHED"}, 120)
            gone = psutil.wait_procs(training, timeout=30)[1] == []
            assert cancelled["state_type"] == "CANCELLED", cancelled["state"]
            assert gone and not stage_processes(b.root), "the training outlived its flow run"

            # the retry on host B starts clean and finishes what host A began
            retried = run_deployment(b, api, DEPLOYMENT)
        finally:
            stop(worker_b, tmp_path / "worker-b.log")
        crashed = wait_for(api, dead_run_id, {"CRASHED", "FAILED"}, timeout=180)
    assert crashed["state_type"] == "CRASHED", crashed["state"]
    assert retried["state_type"] == "COMPLETED", (tmp_path / "worker-b.log").read_text()[-4000:]

    client = registry(team)
    versions = client.search_model_versions("name = 'churn'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert all(client.get_run(v.run_id).info.status == "FINISHED" for v in versions)
    holders = {
        alias: client.get_model_version_by_alias("churn", alias).version
        for alias in ("champion", "challenger")
    }
    assert holders["challenger"] == "2" and holders["champion"] in {"1", "2"}

    # host A's clone: nothing half-written, and checkout brings its last good outputs back
    assert not list((a.root / "models").glob(".churn.*"))
    assert a.dvc("checkout").returncode == 0
    status = json.loads(a.dvc("status", "--json").stdout)
    assert "train@churn" in status  # params changed since its last good run, as they did
    assert any((a.root / "models/churn").iterdir())


SLOW_CATBOOST = {
    "name": "catboost",
    "depth": 6,
    "iterations": 1000,
    "learning_rate": 0.02,
    "random_seed": 0,
}
