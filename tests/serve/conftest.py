"""The web app started as a user starts it: `python -m serve` on a free loopback port over the
store the session pipeline filled."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import project_env
from tests.flows.conftest import free_port, start, stop


def start_app(root: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = project_env()
    env.update(GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    process = start(
        [sys.executable, "-m", "serve", "--root", str(root), "--port", str(port)],
        cwd=root,
        env=env,
        log=log,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the app did not start\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def app(pipeline, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve") / "app.log"
    process, url = start_app(pipeline, log)
    yield url
    stop(process, log)
