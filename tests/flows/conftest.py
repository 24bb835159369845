"""A real Prefect server on a free loopback port, and processes that are stopped the way a user
stops them (SIGINT) and checked to leave nothing behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import project_env

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class PrefectServer:
    api: str  # http://127.0.0.1:PORT/api
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = project_env()
        env.update(
            PREFECT_API_URL=self.api,
            PREFECT_HOME=str(self.home),
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_WORKER_QUERY_SECONDS="1",
            PREFECT_CLI_COLORS="false",
            **extra,
        )
        return env

    def get(self, path: str) -> dict:
        response = httpx.get(f"{self.api}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> list | dict:
        response = httpx.post(f"{self.api}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()


def start(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """A process in a session of its own, so that it and its children can be found and stopped."""
    with log.open("w") as out:
        return subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """SIGINT (a worker ignores SIGTERM), then check that no process of its group is left."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"{process.args} ignored SIGINT\n{log.read_text()[-3000:]}") from None
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"{process.args} left processes behind")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    server = PrefectServer(api=f"http://127.0.0.1:{port}/api", home=home)
    log = home / "server.log"
    process = start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        cwd=home,
        env=server.env(),
        log=log,
    )
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{server.api}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                stop(process, log)
            raise AssertionError(f"prefect server did not start\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    yield server
    stop(process, log)
