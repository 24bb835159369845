"""The pipeline as it lives on a schedule, on a `path` source: new data is noticed, every new
version is judged against the champion on the same current test split, an unchanged source is
a no-op, people move the champion by hand with a trail, and a `dvc exp run -S` challenger is
judged like any other version. Real DVC repo, real MLflow sqlite store, churn shrunk."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from stages.churn.download import write_builtin
from tests.conftest import copy_project, dvc, run, set_tasks, stages_cli, stages_ran

pytestmark = pytest.mark.slow

SMALL_CHURN = {
    "cv": {"folds": 3, "repeats": 1},
    "logreg": {"C": [0.3]},
    "random_forests": [{"name": "rf", "n_estimators": 60, "max_depth": 8, "min_samples_leaf": 5}],
    "catboost": [
        {
            "name": "catboost_d4",
            "depth": 4,
            "iterations": 120,
            "learning_rate": 0.1,
            "random_seed": 0,
        }
    ],
}


def registry_rows(root: Path) -> list[dict]:
    result = stages_cli(root, "registry", "churn", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def living(tmp_path_factory):
    """A clone whose churn source is a folder of the Kaggle files (train.csv without held-out
    labels for test.csv), as a user downloads them."""
    base = tmp_path_factory.mktemp("living")
    kaggle = base / "kaggle"
    kaggle.mkdir()
    write_builtin(kaggle, test_rows=1761, seed=7)
    (kaggle / "test_labels.csv").unlink()
    root = copy_project(base / "project")
    source = {"kind": "path", "path": str(kaggle)}
    set_tasks(root, ["churn"], churn={"source": source, "train": SMALL_CHURN})
    run(["git", "commit", "-qam", "churn on a path source"], cwd=root, check=True)
    return root, kaggle


def test_new_rows_retrain_and_are_judged_on_the_new_test_split(living):
    root, kaggle = living
    first = dvc(root, "repro")
    assert "train@churn" in stages_ran(first)
    [v1] = registry_rows(root)
    assert v1["aliases"] == ["challenger", "champion"] and v1["promotion"] == "promoted to champion"
    first_check = json.loads((root / "data" / "sources" / "churn.json").read_text())
    holdout_path = root / "data" / "processed" / "churn" / "holdout.parquet"
    first_holdout = len(pd.read_parquet(holdout_path))

    started = time.perf_counter()
    unchanged = dvc(root, "repro")
    no_op_seconds = time.perf_counter() - started
    assert stages_ran(unchanged) == ["source@churn"], unchanged.stdout
    print(f"no-op repro with a path source: {no_op_seconds:.1f} s")

    # new clients arrive: 600 rows appended, one deleted
    train = pd.read_csv(kaggle / "train.csv", dtype=str, keep_default_na=False)
    arrived = train.sample(600, random_state=3).assign(ClientPeriod=lambda f: "1")
    pd.concat([train.iloc[1:], arrived]).to_csv(kaggle / "train.csv", index=False)
    second = dvc(root, "repro")
    assert {"download@churn", "train@churn", "evaluate@churn"} <= set(stages_ran(second))
    check = json.loads((root / "data" / "sources" / "churn.json").read_text())
    assert check["sha256"] != first_check["sha256"]

    promotion = json.loads((root / "reports" / "churn" / "promotion.json").read_text())
    assert promotion["version"] == "2" and promotion["previous_champion"] == "1"
    comparison = promotion["comparison"]
    assert comparison["items"] == len(pd.read_parquet(holdout_path)) > first_holdout
    assert comparison["ci_low"] <= comparison["difference"] <= comparison["ci_high"]
    assert promotion["data"]["fingerprint"] != v1["data"]
    rows = registry_rows(root)
    assert [r["version"] for r in rows] == ["2", "1"]
    assert rows[0]["data"] == promotion["data"]["fingerprint"]
    report = (root / "reports" / "churn" / "report.md").read_text()
    assert promotion["data"]["fingerprint"] in report and "paired bootstrap" in report


def test_people_move_the_champion_and_the_trail_shows_it(living):
    root, _ = living
    before = {r["version"]: r["aliases"] for r in registry_rows(root)}
    champion = next(v for v, a in before.items() if "champion" in a)
    other = "1" if champion == "2" else "2"
    promoted = stages_cli(root, "promote", "churn", other, "--reason", "the course's pick")
    assert promoted.returncode == 0, promoted.stderr
    assert f"champion → v{other} (was v{champion})" in promoted.stdout
    back = stages_cli(root, "rollback", "churn", "--reason", "not better on Monday's data")
    assert back.returncode == 0 and f"champion → v{champion}" in back.stdout
    rows = {r["version"]: r for r in registry_rows(root)}
    assert "champion" in rows[champion]["aliases"]
    actions = [(e["action"], e["reason"]) for e in rows[champion]["audit"]]
    assert ("rollback", "not better on Monday's data") in actions
    assert ("promote (manual)", "the course's pick") in [
        (e["action"], e["reason"]) for e in rows[other]["audit"]
    ]
    text = stages_cli(root, "registry", "churn").stdout
    assert "rollback" in text and "the course's pick" in text

    compared = stages_cli(root, "compare", "churn", "1", "2")
    assert compared.returncode == 0, compared.stderr
    page = (root / "reports" / "churn" / "compare-1-2.html").read_text()
    assert "Per group" in page and "Where they disagree" in page
    result = json.loads((root / "reports" / "churn" / "compare-1-2.json").read_text())
    assert result["difference"]["items"] > 1300

    missing = stages_cli(root, "compare", "churn", "1", "7")
    assert missing.returncode == 2 and "no version 7" in missing.stderr


def test_an_experiment_override_is_registered_as_a_judged_challenger(living):
    root, _ = living
    params_before = (root / "params.yaml").read_text()
    result = dvc(root, "exp", "run", "--temp", "-S", "churn.train.catboost.0.depth=3")
    assert "train@churn" in stages_ran(result)
    assert (root / "params.yaml").read_text() == params_before  # the workspace is not edited
    newest = registry_rows(root)[0]
    assert newest["version"] == "3" and "challenger" in newest["aliases"]
    assert "catboost.0.depth 4→3" in newest["params"]
    assert newest["promotion"] in ("promoted to champion", "kept as challenger")
    assert "on the same" in newest["reason"]

    bad = dvc(root, "exp", "run", "--temp", "-S", "churn.train.catboost.0.depth=x", check=False)
    assert bad.returncode != 0
    assert "churn.train.catboost.0.depth" in bad.stderr + bad.stdout
