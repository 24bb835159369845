"""How the flows read the DVC graph and the deployments: pure functions, no Prefect server."""

from __future__ import annotations

import importlib
import json
import re

import pytest
import yaml

from flows.graph import levels, needs_accelerator, read_graph, select
from flows.pipeline import failure_reason, metrics_markdown, stage_environment, threads_per_stage
from flows.resources import accelerator_limit, stages_take_the_gpu_slot
from tests.conftest import REPO


def test_levels_follow_the_dvc_graph_of_the_project(project):
    graph = read_graph(project)
    grouped = levels(graph)
    tasks = yaml.safe_load((project / "params.yaml").read_text())["tasks"]
    steps = ["source", "download", "validate", "preprocess", "train", "evaluate", "report"]
    assert grouped == [sorted(f"{step}@{t}" for t in tasks) for step in steps] + [["summary"]]
    position = {name: i for i, level in enumerate(grouped) for name in level}
    for name, stage in graph.items():
        assert all(position[up] < position[name] for up in stage.upstream), name


def test_a_task_flow_runs_its_own_stages_and_the_summary_after_them(project):
    selected = select(read_graph(project), "churn")
    assert levels(selected) == [
        ["source@churn"],
        ["download@churn"],
        ["validate@churn"],
        ["preprocess@churn"],
        ["train@churn"],
        ["evaluate@churn"],
        ["report@churn"],
        ["summary"],
    ]


def test_an_unknown_task_names_the_known_ones(project):
    with pytest.raises(ValueError, match=r"no stages for task 'chrun' \(tasks: churn, "):
        select(read_graph(project), "chrun")


def test_torch_training_needs_the_gpu_and_tabular_work_does_not(project):
    graph = read_graph(project)
    accelerated = sorted(name for name, stage in graph.items() if needs_accelerator(stage))
    assert "train@simpsons" in accelerated and "evaluate@simpsons" in accelerated
    assert "train@timeseries" in accelerated
    assert not any(name.endswith("@churn") or name == "summary" for name in accelerated)
    assert not any(name.startswith(("download", "validate", "preprocess")) for name in accelerated)


def test_the_gpu_limit_is_named_after_the_host_and_the_visible_gpu():
    assert accelerator_limit({"CUDA_VISIBLE_DEVICES": "1"}, "box") == "gpu-box-1"
    assert accelerator_limit({"CUDA_VISIBLE_DEVICES": "0,1"}, "box") == "gpu-box-0+1"
    assert accelerator_limit({}, "box") == "gpu-box-0"


def test_accelerated_stages_take_the_gpu_slot_only_where_there_is_a_gpu():
    def gpus(n):
        return lambda: n

    assert stages_take_the_gpu_slot({}, gpus(1))
    assert not stages_take_the_gpu_slot({}, gpus(0))  # CPU-only: they share the cores
    assert stages_take_the_gpu_slot({"ML_PIPELINES_GPU_SLOT": "on"}, gpus(0))
    assert not stages_take_the_gpu_slot({"ML_PIPELINES_GPU_SLOT": "off"}, gpus(2))
    with pytest.raises(ValueError, match=r"ML_PIPELINES_GPU_SLOT='yes': expected auto, on or off"):
        stages_take_the_gpu_slot({"ML_PIPELINES_GPU_SLOT": "yes"}, gpus(0))


def test_stages_side_by_side_share_the_cores_out_and_a_users_setting_wins(monkeypatch):
    assert threads_per_stage(cores=2, parallelism=2, stages=6) == 1
    assert threads_per_stage(cores=16, parallelism=4, stages=3) == 5
    assert threads_per_stage(cores=2, parallelism=2, stages=1) == 2  # alone: every core
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert stage_environment(1)["OMP_NUM_THREADS"] == "1"
    assert "OMP_NUM_THREADS" not in stage_environment()
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert stage_environment(1)["OMP_NUM_THREADS"] == "3"


DVC_FAILURE = [
    "Running stage 'validate@churn':",
    "> python -m stages validate churn",
    "error: train.csv: column 'tenure': 'abc' is not a number",
    "ERROR: failed to reproduce 'validate@churn': failed to run: python -m stages validate "
    "churn, exited with 2",
]


def test_a_user_error_is_recognised_from_dvc_output():
    reason, user_error = failure_reason(DVC_FAILURE, 255)
    assert user_error
    assert reason == "train.csv: column 'tenure': 'abc' is not a number"


def test_a_crash_or_a_temporary_failure_is_retryable():
    lines = [*DVC_FAILURE[:2], "Traceback (most recent call last):", "MemoryError"]
    lines.append(DVC_FAILURE[-1].replace("exited with 2", "exited with 75"))
    reason, user_error = failure_reason(lines, 255)
    assert not user_error
    assert reason.startswith("failed to reproduce 'validate@churn'")


def test_the_metrics_artifact_tables_each_tasks_judged_split(tmp_path):
    reports = tmp_path / "reports"
    (reports / "churn").mkdir(parents=True)
    (reports / "simpsons").mkdir()
    (reports / "churn" / "metrics.json").write_text(
        json.dumps(
            {
                "headline": {"metric": "roc_auc", "value": 0.849, "split": "holdout"},
                "holdout": {"logreg": {"roc_auc": 0.8467}, "ensemble": {"roc_auc": 0.849}},
                "cv": {"ignored": {"roc_auc": 0.1}},
            }
        )
    )
    (reports / "simpsons" / "metrics.json").write_text(
        json.dumps(
            {
                "headline": {"metric": "f1_micro", "value": 0.99, "split": "test"},
                "test": {"f1_micro": 0.99, "f1_macro": 0.91},
            }
        )
    )
    text = metrics_markdown(tmp_path, ["churn", "simpsons", "timeseries"])
    assert "## churn: roc_auc 0.8490 (holdout)" in text
    assert re.search(r"\| ensemble +\| +0\.8490 \|", text)
    assert "ignored" not in text
    assert "## simpsons: f1_micro 0.9900 (test)" in text and "0.9100" in text
    assert "## timeseries" in text and "no metrics.json" in text


def deployments() -> dict[str, dict]:
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return {d["name"]: d for d in config["deployments"]}


def test_every_task_has_a_deployment_on_the_right_pool():
    tasks = yaml.safe_load((REPO / "params.yaml").read_text())["tasks"]
    by_name = deployments()
    assert set(by_name) == {*tasks, "all"}
    for name in tasks:
        deployment = by_name[name]
        assert deployment["entrypoint"] == "flows/pipeline.py:task_pipeline"
        assert deployment["parameters"]["task"] == name
        package = importlib.import_module(f"stages.{name}")
        pool = "gpu" if getattr(package, "ACCELERATED_STEPS", ()) else "cpu"
        assert deployment["work_pool"]["name"] == pool, name
        env = deployment["work_pool"]["job_variables"]["env"]
        assert env["CUDA_VISIBLE_DEVICES"] == ("0" if pool == "gpu" else "")
    assert by_name["all"]["entrypoint"] == "flows/pipeline.py:full_pipeline"
    assert by_name["timeseries"]["schedules"][0]["cron"] == "0 2 * * *"
    assert by_name["churn"]["schedules"][0]["cron"] == "0 3 * * 0"


def test_deployment_entrypoints_are_flows():
    from prefect import Flow

    for deployment in deployments().values():
        path, _, name = deployment["entrypoint"].partition(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, name), Flow)
