"""A translator version scored on the current test split: corpus sacreBLEU from per-sentence
statistics (equal to sacrebleu's own on every resample), and a registered version decoded with
the tokenizers logged beside it (a tiny real MLflow store, untrained tiny networks)."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import numpy as np
import pytest
import sacrebleu
import torch

from stages.core import tracking
from stages.core.comparison import Unscorable, group_deltas, paired_difference
from stages.core.context import StepContext
from stages.core.fsio import dump_json
from stages.core.params import parse_params
from stages.nmt.corpus import load_pairs
from stages.nmt.decoding import decode_all
from stages.nmt.evaluate import bleu_by_length
from stages.nmt.files import SPLITS_FILE
from stages.nmt.model import build_model
from stages.nmt.preprocess import (
    PAD_ID,
    TOKENIZER_FILES,
    encode,
    load_tokenizers,
    pack,
    train_tokenizer,
)
from stages.nmt.scoring import TOKENIZERS_ARTIFACT, item_scores, length_group, registered_scorer
from tests.nmt.test_task import TINY_MODELS

PAIRS = load_pairs()
# the suite's tiny Transformer, without its name
TINY = {k: v for k, v in TINY_MODELS["models"][1].items() if k != "name"} | {"dropout": 0.0}
BEAM = {"beam_size": 2, "length_penalty": 0.6, "batch_size": 16}


def system_output(references: list[str], seed: int = 0) -> list[str]:
    """Hypotheses of varying quality: references with words dropped, swapped or replaced."""
    rng = np.random.default_rng(seed)
    out = []
    for reference in references:
        words = reference.split()
        kept = [w for w in words if rng.random() > 0.2] or words[:1]
        if len(kept) > 2 and rng.random() < 0.3:
            kept[0], kept[1] = kept[1], kept[0]
        if rng.random() < 0.1:
            kept = ["Неверно"]
        out.append(" ".join(kept))
    return out


def test_full_set_bleu_is_sacrebleus_corpus_bleu_and_so_is_every_resample():
    chosen = PAIRS[:740]  # the size of the builtin corpus's test split
    sources = [english for english, _, _ in chosen]
    references = [russian for _, russian, _ in chosen]
    hypotheses = system_output(references)
    scores = item_scores(sources, references, hypotheses)
    expected = sacrebleu.corpus_bleu(hypotheses, [references]).score
    assert 5 < expected < 95
    assert abs(scores.value() - expected) < 1e-6

    rng = np.random.default_rng(1)
    for _ in range(5):
        rows = rng.integers(0, len(hypotheses), len(hypotheses))  # with repeats
        again = sacrebleu.corpus_bleu(
            [hypotheses[i] for i in rows], [[references[i] for i in rows]]
        )
        assert abs(scores.metric(rows) - again.score) < 1e-6

    # groups are the length buckets of evaluate's bleu_by_length, with the same BLEU
    table = bleu_by_length(sources, references, {"model": hypotheses})
    per_group = group_deltas(scores, scores)
    assert set(per_group) == set(table.index)
    for bucket, row in table.iterrows():
        assert per_group[bucket]["items"] == row["sentences"]
        assert abs(per_group[bucket]["a"] - row["model"]) < 1e-6
    assert scores.outcomes == hypotheses and scores.truths == references
    assert scores.item_ids == sources

    other = item_scores(sources, references, system_output(references, seed=2))
    started = time.perf_counter()
    difference = paired_difference(scores, other, "bleu", "maximize", 1000, 0.95, 0)
    seconds = time.perf_counter() - started
    print(f"1000 paired resamples of {scores.items} sentences: {seconds:.2f} s")
    assert difference.ci_low <= difference.difference <= difference.ci_high
    assert seconds < 20


def test_length_groups():
    assert [length_group(s) for s in ["", "One", "a b c d e", " ".join("w" * 30)]] == [
        "0",
        "1-4",
        "5-6",
        "25+",
    ]


# ---------------------------------------------------------------------------------------------
# registered versions


def fit_tokenizers(folder: Path, pairs, vocab_size: int) -> tuple:
    folder.mkdir(parents=True, exist_ok=True)
    tokenizers = []
    for side, texts in (("source", [p[0] for p in pairs]), ("target", [p[1] for p in pairs])):
        tokenizer = train_tokenizer(texts, vocab_size, 1, False)
        tokenizer.save(str(folder / TOKENIZER_FILES[side]))
        tokenizers.append(tokenizer)
    return tuple(tokenizers)


def write_processed(processed: Path, test_pairs, tokenizers, direction: str = "en-ru") -> None:
    """What preprocess leaves for evaluate: test.pt (ids of the current tokenizers) and the
    split summary."""
    source, target = [p[0] for p in test_pairs], [p[1] for p in test_pairs]
    cached = {
        "src": pack(encode(tokenizers[0], source)),
        "tgt": pack(encode(tokenizers[1], target)),
        "source": source,
        "target": target,
        "line": list(range(len(source))),
    }
    torch.save(cached, processed / "test.pt")
    (processed / SPLITS_FILE).write_text(dump_json({"direction": direction, "lowercase": False}))


def network_for(tokenizers, seed: int = 0):
    torch.manual_seed(seed)
    sizes = [t.get_vocab_size() for t in tokenizers]
    return build_model(TINY, sizes[0], sizes[1], PAD_ID).eval()


def register(root: Path, network, tokenizer_dir: Path | None, card: dict | None = None) -> str:
    """A version as nmt's train registers it: the pickled network, its tokenizers, its card."""
    with tracking.task_run("nmt", "train@nmt", root, []) as run:
        info = mlflow.pytorch.log_model(
            network, name="model", serialization_format="pickle", pip_requirements=["torch"]
        )
        if tokenizer_dir is not None:
            for path in sorted(tokenizer_dir.glob("tokenizer_*.json")):
                mlflow.log_artifact(str(path), artifact_path=TOKENIZERS_ARTIFACT)
        if card is not None:
            mlflow.log_dict(card, tracking.MODEL_CARD)
    version = tracking.register_challenger("nmt", info.model_uri, run.info.run_id)
    return f"models:/nmt/{version.version}"


