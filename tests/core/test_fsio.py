from pathlib import Path

import pytest

from stages.core.fsio import atomic_dir, staged_outputs


def test_outputs_replace_together_on_success(tmp_path: Path):
    old_dir = tmp_path / "plots"
    old_dir.mkdir()
    (old_dir / "stale.png").write_text("old")
    metrics = tmp_path / "metrics.json"
    metrics.write_text("old")
    with staged_outputs(metrics, old_dir) as staging:
        staging[metrics].write_text("new")
        staging[old_dir].mkdir()
        (staging[old_dir] / "roc.png").write_text("new")
    assert metrics.read_text() == "new"
    assert [p.name for p in old_dir.iterdir()] == ["roc.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "plots"]


def test_a_failure_leaves_every_previous_output(tmp_path: Path):
    metrics = tmp_path / "metrics.json"
    metrics.write_text("old")
    with pytest.raises(ValueError), staged_outputs(metrics, tmp_path / "new.csv") as staging:
        staging[metrics].write_text("half")
        raise ValueError("boom")
    assert metrics.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_an_output_the_step_forgot_is_an_error(tmp_path: Path):
    metrics = tmp_path / "metrics.json"
    with pytest.raises(RuntimeError, match="without writing"), staged_outputs(metrics):
        pass
    assert not metrics.exists()


def test_atomic_dir_replaces_a_folder(tmp_path: Path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "old.csv").write_text("old")
    with atomic_dir(tmp_path / "raw") as tmp:
        (tmp / "new.csv").write_text("new")
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["new.csv"]


def test_a_killed_steps_staging_folder_is_removed_by_the_next_run(tmp_path: Path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "model"
    killed = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from stages.core.fsio import atomic_dir\n"
            "with atomic_dir(Path(sys.argv[1])) as tmp:\n"
            "    (tmp / 'half.bin').write_bytes(b'x' * 10)\n"
            "    print('writing', flush=True); time.sleep(60)\n",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert killed.stdout.readline().strip() == "writing"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == [".model.tmp"]

    with atomic_dir(out) as tmp:
        (tmp / "whole.bin").write_bytes(b"y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in out.iterdir()] == ["whole.bin"]
