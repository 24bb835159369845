"""DVC's run-cache on the real churn pipeline: parameters switched back restore the earlier
outputs instead of retraining, and a failed stage's outputs come back with `dvc checkout`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import (
    SMALL_CHURN,
    copy_project,
    dvc,
    edit_params,
    project_env,
    set_tasks,
    stages_cli,
    stages_ran,
    tree_digest,
)

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def test_params_switched_back_restore_from_the_run_cache(tmp_path):
    root = copy_project(tmp_path / "project")
    set_tasks(root, ["churn"], churn=SMALL_CHURN)
    dvc(root, "repro")
    first_model = tree_digest(root / "models" / "churn")
    first_report = (root / "reports" / "churn" / "report.html").read_bytes()

    edit_params(root, churn={"train": {"cv": {"folds": 4}}})
    assert "train@churn" in stages_ran(dvc(root, "repro"))

    edit_params(root, churn={"train": {"cv": {"folds": 3}}})
    started = time.monotonic()
    restored = dvc(root, "repro")
    seconds = time.monotonic() - started
    assert "Stage 'train@churn' is cached - skipping run" in restored.stdout
    assert stages_ran(restored) == ["source@churn", "summary"]
    assert tree_digest(root / "models" / "churn") == first_model
    assert (root / "reports" / "churn" / "report.html").read_bytes() == first_report
    versions = json.loads(stages_cli(root, "registry", "churn", "--json").stdout)
    assert len(versions) == 2, "restoring registered a version again"
    print(f"\nparams switched back: dvc repro restored train, evaluate, report in {seconds:.1f} s")

    # Ctrl-C during training: DVC has deleted the stage's outputs, `dvc checkout` puts the last
    # good ones back
    edit_params(root, churn={"train": {"cv": {"folds": 5}}})
    with subprocess.Popen(
        [str(BIN / "dvc"), "repro"],
        cwd=root,
        env=project_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as interrupted:
        for line in interrupted.stdout:
            if line.startswith("Running stage 'train@churn'"):
                time.sleep(3)
                os.killpg(interrupted.pid, signal.SIGINT)
                break
        interrupted.communicate(timeout=120)
    assert interrupted.returncode != 0
    assert not (root / "models" / "churn").exists()
    dvc(root, "checkout")
    assert tree_digest(root / "models" / "churn") == first_model
