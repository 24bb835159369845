"""Each stage depends on the code it runs (data/code/<task>/<step>.json), so an edit re-runs
only the stages whose code it touched."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stages.core.code_deps import code_files, manifest
from tests.conftest import REPO, SMALL_CHURN, copy_project, dvc, set_tasks, stages_ran


def files_of(root: Path, module: str) -> set[str]:
    return {p.relative_to(root).as_posix() for p in code_files(root, module)}


def test_a_step_runs_its_module_what_it_imports_and_the_cli():
    report = files_of(REPO, "stages.timeseries.report")
    assert {"stages/timeseries/report.py", "stages/core/reporting.py", "stages/cli.py"} <= report
    assert {"stages/__init__.py", "stages/timeseries/__init__.py", "stages/__main__.py"} <= report
    assert "stages/timeseries/evaluate.py" not in report
    train = files_of(REPO, "stages.timeseries.train")
    assert "stages/timeseries/rnn.py" in train  # imported inside a function
    assert "stages/core/reporting.py" not in train
    assert "stages/core/summary.py" not in train  # the CLI imports it for another command
    assert "stages/core/training.py" not in files_of(REPO, "stages.churn.train")
    download = files_of(REPO, "stages.nmt.download")
    assert "stages/nmt/data/pairs.tsv.xz" in download  # read next to corpus.py


TORCH_TASKS = ("simpsons", "segmentation", "detection", "nmt")


def test_a_torch_tasks_report_runs_without_its_training_code():
    """report reads what train and evaluate wrote: editing their code re-runs it only through
    their outputs, and it starts without torch and Lightning (~1 s instead of ~6)."""
    for task in TORCH_TASKS:
        report = files_of(REPO, f"stages.{task}.report")
        training_code = {f"stages/{task}/{step}.py" for step in ("train", "evaluate", "model")}
        assert not (training_code | {"stages/core/training.py"}) & report, task
    imports = "; ".join(f"import stages.{task}.report" for task in TORCH_TASKS)
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; {imports}; print({{'torch', 'lightning'}} & set(sys.modules))",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "set()"


def write(root: Path, name: str, text: str) -> None:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_relative_lazy_and_new_imports_are_followed(tmp_path: Path):
    write(tmp_path, "stages/__init__.py", "")
    write(tmp_path, "stages/__main__.py", "from stages.cli import main\n")
    write(tmp_path, "stages/cli.py", "import os\n\ndef other():\n    import stages.core.extra\n")
    write(tmp_path, "stages/core/__init__.py", "")
    write(tmp_path, "stages/core/extra.py", "")
    write(tmp_path, "stages/core/util.py", "")
    write(tmp_path, "stages/task/__init__.py", "")
    write(tmp_path, "stages/task/model.py", "from stages.core.util import helper\n")
    write(tmp_path, "stages/task/train.py", "def run(ctx):\n    from .model import Net\n")
    assert files_of(tmp_path, "stages.task.train") == {
        "stages/__init__.py",
        "stages/__main__.py",
        "stages/cli.py",
        "stages/core/__init__.py",
        "stages/core/util.py",
        "stages/task/__init__.py",
        "stages/task/model.py",
        "stages/task/train.py",
    }
    before = manifest(tmp_path, "task", "train")
    write(tmp_path, "stages/task/model.py", "from stages.core import util, extra\n")
    after = manifest(tmp_path, "task", "train")
    assert set(after["files"]) - set(before["files"]) == {"stages/core/extra.py"}


@pytest.mark.slow
def test_an_edit_re_runs_only_the_stages_whose_code_it_touched(tmp_path: Path):
    root = copy_project(tmp_path / "project")
    set_tasks(root, ["churn"], churn=SMALL_CHURN)
    dvc(root, "repro")
    timings = {}

    def edit_then_repro(name: str, line: str) -> list[str]:
        with (root / name).open("a") as f:
            f.write(line)
        started = time.monotonic()
        ran = stages_ran(dvc(root, "repro"))
        timings[name] = round(time.monotonic() - started, 1)
        # source@ runs every time; summary whenever the reports' bytes changed
        return [stage for stage in ran if stage not in ("source@churn", "summary")]

    assert edit_then_repro("stages/churn/report.py", "# a comment\n") == ["report@churn"]
    assert edit_then_repro("stages/core/reporting.py", "# a comment\n") == ["report@churn"]
    assert edit_then_repro("stages/core/training.py", "# torch tasks only\n") == []
    assert edit_then_repro("stages/churn/ensemble.py", "# model code\n") == [
        "train@churn",
        "evaluate@churn",
        "report@churn",
    ]
    # a new import makes the imported file a dependency of the stage
    edit_then_repro("stages/churn/report.py", "import stages.core.imagesize  # noqa\n")
    report = json.loads((root / "data/code/churn/report.json").read_text())
    assert "stages/core/imagesize.py" in report["files"]
    assert edit_then_repro("stages/core/imagesize.py", "# now read by report\n") == ["report@churn"]
    print(f"\nedit -> dvc repro seconds: {json.dumps(timings)}")
