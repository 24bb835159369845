"""The time-series task with its real default params, from the session's `dvc repro`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import mlflow
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

MODELS = {"seasonal_naive", "sarimax", "prophet", "rnn", "catboost"}


def metrics(root: Path) -> dict:
    return json.loads((root / "reports" / "timeseries" / "metrics.json").read_text())


def test_the_selected_model_beats_seasonal_naive_by_a_fifth(pipeline: Path):
    scores = metrics(pipeline)
    test = scores["test"]
    assert set(test) == MODELS
    best = scores["best_model"]
    assert best != "seasonal_naive"
    assert scores["headline"] == {
        "metric": "rmsle",
        "value": test[best]["rmsle"],
        "split": "test",
        "model": best,
    }
    assert test[best]["rmsle"] <= 0.8 * test["seasonal_naive"]["rmsle"]
    # nobody beats the noise the generator put in
    assert scores["irreducible_rmsle"] * 0.9 < test[best]["rmsle"]
    for name in MODELS - {"seasonal_naive"}:
        assert test[name]["rmsle"] < test["seasonal_naive"]["rmsle"], name


def test_selection_used_validation_not_test(pipeline: Path):
    scores = metrics(pipeline)
    valid = {m: s["rmsle"] for m, s in scores["valid"].items()}
    assert scores["best_model"] == min(valid, key=valid.get)


def test_submission_covers_test_csv(pipeline: Path):
    submission = pd.read_csv(pipeline / "reports" / "timeseries" / "submission.csv")
    test = pd.read_csv(pipeline / "data" / "raw" / "timeseries" / "test.csv")
    assert submission["id"].tolist() == test["id"].tolist()
    assert submission["sales"].ge(0).all() and submission["sales"].gt(0).mean() > 0.5


def test_report_and_plots(pipeline: Path):
    reports = pipeline / "reports" / "timeseries"
    html = (reports / "report.html").read_text()
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', html)) == 4
    assert not re.search(r'src="https?://|<link|<script', html)
    assert "above the irreducible error" in html
    per_family = pd.read_csv(reports / "plots" / "error_by_family.csv", index_col=0)
    assert "LIQUOR,WINE,BEER" in per_family.index and set(per_family.columns) == MODELS
    summary = json.loads((pipeline / "reports" / "summary.json").read_text())
    assert "timeseries" in summary and summary["timeseries"]["metric"] == "rmsle"


def test_registry_holds_the_selected_model(pipeline: Path):
    mlflow.set_tracking_uri(f"sqlite:///{pipeline / 'mlflow.db'}")
    try:
        client = mlflow.MlflowClient()
        champion = client.get_model_version_by_alias("timeseries", "champion")
        assert float(champion.tags["metric.rmsle"]) == pytest.approx(
            metrics(pipeline)["headline"]["value"]
        )
        run = client.get_run(champion.run_id)
        assert run.data.params["best"] == metrics(pipeline)["best_model"]
        children = client.search_runs(
            [run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'"
        )
        assert {r.info.run_name for r in children} == MODELS
        model = mlflow.pyfunc.load_model("models:/timeseries@champion")
        future = pd.read_parquet(pipeline / "data" / "processed" / "timeseries" / "future.parquet")
        predicted = model.predict(future.head(40))
        assert len(predicted) == 40 and (predicted >= 0).all()
    finally:
        mlflow.set_tracking_uri(None)
