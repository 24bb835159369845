"""Any translator version scored on the current test split: corpus sacreBLEU of its beam-search
translations (what evaluate reports), resampled over sentences from per-sentence BLEU
statistics, with deltas by source length and the sentences two versions translate differently.

A registered version is decoded with the tokenizers logged beside it (its own vocabulary, not
the current preprocess's), so an old champion is scored as it was trained."""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from sacrebleu.metrics import BLEU

from stages.core import tracking
from stages.core.comparison import ItemScores, Unscorable
from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.core.training import resolve_device
from stages.nmt.decoding import decode_all
from stages.nmt.files import SPLITS_FILE
from stages.nmt.preprocess import TOKENIZER_FILES, UNK_ID, SplitData, encode, load_split

TOKENIZERS_ARTIFACT = "tokenizers"  # train logs tokenizer_*.json here, beside the model
# source length buckets in words: (lowest, highest) inclusive
LENGTH_BUCKETS = ((1, 4), (5, 6), (7, 9), (10, 14), (15, 24), (25, None))
# more unknown tokens than this share of a side's test tokens: the version's vocabulary does
# not cover the current data (another language direction, another corpus)
MAX_UNKNOWN_SHARE = 0.05


def bucket_label(low: int, high: int | None) -> str:
    return f"{low}+" if high is None else f"{low}-{high}"


def length_group(source: str) -> str:
    """The LENGTH_BUCKETS label of a source sentence (by words), as `bleu_by_length` buckets."""
    words = len(source.split())
    for low, high in LENGTH_BUCKETS:
        if words >= low and (high is None or words <= high):
            return bucket_label(low, high)
    return "0"


def corpus_metric() -> BLEU:
    """The metric `sacrebleu.corpus_bleu` builds with its defaults (13a, cased, exp smoothing)."""
    return BLEU(tokenize=BLEU.TOKENIZER_DEFAULT)


def bleu_statistics(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """[sentences, 2 + 2 * 4] sufficient statistics per sentence (hypothesis and reference
    length, matching and total n-grams): what sacrebleu's paired bootstrap sums."""
    stats = corpus_metric()._extract_corpus_statistics(list(hypotheses), [list(references)])
    return np.asarray(stats, dtype=np.int64).reshape(len(hypotheses), -1)


def item_scores(
    sources: Sequence[str], references: Sequence[str], hypotheses: Sequence[str]
) -> ItemScores:
    """Corpus sacreBLEU over any resample of the test sentences: the resampled rows of the
    per-sentence statistics summed, then scored as sacreBLEU scores a corpus."""
    if not len(hypotheses) == len(references) == len(sources):
        raise ValueError(
            f"{len(hypotheses)} translations for {len(sources)} sources, {len(references)} "
            "references"
        )
    stats = bleu_statistics(hypotheses, references)
    scorer = corpus_metric()

    def bleu(indices: np.ndarray) -> float:
        return float(scorer._compute_score_from_stats(stats[indices].sum(axis=0).tolist()).score)

    return ItemScores(
        metric=bleu,
        items=len(hypotheses),
        groups=[length_group(s) for s in sources],
        outcomes=list(hypotheses),
        truths=list(references),
        item_ids=list(sources),
    )


def registered_version(model_uri: str) -> tuple[str, str]:
    """`models:/<name>/<version>` -> (name, version)."""
    name, _, version = model_uri.removeprefix("models:/").partition("/")
    return name, version


def version_tokenizers(model_uri: str):
    """(source, target) tokenizers logged with the run that logged this version."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from tokenizers import Tokenizer

    _, version = registered_version(model_uri)
    run_id = tracking.version_run_id(model_uri)
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=TOKENIZERS_ARTIFACT, dst_path=folder
                )
            )
        except (MlflowException, OSError):
            local = Path(folder) / "missing"
        files = [local / TOKENIZER_FILES[side] for side in ("source", "target")]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise Unscorable(
                f"v{version} has no {', '.join(missing)} logged beside it (run {run_id}, "
                f"artifacts {TOKENIZERS_ARTIFACT}/)"
            )
        return tuple(Tokenizer.from_file(str(f)) for f in files)


def unknown_share(ids: list[list[int]]) -> float:
    tokens = sum(len(s) for s in ids)
    return sum(t == UNK_ID for s in ids for t in s) / tokens if tokens else 0.0


def check_direction(version: str, card: dict, direction: str | None) -> None:
    trained = card.get("direction")
    if trained and direction and trained != direction:
        raise Unscorable(f"v{version} translates {trained}, the current test split is {direction}")


def check_fits(version: str, network, tokenizers, test: SplitData) -> list[list[int]]:
    """The test sources as the version's own source ids, or Unscorable when its tokenizers do
    not belong to its network or its vocabulary does not cover the current data."""
    source_tokenizer, target_tokenizer = tokenizers
    sizes = (source_tokenizer.get_vocab_size(), target_tokenizer.get_vocab_size())
    embedded = (network.src_embedding.num_embeddings, network.tgt_embedding.num_embeddings)
    if sizes != embedded:
        raise Unscorable(
            f"v{version}'s logged tokenizers have {sizes[0]}/{sizes[1]} tokens, its network "
            f"{embedded[0]}/{embedded[1]}"
        )
    sources = encode(source_tokenizer, test.source)
    for side, ids in (("source", sources), ("target", encode(target_tokenizer, test.target))):
        share = unknown_share(ids)
        if share > MAX_UNKNOWN_SHARE:
            raise Unscorable(
                f"v{version}'s {side} vocabulary cannot encode the current test split: "
                f"{share:.0%} of its tokens are unknown"
            )
    return sources


def load_network(model_uri: str, version: str):
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.pytorch.load_model(model_uri, map_location="cpu")
    except (MlflowException, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Unscorable(f"v{version}'s network cannot be loaded: {first}") from None


def translate(network, sources: list[list[int]], target_tokenizer, params, device) -> list[str]:
    """Beam search as evaluate decodes: params are nmt.evaluate's (beam, length penalty)."""
    with torch.inference_mode():
        decoded = decode_all(
            network, sources, params.beam_size, params.length_penalty, params.batch_size, device
        )
    return target_tokenizer.decode_batch([d.tokens for d in decoded], skip_special_tokens=True)


def registered_scorer(
    ctx: StepContext, test: SplitData | None = None
) -> Callable[[str], ItemScores]:
    """`models:/nmt/<n>` -> its beam-search translations of the current test split, scored.
    `test`: the split already loaded by the caller (evaluate); else read once, when needed."""
    params = ctx.task_params.evaluate
    device = resolve_device(ctx.common.device)
    processed = ctx.paths.processed
    split = functools.cache(lambda: test if test is not None else load_split(processed, "test"))

    def score(model_uri: str) -> ItemScores:
        _, version = registered_version(model_uri)
        summary = processed / SPLITS_FILE
        direction = read_json(summary).get("direction") if summary.is_file() else None
        check_direction(version, tracking.model_card(model_uri), direction)
        tokenizers = version_tokenizers(model_uri)
        network = load_network(model_uri, version)
        data = split()
        sources = check_fits(version, network, tokenizers, data)
        hypotheses = translate(network, sources, tokenizers[1], params, device)
        return item_scores(data.source, data.target, hypotheses)

    return score
