"""The nmt task on real sentence pairs of another shape: Debian's Russian message catalogues of
command-line tools, as a Tatoeba `rus-eng/rus.txt` with an attribution column, through a `path`
source and the default Transformer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, copy_project, run_on_path
from tests.nmt.checks import assert_selected_by_validation_bleu
from tests.nmt.real_catalogs import write_tatoeba


@pytest.mark.slow
def test_system_tool_messages_are_translated_better_than_copying_them(tmp_path: Path):
    pairs = write_tatoeba(tmp_path / "corpus")
    assert pairs > 5000
    defaults = yaml.safe_load((REPO / "params.yaml").read_text())["nmt"]["train"]
    (transformer,) = [m for m in defaults["models"] if m["architecture"] == "transformer"]
    root = copy_project(tmp_path / "project")
    # the default 8 epochs (5: 4.4 BLEU); validation BLEU on 50 sentences, not 200, as there is
    # one model to pick: the same test scores, 9 s less
    train = {"models": [transformer], "epochs": 8, "val_bleu_sentences": 50}
    metrics = run_on_path(root, "nmt", tmp_path / "corpus", train=train)

    reports = root / "reports" / "nmt"
    facts = json.loads((reports / "validation.json").read_text())["facts"]
    assert facts["columns"] == "3 (english, russian, attribution)"
    assert facts["usable pairs"] == pairs and facts["malformed lines (skipped)"] == 0
    scores = assert_selected_by_validation_bleu(metrics, {transformer["name"]})
    # option names and numbers carry over, so copying the English already scores ~8 BLEU here;
    # the Transformer reaches ~11 BLEU and ~28 chrF (copying: ~8 chrF)
    copied = metrics["copy_source"]
    assert scores["beam"]["bleu"] > copied["bleu"] + 1, (scores, copied)
    assert scores["beam"]["chrf"] > 20 > copied["chrf"] * 2, (scores, copied)
    report = (reports / "report.md").read_text()
    assert f"Copying each source sentence unchanged scores {copied['bleu']:.2f}" in report
    assert "does not beat that" not in report
