"""The team's services (PostgreSQL, S3, MLflow server, Prefect server) as real processes on
loopback, started by the same code as `python -m services up`, and clones that act as hosts."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from services.local import TeamServices, start_team_services
from tests.conftest import SMALL_CHURN, copy_project, project_env, set_tasks
from tests.flows.conftest import BIN, start

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> TeamServices:
    services = start_team_services(tmp_path_factory.mktemp("services"))
    yield services
    services.stop()


@dataclass
class Host:
    """A clone with its own DVC cache, configured as the README's "Running as a team" says."""

    name: str
    root: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def check(self, *args: str, timeout: float = 600) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def dvc(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.run(str(BIN / "dvc"), *args, timeout=timeout)

    def start_worker(self, log: Path) -> subprocess.Popen:
        return start(
            [str(BIN / "prefect"), "worker", "start", "--pool", "cpu", "--name", self.name],
            cwd=log.parent,
            env={**self.env, "ML_PIPELINES_ROOT": str(self.root)},
            log=log,
        )


def make_host(team: TeamServices, root: Path, name: str, remote_prefix: str, **extra) -> Host:
    copy_project(root)
    set_tasks(root, ["churn"], churn=SMALL_CHURN)
    env = {**project_env(), **team.client_env(), "PREFECT_WORKER_QUERY_SECONDS": "1", **extra}
    host = Host(name, root, env)
    dvc = str(BIN / "dvc")
    url = f"{env['DVC_REMOTE_URL']}{remote_prefix}"
    host.check(dvc, "remote", "add", "--local", "--default", "team", url)
    host.check(
        dvc, "remote", "modify", "--local", "team", "endpointurl", env["DVC_REMOTE_ENDPOINT"]
    )
    return host


def prefect_api(team: TeamServices):
    username, password = team.secrets["prefect.auth"].split(":", 1)
    return httpx.Client(base_url=team.prefect.url, auth=(username, password), timeout=30)


def run_deployment(host: Host, api: httpx.Client, name: str, timeout: float = 900) -> dict:
    started = host.check(str(BIN / "prefect"), "deployment", "run", name)
    flow_run_id = re.search(r"UUID: ([0-9a-f-]{36})", started).group(1)
    return wait_for(api, flow_run_id, FINAL, timeout)


def wait_for(api: httpx.Client, flow_run_id: str, states: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        flow_run = api.get(f"/flow_runs/{flow_run_id}").json()
        if flow_run["state_type"] in states:
            return flow_run
        assert time.monotonic() < deadline, f"flow run still {flow_run['state_type']}"
        time.sleep(1)


def flow_logs(api: httpx.Client, flow_run_id: str) -> list[str]:
    logs = api.post(
        "/logs/filter",
        json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "sort": "TIMESTAMP_ASC"},
    ).json()
    return [log["message"] for log in logs]


def task_runs(api: httpx.Client, flow_run_id: str) -> dict[str, dict]:
    runs = api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}}).json()
    return {run["name"]: run for run in runs}
