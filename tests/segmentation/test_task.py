"""The segmentation steps through the CLI, as DVC runs them: real PH2 layout, bad input as one
line with the last good output kept, and the whole task on a zipped PH2 served over HTTP."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages.segmentation.generate import IMAGES_DIR
from stages.segmentation.schema import scan
from tests.conftest import (
    copy_project,
    edit_params,
    error_lines,
    set_tasks,
    stages_cli,
    tree_digest,
)

TINY = {
    "source": {"images": 12, "width": 64, "height": 48},
    "preprocess": {"size": 32},
    "train": {
        "epochs": 2,
        "losses": ["dice", "bce_dice"],
        "models": [
            {"name": "unet", "architecture": "unet", "width": 4, "depth": 2},
            {"name": "segnet", "architecture": "segnet", "width": 4, "depth": 2},
        ],
    },
}


@pytest.fixture(scope="module")
def validated_once(tmp_path_factory) -> Path:
    """A clone after a passing download and validate (shared: tests work on copies)."""
    project = copy_project(tmp_path_factory.mktemp("segmentation") / "project")
    set_tasks(project, ["segmentation"], segmentation=TINY)
    for step in ("download", "validate"):
        result = stages_cli(project, step, "segmentation")
        assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def downloaded(validated_once: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(validated_once, tmp_path / "project", symlinks=True))


def case_dir(root: Path, case: str) -> Path:
    return root / "data" / "raw" / "segmentation" / IMAGES_DIR / case


def test_the_builtin_source_is_read_as_real_ph2(downloaded):
    index = scan(downloaded / "data" / "raw" / "segmentation")
    assert len(index) == 12
    assert index["missing_mask"].isna().all() and index["unreadable"].isna().all()
    assert index["case"].str.fullmatch(r"IMD\d{3}").all()
    assert ((index["width"] == 64) & (index["height"] == 48)).all()
    assert index["coverage"].between(0.05, 0.7).all()


def validate_fails_keeping_the_last_good_report(root: Path, break_data) -> str:
    report = root / "reports" / "segmentation" / "validation.json"
    before = tree_digest(report)
    break_data()
    result = stages_cli(root, "validate", "segmentation")
    assert result.returncode == 2
    assert tree_digest(report) == before
    (line,) = error_lines(result)
    return line


def test_a_missing_mask_names_the_case_folder(downloaded):
    case = sorted(p.name for p in case_dir(downloaded, "").iterdir())[3]

    def remove_mask():
        shutil.rmtree(case_dir(downloaded, case) / f"{case}_lesion")

    line = validate_fails_keeping_the_last_good_report(downloaded, remove_mask)
    assert line.startswith(
        "error: validation failed: cases column 'missing_mask': expect_column_values_to_be_null: "
        f"1 unexpected value(s), e.g. ['{case}'] (see "
    )


def test_a_grey_mask_and_a_mask_of_another_size_are_named(downloaded):
    cases = sorted(p.name for p in case_dir(downloaded, "").iterdir())

    def damage():
        folder = case_dir(downloaded, cases[0]) / f"{cases[0]}_lesion"
        ramp = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
        Image.fromarray(ramp).save(folder / f"{cases[0]}_lesion.bmp")
        folder = case_dir(downloaded, cases[1]) / f"{cases[1]}_lesion"
        Image.new("L", (10, 10)).save(folder / f"{cases[1]}_lesion.bmp")

    line = validate_fails_keeping_the_last_good_report(downloaded, damage)
    assert line.startswith(
        "error: validation failed: cases column 'size_mismatch': expect_column_values_to_be_null"
    )
    assert f"['{cases[1]}']" in line and "(+1 more failed, see " in line
    failed = json.loads(
        (downloaded / "reports" / "segmentation" / "validation.failed.json").read_text()
    )
    checks = failed["tables"]["masks"]["expectations"]
    (grey,) = [c for c in checks if c["column"] == "non_binary_mask"]
    assert grey["sample"] == [cases[0]]


def test_an_unreadable_image_is_named(downloaded):
    case = sorted(p.name for p in case_dir(downloaded, "").iterdir())[0]

    def corrupt():
        (case_dir(downloaded, case) / f"{case}_Dermoscopic_Image" / f"{case}.bmp").write_bytes(
            b"BM not really"
        )

    line = validate_fails_keeping_the_last_good_report(downloaded, corrupt)
    assert "column 'unreadable'" in line and f"['{case}']" in line


@pytest.mark.slow
def test_a_zipped_ph2_served_over_http_reaches_the_cached_tensors(project, server, tmp_path):
    """The real archive's route: a url source with its sha256, a zip with the PH2 folder
    nested one level deeper than the builtin writes it (as Kaggle copies do). The steps after
    preprocess read only the cached tensors, which the full pipeline test covers."""
    import torch

    from stages.segmentation.generate import GeneratorSpec, write_ph2

    root, base, _ = server
    unpacked = tmp_path / "ph2"
    write_ph2(unpacked, GeneratorSpec(images=12, width=64, height=48, seed=3))
    archive = root / "PH2Dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(unpacked.rglob("*")):
            zf.write(path, Path("ph2-copy") / path.relative_to(unpacked))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    source = {"kind": "url", "url": f"{base}/PH2Dataset.zip", "sha256": digest}
    set_tasks(project, ["segmentation"], segmentation={**TINY, "source": source})
    # real data at its own size: the 64x48 photos' shorter side, floored to 32, not 256 px
    edit_params(project, segmentation={"preprocess": {"size": None}})

    for step in ("download", "validate", "preprocess"):
        result = stages_cli(project, step, "segmentation")
        assert result.returncode == 0, f"{step}: {result.stderr}"

    facts = json.loads((project / "reports/segmentation/validation.json").read_text())["facts"]
    assert facts["case folder"] == "ph2-copy/PH2Dataset/PH2 Dataset images"
    assert facts["usable pairs"] == 12
    splits = json.loads((project / "data/processed/segmentation/splits.json").read_text())
    assert splits["counts"] == {"train": 6, "val": 3, "test": 3}
    test = torch.load(project / "data/processed/segmentation/test.pt")
    assert splits["size"] == 32 and "never upsampled" in splits["size_reason"]
    assert test["images"].shape == (3, 3, 32, 32) and test["images"].dtype == torch.uint8
    assert test["masks"].shape == (3, 1, 32, 32)
    assert set(test["masks"].unique().tolist()) == {0, 1}
    assert sorted(test["cases"]) == splits["cases"]["test"]
