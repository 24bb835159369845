"""The nmt task's steps: parsing the course and Tatoeba formats, the data gate naming bad lines,
the seeded 80/15/5 split, tokenizers fitted on the train split only, the course's token BLEU,
batching and decoding helpers, and the translate command before training."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from stages.nmt.decoding import decode_all, pad, token_bleu, word_punct
from stages.nmt.model import TransformerTranslator
from stages.nmt.params import PreprocessParams, Seq2SeqSpec, model_kwargs
from stages.nmt.preprocess import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    assign_splits,
    detokenize,
    encode,
    load_split,
    load_tokenizers,
    orient,
    pack,
    train_tokenizer,
    unpack,
)
from stages.nmt.schema import find_corpus, parse_text, read_corpus
from stages.nmt.train import BucketBatches, warmup_cosine
from tests.conftest import (
    copy_project,
    edit_params,
    error_lines,
    project_env,
    set_tasks,
    stages_cli,
)
from tests.nmt.checks import assert_selected_by_validation_bleu

# a 600-pair sample; no length cap, so the cached train split is the whole train split
SMALL = {"source": {"max_pairs": 600}, "preprocess": {"max_tokens": 1000}}


def write_corpus(folder: Path, lines: list[str], name: str = "data.txt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = [f"Open file number {i} now\tОткрыть файл номер {i} сейчас" for i in range(40)]


# ---------------------------------------------------------------------------------------------
# parsing


def test_two_and_three_column_lines_are_pairs_and_the_rest_is_counted(tmp_path):
    lines = [
        "Hello there, friend.\tПривет, друг.",  # 1: course format
        "",  # 2: blank
        "Go away now.\tУходи сейчас.\tCC-BY 2.0 (France) Attribution: tatoeba.org #1 (CK)",  # 3
        "no tab at all",  # 4: malformed
        "a\tb\tc\td",  # 5: malformed (4 columns)
        "   ",  # 6: blank
        "  Padded side  \t  Сторона с пробелами \r",  # 7: CRLF and spaces
        "Empty russian\t",  # 8: kept as a pair with an empty side (validation counts it)
    ]
    corpus = parse_text("\n".join(lines) + "\n", tmp_path / "data.txt")
    assert corpus.lines == 8
    assert corpus.blank == 2
    assert [n for n, _ in corpus.malformed] == [4, 5]
    assert corpus.pairs["line"].tolist() == [1, 3, 7, 8]
    assert corpus.pairs.iloc[1].tolist() == [3, "Go away now.", "Уходи сейчас."]
    assert corpus.pairs.iloc[2].tolist() == [7, "Padded side", "Сторона с пробелами"]
    assert corpus.pairs.iloc[3]["russian"] == ""


def test_tatoeba_files_are_recognised_as_three_columns(tmp_path):
    lines = [
        f"Go {i}.\tИди {i}.\tCC-BY 2.0 (France) Attribution: tatoeba.org #{i}" for i in range(5)
    ]
    corpus = parse_text("\n".join(lines), tmp_path / "rus.txt")  # no final newline
    assert corpus.columns == 3 and len(corpus.pairs) == 5 and corpus.lines == 5


def test_the_corpus_file_is_found_by_name_at_any_depth(tmp_path):
    write_corpus(tmp_path / "a" / "rus-eng", GOOD, "rus.txt")
    write_corpus(tmp_path / "a" / "rus-eng", ["about the data"], "_about.txt")
    assert find_corpus(tmp_path).name == "rus.txt"
    write_corpus(tmp_path / "deeper" / "still", GOOD, "data.txt")
    assert find_corpus(tmp_path).name == "data.txt"  # the course file wins

    other = tmp_path / "other"
    write_corpus(other, GOOD, "pairs.txt")
    write_corpus(other, ["x"], "_about.txt")
    assert find_corpus(other).name == "pairs.txt"  # the only candidate
    write_corpus(other, GOOD, "more.txt")
    with pytest.raises(Exception, match="2 .txt files"):
        find_corpus(other)


def test_a_byte_order_mark_is_dropped(tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes("\ufeffOne two three\tРаз два три\n".encode())
    assert read_corpus(tmp_path).pairs.iloc[0]["english"] == "One two three"


# ---------------------------------------------------------------------------------------------
# the steps through the CLI, on small files


def project_with_source(tmp_path: Path, folder: Path, **sections) -> Path:
    root = copy_project(tmp_path / "project")
    source = {"kind": "path", "path": str(folder)}
    set_tasks(root, ["nmt"], nmt={"source": source, **sections})
    return root


def test_a_file_that_is_not_utf8_is_one_error_line_naming_it(tmp_path):
    folder = tmp_path / "cp1251"
    folder.mkdir()
    text = "Open the file now\tОткрыть файл сейчас\nSave it\tСохранить\n"
    (folder / "data.txt").write_bytes(text.encode("cp1251"))
    root = project_with_source(tmp_path, folder)
    assert stages_cli(root, "download", "nmt").returncode == 0
    result = stages_cli(root, "validate", "nmt")
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result)
    assert "data.txt: not UTF-8 text: line 1, byte offset 18" in line
    assert "Traceback" not in result.stderr


def test_validation_names_the_lines_that_fail_and_counts_skipped_ones(tmp_path):
    lines = [*GOOD, "Otkryt the file\tOtkryt fajl", "one column only", *GOOD[:5]]
    folder = tmp_path / "data"
    write_corpus(folder, lines)
    root = project_with_source(
        tmp_path, folder, validate={"min_pairs": 10, "max_skipped_share": 0.05}
    )
    assert stages_cli(root, "download", "nmt").returncode == 0
    result = stages_cli(root, "validate", "nmt")
    assert result.returncode == 0, result.stderr  # within the allowed shares
    facts = json.loads((root / "reports/nmt/validation.json").read_text())["facts"]
    assert facts["malformed lines (skipped)"] == 1
    assert facts["duplicate pairs (dropped by preprocess)"] == 5
    assert facts["usable pairs"] == 46

    edit_params(root, nmt={"validate": {"min_cyrillic_share": 1.0, "max_skipped_share": 0.0}})
    result = stages_cli(root, "validate", "nmt")
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "'line 42: one column only'" in line  # the malformed line, by number
    failed = json.loads((root / "reports/nmt/validation.failed.json").read_text())
    checks = failed["tables"]["pairs"]["expectations"]
    (cyrillic,) = [c for c in checks if c["column"] == "no_cyrillic"]
    assert cyrillic["sample"] == ["line 41: Otkryt the file | Otkryt fajl"]


def test_a_zipped_tatoeba_file_served_over_http_is_downloaded_checked_and_split(project, server):
    """The real route: a url with its sha256, Tatoeba's rus-eng.zip holding rus.txt (three
    columns: english, russian, attribution) beside its readme; a malformed line is skipped."""
    root, base, _ = server
    attribution = "CC-BY 2.0 (France) Attribution: tatoeba.org #1 (CM) & #2 (Sch)"
    lines = [f"{line}\t{attribution}" for line in GOOD] + ["a line without tabs"]
    archive = root / "rus-eng.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("rus.txt", "\n".join(lines) + "\n")
        zf.writestr("_about.txt", "Tatoeba sentence pairs\n")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    source = {"kind": "url", "url": f"{base}/rus-eng.zip", "sha256": digest}
    set_tasks(
        project,
        ["nmt"],
        nmt={"source": source, "validate": {"min_pairs": 20, "max_skipped_share": 0.05}},
    )
    for step in ("download", "validate", "preprocess"):
        result = stages_cli(project, step, "nmt")
        assert result.returncode == 0, f"{step}: {result.stderr}"

    validation = json.loads((project / "reports/nmt/validation.json").read_text())
    assert "rus.txt" in json.dumps(validation)
    assert "line 41" in json.dumps(validation)  # the malformed line, skipped and named
    processed = project / "data/processed/nmt"
    sizes = {split: len(load_split(processed, split).src) for split in ("train", "val", "test")}
    assert sum(sizes.values()) == len(GOOD)
    assert sizes["train"] > sizes["val"] > 0


@pytest.fixture(scope="module")
def preprocessed(tmp_path_factory) -> Path:
    """A clone after download, validate and preprocess of a 600-pair sample of the builtin
    corpus (shared: tests that change it work on copies)."""
    root = copy_project(tmp_path_factory.mktemp("nmt") / "project")
    set_tasks(root, ["nmt"], nmt=SMALL)
    for step in ("download", "validate", "preprocess"):
        result = stages_cli(root, step, "nmt")
        assert result.returncode == 0, f"{step}: {result.stderr}"
    return root


def test_the_builtin_source_is_the_course_format(preprocessed):
    lines = (preprocessed / "data/raw/nmt/data.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 600
    assert all(len(line.split("\t")) == 2 for line in lines)


def test_the_split_is_80_15_5_and_the_cache_matches_it(preprocessed):
    processed = preprocessed / "data/processed/nmt"
    summary = json.loads((processed / "splits.json").read_text())
    assigned = summary["assigned"]
    assert assigned == {"train": 480, "val": 90, "test": 30}
    assert summary["counts"] == summary["assigned"]
    assert summary["direction"] == "en-ru"
    test = load_split(processed, "test")
    assert len(test) == assigned["test"] and len(test.src) == len(test.tgt) == len(test.target)
    source_tokenizer, _ = load_tokenizers(processed)
    known = [i for i, ids in enumerate(test.src) if UNK_ID not in ids]  # characters seen in train
    assert len(known) >= 20
    assert detokenize(source_tokenizer, [test.src[i] for i in known]) == [
        test.source[i] for i in known
    ]
    train = load_split(processed, "train")
    assert not set(train.source) & set(test.source)


def test_tokenizers_are_fitted_on_the_train_split_only(preprocessed):
    processed = preprocessed / "data/processed/nmt"
    train = load_split(processed, "train").source
    held_out = load_split(processed, "val").source + load_split(processed, "test").source
    source_tokenizer, _ = load_tokenizers(processed)
    seen = "▁" + "▁".join(" ".join(train).split())  # the training text as Metaspace sees it

    def pieces_not_seen(tokenizer) -> set[str]:
        return {t for t in tokenizer.get_vocab() if not t.startswith("[") and t not in seen}

    assert pieces_not_seen(source_tokenizer) == set()
    # the same tokenizer fitted on every split would hold pieces of held-out sentences
    params = PreprocessParams()
    everything = train_tokenizer(train + held_out, params.vocab_size, params.min_frequency, False)
    assert pieces_not_seen(everything)


def test_round_trip_detokenization_is_faithful():
    texts = [
        "Failed to connect: check the host, port (8123) and the API key!",
        "Не удалось подключиться — проверьте «адрес» и ключ API.",
    ]
    tokenizer = train_tokenizer(texts * 3, vocab_size=200, min_frequency=1, lowercase=False)
    ids = encode(tokenizer, texts)
    assert detokenize(tokenizer, ids) == texts
    assert tokenizer.token_to_id("[PAD]") == PAD_ID and tokenizer.token_to_id("[EOS]") == EOS_ID
    assert unpack(pack(ids)) == ids


def test_the_ru_en_direction_swaps_the_sides(preprocessed, tmp_path):
    root = Path(shutil.copytree(preprocessed, tmp_path / "project", symlinks=True))
    edit_params(root, nmt={"preprocess": {"direction": "ru-en"}})
    result = stages_cli(root, "preprocess", "nmt")
    assert result.returncode == 0, result.stderr
    processed = root / "data/processed/nmt"
    pairs = {
        (source, target)
        for name in ("train", "val", "test")
        for split in [load_split(preprocessed / "data/processed/nmt", name)]
        for source, target in zip(split.source, split.target, strict=True)
    }
    after = load_split(processed, "test")
    assert after.source and all(
        (target, source) in pairs for source, target in zip(after.source, after.target, strict=True)
    )
    summary = json.loads((processed / "splits.json").read_text())
    assert (summary["source_language"], summary["target_language"]) == ("ru", "en")


def test_the_split_is_seeded_and_keeps_each_source_sentence_in_one_split():
    frame = pd.DataFrame(
        {
            "line": range(1003),
            "source": [f"sentence {i}" for i in range(1000)] + ["sentence 7"] * 3,
            "target": [f"предложение {i}" for i in range(1003)],
        }
    )
    params = PreprocessParams()
    split = assign_splits(frame, params, seed=42)
    distinct = split[:1000].value_counts().to_dict()
    assert distinct == {"train": 800, "val": 150, "test": 50}
    assert split[1000:].tolist() == [split[7]] * 3
    grown = pd.concat([frame, frame.assign(source=frame["source"] + " more")])
    moved = assign_splits(grown, params, seed=42)[: len(frame)] != split
    assert moved.sum() < 0.05 * len(frame)  # new data: only a few at the boundaries move
    assert split.equals(assign_splits(frame, params, seed=42))
    assert not split.equals(assign_splits(frame, params, seed=43))


def test_orient_drops_empty_sides_and_repeats_and_lowercases_on_request():
    pairs = pd.DataFrame(
        {
            "line": [1, 2, 3, 4],
            "english": ["Open It", "Open It", "Close it", ""],
            "russian": ["Открыть", "Открыть", "Закрыть", "Пусто"],
        }
    )
    frame = orient(pairs, "ru-en", lowercase=True)
    assert frame.to_dict("list") == {
        "line": [1, 3],
        "source": ["открыть", "закрыть"],
        "target": ["open it", "close it"],
    }


# ---------------------------------------------------------------------------------------------
# metrics, batching, decoding


def test_token_bleu_is_the_course_corpus_bleu_over_word_punct_tokens():
    assert word_punct("The cat's mat.") == ["the", "cat", "'", "s", "mat", "."]
    hypothesis, reference = "The cat sat on the mat.", "the cat sat on a mat."
    # clipped n-gram precisions 6/7, 4/6, 2/5, 1/4; equal lengths: no brevity penalty
    expected = 100 * (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25
    assert token_bleu([hypothesis], [reference]) == pytest.approx(expected, abs=1e-6)
    # a shorter hypothesis pays the brevity penalty exp(1 - r / c)
    short = token_bleu(["the cat sat on the"], [reference])
    precisions = 4 / 5 * 3 / 4 * 2 / 3 * 1 / 2
    assert short == pytest.approx(100 * precisions**0.25 * math.exp(1 - 7 / 5), abs=1e-6)
    assert token_bleu(["nothing alike here at all"], [reference]) == 0.0


def test_bucketed_batches_cover_every_sentence_once_with_similar_lengths():
    lengths = [(i * 7919) % 60 + 1 for i in range(1000)]
    sampler = BucketBatches(lengths, batch_size=32, shuffle=True, seed=3)
    batches = sampler.batches()
    assert len(batches) == len(sampler) == 32
    assert sorted(i for b in batches for i in b) == list(range(1000))
    spread = [max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches]
    assert max(spread) <= 3
    assert sampler.batches() == batches
    sampler.set_epoch(1)
    assert sampler.batches() != batches


def test_the_learning_rate_warms_up_then_decays_to_zero():
    factors = [warmup_cosine(step, 10, 110) for step in range(111)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[60] == pytest.approx(0.5) and factors[110] == pytest.approx(0.0)


def test_each_model_may_have_its_own_schedule_and_the_rest_is_its_shape():
    lstm = Seq2SeqSpec(
        name="lstm", architecture="seq2seq", learning_rate=5e-3, epochs=16, warmup_steps=0
    )
    assert (lstm.learning_rate, lstm.epochs, lstm.warmup_steps) == (5e-3, 16, 0)
    assert set(model_kwargs(lstm)) == {
        "architecture",
        "embedding",
        "hidden",
        "layers",
        "dropout",
        "attention",
        "input_feeding",
    }
    assert Seq2SeqSpec(name="x", architecture="seq2seq").warmup_steps is None  # train's


def test_decoding_in_length_sorted_batches_keeps_the_input_order():
    torch.manual_seed(0)
    model = TransformerTranslator(
        20, 20, PAD_ID, d_model=16, heads=2, encoder_layers=1, decoder_layers=1, feedforward=32
    ).eval()
    sources = [[5, 6, 7, 8, 9, 10], [4], [7, 7, 8], [11, 12, 13, 14]]
    together = decode_all(model, sources, beam_size=1, batch_size=2)
    alone = [decode_all(model, [s], beam_size=1)[0] for s in sources]
    assert [t.tokens for t in together] == [t.tokens for t in alone]
    assert [t.attention.shape[1] for t in together] == [6, 1, 3, 4]
    beams = decode_all(model, sources, beam_size=3, batch_size=3)
    assert len(beams) == 4
    assert pad([[1, 2], [3]], prefix=BOS_ID).tolist() == [[BOS_ID, 1, 2], [BOS_ID, 3, PAD_ID]]


def test_translate_before_training_is_one_error_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "stages.nmt.translate", "Open the file", "--root", str(tmp_path)],
        capture_output=True,
        text=True,
        env=project_env(),
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "has not been trained yet" in line and "selection.json" in line
    assert result.stdout == ""


# ---------------------------------------------------------------------------------------------
# the whole task on a small sample, through the CLI as DVC runs it

TINY_MODELS = {
    "epochs": 2,
    "batch_size": 32,
    "warmup_steps": 5,
    "val_bleu_sentences": 20,
    "models": [
        {"name": "lstm", "architecture": "seq2seq", "embedding": 16, "hidden": 16},
        {
            "name": "transformer",
            "architecture": "transformer",
            "d_model": 16,
            "heads": 2,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "feedforward": 32,
        },
    ],
}


@pytest.mark.slow
def test_tiny_models_train_evaluate_report_and_translate(preprocessed, tmp_path):
    root = Path(shutil.copytree(preprocessed, tmp_path / "project", symlinks=True))
    edit_params(root, nmt={"train": TINY_MODELS, "evaluate": {"beam_size": 2}})
    for step in ("train", "evaluate", "report"):
        result = stages_cli(root, step, "nmt")
        assert result.returncode == 0, f"{step}: {result.stderr}"

    reports = root / "reports" / "nmt"
    metrics = json.loads((reports / "metrics.json").read_text())
    assert_selected_by_validation_bleu(metrics, {"lstm", "transformer"})
    for scores in metrics["test"].values():
        assert set(scores) == {"greedy", "beam"}
        assert set(scores["beam"]) == {"bleu", "chrf", "token_bleu"}
    submission = pd.read_csv(reports / "submission.csv", keep_default_na=False)
    assert list(submission.columns) == ["source", "reference", "greedy", "beam"]
    assert len(submission) == metrics["test_sentences"] == 30
    html = (reports / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3
    assert json.loads((reports / "promotion.json").read_text())["promoted"] is True
    history = pd.read_csv(root / "models/nmt/history.csv")
    assert {"train_loss", "val_loss", "val_bleu"} <= set(history.columns)
    assert len(history) == 4  # 2 models x 2 epochs

    result = subprocess.run(
        [sys.executable, "-m", "stages.nmt.translate", "--root", str(root), "--beam", "2"],
        input="Failed to connect\nOpen the settings page\n",
        capture_output=True,
        text=True,
        env=project_env(),
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_the_report_warns_when_the_model_does_not_beat_copying_the_source():
    from stages.nmt.report import copy_baseline

    metrics = {"selected": "t", "test": {"t": {"beam": {"bleu": 7.9}}}}
    metrics["copy_source"] = {"bleu": 8.2}
    assert "8.20 sacreBLEU" in copy_baseline(metrics)
    assert "does not beat that: it has not learned" in copy_baseline(metrics)
    metrics["test"]["t"]["beam"]["bleu"] = 10.0
    assert "does not beat" not in copy_baseline(metrics)
    assert copy_baseline({"selected": "t", "test": {}}) == ""  # metrics of older versions
