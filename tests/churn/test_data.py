"""The churn files: builtin layout, the accepted real layouts, and bad input at the CLI."""

from __future__ import annotations

import hashlib
import math
import shutil
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from stages.churn.download import write_builtin
from stages.churn.params import ValidateParams
from stages.churn.preprocess import HOLDOUT, PREDICT, TRAIN, clean, split
from stages.churn.schema import FEATURES, IBM_FILE, IBM_TO_COMPETITION, TARGET, read_raw
from stages.churn.validate import check
from stages.core.errors import UserError
from stages.core.validation import raise_on_failure, run_checks
from tests.conftest import copy_project, edit_params, error_lines, stages_cli, tree_digest


@pytest.fixture(scope="module")
def builtin(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("raw")
    write_builtin(raw, test_rows=1761, seed=42)
    return raw


def test_builtin_source_writes_the_competition_layout(builtin: Path):
    train = pd.read_csv(builtin / "train.csv", dtype={"TotalSpent": str}, keep_default_na=False)
    test = pd.read_csv(builtin / "test.csv", dtype={"TotalSpent": str}, keep_default_na=False)
    labels = pd.read_csv(builtin / "test_labels.csv")
    assert (len(train), len(test), len(labels)) == (5282, 1761, 1761)
    assert list(train.columns) == FEATURES[:3] + [c for c in train.columns if c not in FEATURES[:3]]
    assert set(train.columns) - set(test.columns) == {TARGET}
    assert set(train[TARGET]) == {0, 1}
    assert 0.24 < train[TARGET].mean() < 0.29
    assert (train["TotalSpent"] == " ").sum() + (test["TotalSpent"] == " ").sum() == 11
    assert set(train["HasOnlineTV"]) == {"Yes", "No", "No internet service"}
    assert set(train["Sex"]) == {"Male", "Female"}
    assert list(labels.columns) == ["Id", TARGET]


def test_original_ibm_file_and_gender_column_are_normalised(builtin: Path, tmp_path: Path):
    competition = pd.read_csv(
        builtin / "train.csv", dtype={"TotalSpent": str}, keep_default_na=False
    )
    to_ibm = {v: k for k, v in IBM_TO_COMPETITION.items()}
    ibm = competition.rename(columns=to_ibm)
    ibm.insert(0, "customerID", [f"{i:04d}-ABCDE" for i in range(len(ibm))])
    ibm["Churn"] = ibm["Churn"].map({1: "Yes", 0: "No"})
    (tmp_path / "nested").mkdir()
    ibm.to_csv(tmp_path / "nested" / IBM_FILE, index=False)
    raw = read_raw(tmp_path)
    assert raw.layout == "ibm"
    pd.testing.assert_frame_equal(
        raw.train.reset_index(drop=True), read_raw(builtin).train, check_dtype=False
    )

    gender = tmp_path / "gender"
    gender.mkdir()
    competition.rename(columns={"Sex": "Gender"}).to_csv(gender / "train.csv", index=False)
    assert read_raw(gender).train["Sex"].isin(["Male", "Female"]).all()


def test_missing_column_is_one_line_naming_file_and_column(builtin: Path, tmp_path: Path):
    pd.read_csv(builtin / "train.csv").drop(columns=["PaymentMethod"]).to_csv(
        tmp_path / "train.csv", index=False
    )
    with pytest.raises(UserError, match=r"train.csv: missing column\(s\) 'PaymentMethod'"):
        read_raw(tmp_path)


def test_clean_fills_blank_total_spent(builtin: Path):
    cleaned = clean(read_raw(builtin).train)
    assert cleaned["TotalSpent"].notna().all()
    assert cleaned["TotalSpent"].dtype.kind == "f"


def test_holdout_is_test_csv_when_labels_exist_else_a_stable_share(builtin: Path):
    raw = read_raw(builtin)
    tables = split(raw, holdout_fraction=0.25, seed=1)
    assert len(tables[TRAIN]) == 5282 and len(tables[HOLDOUT]) == 1761
    assert len(tables[PREDICT]) == 1761

    unlabelled = raw.__class__(raw.layout, raw.train, raw.test, None, raw.files)
    tables = split(unlabelled, holdout_fraction=0.25, seed=1)
    assert len(tables[HOLDOUT]) == math.ceil(5282 * 0.25)  # as scikit-learn rounds a test share
    assert abs(tables[HOLDOUT][TARGET].mean() - tables[TRAIN][TARGET].mean()) < 0.03
    assert len(tables[PREDICT]) == 1761  # the Kaggle test.csv still gets a submission

    # new rows arrive: the old held-out rows stay held out, old training rows stay out of it,
    # but for the few at the boundary
    grown = pd.concat([raw.train, raw.train.sample(300, random_state=0).assign(ClientPeriod=99)])
    more = split(raw.__class__(raw.layout, grown, raw.test, None, raw.files), 0.25, seed=1)
    old, new = (set(map(tuple, t[HOLDOUT].astype(str).to_numpy())) for t in (tables, more))
    assert len(old - new) < 0.02 * len(old)
    assert len(new & set(map(tuple, tables[TRAIN].astype(str).to_numpy()))) < 0.02 * len(new)


# --- bad input through the CLI, as DVC runs it: one line, exit 2, previous outputs kept ---


@pytest.fixture(scope="module")
def downloaded_once(tmp_path_factory) -> Path:
    project = copy_project(tmp_path_factory.mktemp("downloaded") / "project")
    for step in ("download", "validate"):
        result = stages_cli(project, step, "churn")
        assert result.returncode == 0, result.stderr
    return project


@pytest.fixture
def downloaded(downloaded_once: Path, tmp_path: Path) -> Path:
    """A project whose download and validate steps have run: the outputs a user already has."""
    return Path(shutil.copytree(downloaded_once, tmp_path / "project", symlinks=True))


def edit_train_csv(project: Path, edit) -> pd.DataFrame:
    """Rewrite the downloaded train.csv through `edit`; returns the edited frame."""
    train_csv = project / "data" / "raw" / "churn" / "train.csv"
    frame = edit(pd.read_csv(train_csv, dtype={"TotalSpent": str}, keep_default_na=False))
    frame.to_csv(train_csv, index=False)
    return frame


def assert_fails_cleanly(result, *fragments: str) -> None:
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_archives_keep_the_downloaded_data(downloaded: Path, server, tmp_path: Path):
    raw = downloaded / "data" / "raw" / "churn"
    before = tree_digest(raw)

    corrupt = tmp_path / "churn.zip"
    corrupt.write_bytes(b"PK\x03\x04 truncated download")
    edit_params(downloaded, churn={"source": {"kind": "path", "path": str(corrupt)}})
    assert_fails_cleanly(stages_cli(downloaded, "download", "churn"), "churn.zip: not a valid")

    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("train.csv", "x")
        zf.writestr("../../outside.csv", "x")
    edit_params(downloaded, churn={"source": {"path": str(slip)}})
    assert_fails_cleanly(
        stages_cli(downloaded, "download", "churn"),
        "'../../outside.csv' escapes the extraction folder",
    )

    served, base, _ = server
    (served / "churn.zip").write_bytes(slip.read_bytes())
    edit_params(
        downloaded,
        churn={
            "source": {
                "kind": "url",
                "url": f"{base}/churn.zip",
                "sha256": hashlib.sha256(b"other").hexdigest(),
            }
        },
    )
    assert_fails_cleanly(stages_cli(downloaded, "download", "churn"), "checksum mismatch")

    assert tree_digest(raw) == before
    assert not (tmp_path.parent / "outside.csv").exists()


def test_bad_values_fail_validation_and_keep_the_last_good_report(downloaded: Path):
    reports = downloaded / "reports" / "churn"
    good_report = tree_digest(reports / "validation.json")
    frame = edit_train_csv(
        downloaded,
        lambda f: f.assign(HasPartner=f["HasPartner"].mask(f.index.isin([3, 7]), "Maybe")),
    )
    assert_fails_cleanly(
        stages_cli(downloaded, "validate", "churn"),
        "train.csv column 'HasPartner'",
        "expect_column_values_to_be_in_set",
        "2 unexpected value(s), e.g. ['Maybe', 'Maybe']",
    )
    failed = pd.read_json(reports / "validation.failed.json", typ="series")
    assert failed["success"] is False or not failed["success"]
    assert tree_digest(reports / "validation.json") == good_report

    edit_train_csv(downloaded, lambda f: frame.drop(columns=["ClientPeriod"]))
    assert_fails_cleanly(
        stages_cli(downloaded, "validate", "churn"), "train.csv: missing column(s) 'ClientPeriod'"
    )
    assert tree_digest(reports / "validation.json") == good_report


def test_negative_spending_is_named_with_its_value(downloaded: Path):
    edit_train_csv(
        downloaded,
        lambda f: f.assign(MonthlySpending=f["MonthlySpending"].mask(f.index == 0, -5.0)),
    )
    assert_fails_cleanly(
        stages_cli(downloaded, "validate", "churn"),
        "column 'MonthlySpending'",
        "expect_column_values_to_be_between",
        "-5.0",
    )


def test_text_in_a_numeric_column_is_named_with_its_value(builtin: Path, tmp_path: Path):
    frame = pd.read_csv(builtin / "train.csv", dtype={"TotalSpent": str}, keep_default_na=False)
    frame["ClientPeriod"] = frame["ClientPeriod"].astype(str)
    frame.loc[2, "ClientPeriod"] = "twelve"
    frame.to_csv(tmp_path / "train.csv", index=False)
    raw = read_raw(tmp_path)
    report = run_checks("churn", check(raw, ValidateParams()), {})
    with pytest.raises(UserError) as caught:
        raise_on_failure(report, tmp_path / "validation.failed.html")
    message = str(caught.value)
    assert "train.csv column 'ClientPeriod': expect_column_values_to_match_regex" in message
    assert "['twelve']" in message