def beam_translations(network, tokenizers, sources: list[str]) -> list[str]:
    with torch.inference_mode():
        decoded = decode_all(
            network,
            encode(tokenizers[0], sources),
            BEAM["beam_size"],
            BEAM["length_penalty"],
            BEAM["batch_size"],
        )
    return tokenizers[1].decode_batch([d.tokens for d in decoded], skip_special_tokens=True)


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch) -> StepContext:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "data" / "processed" / "nmt").mkdir(parents=True)
    tracking.configure(tmp_path)
    params = parse_params(
        {
            "tasks": ["nmt"],
            "common": {"device": "cpu"},
            "nmt": {"train": {"models": [{"name": "tiny", **TINY}]}, "evaluate": BEAM},
        }
    )
    yield StepContext("nmt", "evaluate", tmp_path, params)
    mlflow.set_tracking_uri(None)


TRAIN, TEST = PAIRS[:300], PAIRS[300:330]


def test_a_version_is_decoded_with_its_own_tokenizers_not_the_current_ones(ctx, tmp_path):
    processed = ctx.paths.processed
    old_dir = tmp_path / "v1-tokenizers"
    old = fit_tokenizers(old_dir, TRAIN, 400)
    network = network_for(old)
    uri = register(ctx.root, network, old_dir, {"direction": "en-ru"})

    # the data has moved on: a new preprocess fitted other tokenizers (another vocabulary)
    current = fit_tokenizers(processed, PAIRS[1000:1400], 250)
    write_processed(processed, TEST, current)
    assert [t.get_vocab_size() for t in load_tokenizers(processed)] != [
        t.get_vocab_size() for t in old
    ]
    scores = registered_scorer(ctx)(uri)
    sources, references = [p[0] for p in TEST], [p[1] for p in TEST]
    expected = beam_translations(network, old, sources)
    assert scores.outcomes == expected
    assert scores.items == len(TEST) and scores.truths == references
    assert scores.value() == pytest.approx(
        sacrebleu.corpus_bleu(expected, [references]).score, abs=1e-6
    )


def test_a_version_without_its_tokenizers_is_unscorable(ctx, tmp_path):
    tokenizers = fit_tokenizers(ctx.paths.processed, TRAIN, 400)
    write_processed(ctx.paths.processed, TEST, tokenizers)
    uri = register(ctx.root, network_for(tokenizers), None)
    with pytest.raises(Unscorable, match="v1 has no tokenizer_source.json, tokenizer_target.json"):
        registered_scorer(ctx)(uri)


def test_a_version_for_the_other_direction_is_unscorable(ctx):
    tokenizers = fit_tokenizers(ctx.paths.processed, TRAIN, 400)
    write_processed(ctx.paths.processed, TEST, tokenizers)
    uri = register(ctx.root, network_for(tokenizers), ctx.paths.processed, {"direction": "ru-en"})
    with pytest.raises(Unscorable, match="v1 translates ru-en, the current test split is en-ru"):
        registered_scorer(ctx)(uri)


def test_a_vocabulary_that_cannot_encode_the_current_data_is_unscorable(ctx, tmp_path):
    """No card (an older version): the version's source tokenizer knows only Cyrillic, the
    current test sources are English."""
    old_dir = tmp_path / "old"
    cyrillic = [("один два три", "раз два"), ("четыре пять шесть", "семь восемь")] * 5
    old = fit_tokenizers(old_dir, cyrillic, 100)
    current = fit_tokenizers(ctx.paths.processed, TRAIN, 400)
    write_processed(ctx.paths.processed, TEST, current)
    uri = register(ctx.root, network_for(old), old_dir)
    with pytest.raises(Unscorable, match=r"v1's source vocabulary cannot encode .* unknown"):
        registered_scorer(ctx)(uri)


def test_a_version_whose_network_files_are_gone_is_unscorable(ctx):
    tokenizers = fit_tokenizers(ctx.paths.processed, TRAIN, 400)
    write_processed(ctx.paths.processed, TEST, tokenizers)
    uri = register(ctx.root, network_for(tokenizers), ctx.paths.processed)
    (weights,) = (ctx.root / "mlruns").rglob("model.pth")
    weights.unlink()
    with pytest.raises(Unscorable, match="v1's network cannot be loaded"):
        registered_scorer(ctx)(uri)
