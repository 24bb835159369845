"""What every benchmark needs: a fresh clone of this repository and the environment of `make`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def project_env() -> dict[str, str]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    for name in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL"):
        env.pop(name, None)
    return env


def fresh_clone(dest: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    return dest


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path | None = None) -> float:
    """Seconds `command` took; its output goes to `log` (or nowhere)."""
    started = time.perf_counter()
    with log.open("w") if log else open(os.devnull, "w") as output:
        subprocess.run(
            command, cwd=cwd, env=env, check=True, stdout=output, stderr=subprocess.STDOUT
        )
    return round(time.perf_counter() - started, 2)


def headlines(clone: Path) -> dict[str, str]:
    """Each task's headline metric after a run, from reports/summary.json."""
    summary = json.loads((clone / "reports" / "summary.json").read_text())
    return {
        task: f"{headline.get('metric')} {headline.get('value')}"
        for task, headline in summary.items()
        if isinstance(headline, dict)
    }
