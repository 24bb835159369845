from pathlib import Path

import pytest
import yaml

from stages.core.errors import UserError
from stages.core.params import load_params, parse_params
from tests.conftest import REPO, edit_params, error_lines, stages_cli


def default_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_the_shipped_params_file_is_valid():
    params = load_params(REPO / "params.yaml")
    assert "churn" in params.tasks
    assert params.task("churn").train.cv.folds >= 2


def expect_error(raw: dict) -> str:
    with pytest.raises(UserError) as caught:
        parse_params(raw)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_unknown_nested_key_names_the_dotted_path_and_the_allowed_keys():
    raw = default_params()
    raw["churn"]["train"]["cv"]["foldz"] = 3
    message = expect_error(raw)
    assert "churn.train.cv.foldz: unknown key" in message
    assert "folds, repeats" in message


def test_unknown_key_inside_a_list_item():
    raw = default_params()
    raw["churn"]["train"]["catboost"][1]["dept"] = 5
    message = expect_error(raw)
    assert "churn.train.catboost.1.dept: unknown key" in message
    assert "depth" in message


def test_mistyped_value_names_key_expected_type_and_value():
    raw = default_params()
    raw["churn"]["train"]["cv"]["folds"] = "five"
    message = expect_error(raw)
    assert message.startswith("params.yaml: churn.train.cv.folds: Input should be a valid integer")
    assert "'five'" in message


@pytest.mark.parametrize("task", ["segmentation", "detection", "nmt"])
def test_two_models_of_one_name_are_an_error(task):
    """Model names name the nested MLflow runs and the saved files, so they must differ."""
    raw = default_params()
    models = raw[task]["train"]["models"]
    models.append(dict(models[0]))
    message = expect_error(raw)
    assert f"{task}.train: " in message and "model names must be unique" in message


def test_unknown_top_level_key_and_unknown_task():
    raw = default_params()
    raw["chrun"] = {}
    assert "chrun: unknown key" in expect_error(raw)
    raw = default_params()
    raw["tasks"].append("nosuchtask")
    raw["nosuchtask"] = {}
    assert "unknown task 'nosuchtask'" in expect_error(raw)


def test_url_source_needs_a_url_and_a_checksum_is_optional():
    raw = default_params()
    raw["churn"]["source"] = {"kind": "url", "sha256": "0" * 64}
    assert "kind 'url' needs 'url'" in expect_error(raw)
    raw["churn"]["source"] = {"kind": "url", "url": "http://127.0.0.1/x.zip"}
    assert parse_params(raw).task("churn").source.sha256 is None  # followed: re-checked each run


def test_cli_fails_in_one_line_before_any_work(project: Path):
    edit_params(project, churn={"train": {"learning_rate": 0.1}})
    result = stages_cli(project, "train", "churn")
    assert result.returncode == 2
    assert error_lines(result) == [
        "error: params.yaml: churn.train.learning_rate: unknown key (expected one of: cv, logreg, "
        "random_forests, catboost, ensemble, greedy_rounds)"
    ]
    assert "Traceback" not in result.stderr
    assert not (project / "models").exists()
