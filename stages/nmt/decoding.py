"""What train, evaluate and translate share: padding token ids into batches, decoding many
sentences (greedy or beam, length-sorted batches, results in the input order), the saved models
and the scores — sacreBLEU and chrF on detokenized text, and the course's token BLEU."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sacrebleu
import torch
from torch import Tensor, nn

from stages.nmt.model import Decoded, beam_search, build_model, greedy_decode
from stages.nmt.preprocess import BOS_ID, EOS_ID, PAD_ID

MODELS_DIR = "models"  # models/nmt/models/<name>.pt
WORD_PUNCT = re.compile(r"\w+|[^\w\s]")


def pad(sequences: Sequence[Sequence[int]], prefix: int | None = None, suffix: int | None = None):
    """[B, max length] long tensor right-padded with PAD_ID, with an optional first / last id."""
    extra = [prefix] if prefix is not None else []
    tail = [suffix] if suffix is not None else []
    rows = [extra + list(s) + tail for s in sequences]
    out = torch.full((len(rows), max((len(r) for r in rows), default=1) or 1), PAD_ID)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def collate(batch: Sequence[tuple[list[int], list[int]]]) -> tuple[Tensor, Tensor, Tensor]:
    """(src, tgt_in = bos + target, tgt_out = target + eos), all [B, length] and padded."""
    sources, targets = zip(*batch, strict=True)
    return pad(sources), pad(targets, prefix=BOS_ID), pad(targets, suffix=EOS_ID)


@dataclass
class Translation:
    tokens: list[int]
    attention: Tensor  # [len(tokens), source length]
    finished: bool


def decode_all(
    model: nn.Module,
    sources: Sequence[Sequence[int]],
    beam_size: int = 1,
    length_penalty: float = 0.6,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> list[Translation]:
    """Every source sentence decoded (greedy when beam_size is 1), in length-sorted batches so
    that a batch stops early; returned in the input order."""
    order = sorted(range(len(sources)), key=lambda i: len(sources[i]))
    results: list[Translation | None] = [None] * len(sources)
    model.eval().to(device)
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        src = pad([sources[i] for i in chosen]).to(device)
        if beam_size == 1:
            out: Decoded = greedy_decode(model, src, BOS_ID, EOS_ID)
        else:
            out = beam_search(
                model, src, BOS_ID, EOS_ID, beam_size=beam_size, length_penalty=length_penalty
            )
        for i, tokens, attention, finished in zip(
            chosen, out.tokens, out.attention, out.finished, strict=True
        ):
            results[i] = Translation(tokens, attention, finished)
    return results  # type: ignore[return-value]


def load_models(models_dir: Path) -> dict[str, nn.Module]:
    """The networks train saved, by name, on the CPU in eval mode."""
    networks = {}
    for path in sorted((models_dir / MODELS_DIR).glob("*.pt")):
        saved = torch.load(path, map_location="cpu")
        network = build_model(saved["spec"], saved["src_vocab"], saved["tgt_vocab"], PAD_ID)
        network.load_state_dict(saved["state_dict"])
        networks[saved["name"]] = network.eval()
    return networks


def sacre_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacreBLEU (13a tokenization, cased) of detokenized text, 0-100."""
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def chrf(hypotheses: list[str], references: list[str]) -> float:
    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def word_punct(text: str) -> list[str]:
    """The course's tokens: lower-cased words and single punctuation marks (nltk's
    WordPunctTokenizer on lower-cased text)."""
    return WORD_PUNCT.findall(text.lower())


def token_bleu(hypotheses: list[str], references: list[str]) -> float:
    """The course's metric: corpus BLEU × 100 over `word_punct` tokens (uniform 4-gram weights,
    brevity penalty, no smoothing), as nltk's corpus_bleu computes it."""
    joined = [" ".join(word_punct(h)) for h in hypotheses]
    refs = [" ".join(word_punct(r)) for r in references]
    return float(
        sacrebleu.corpus_bleu(
            joined, [refs], tokenize="none", smooth_method="none", force=True
        ).score
    )
