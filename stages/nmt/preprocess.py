"""preprocess: usable pairs without exact repeats, oriented by `direction` (en→ru by default),
split 80/15/5 with the common seed (all translations of one source sentence in the same split,
so a test sentence is never seen in training), one BPE tokenizer per language trained on the
train split only, and every split cached as token ids next to its raw sentences.

The tokenizers (Hugging Face `tokenizers`: BPE over a Metaspace pre-tokenizer, specials
[PAD]=0, [BOS]=1, [EOS]=2, [UNK]=3) decode back to real text, so BLEU is computed on detokenized
sentences exactly as sacreBLEU expects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from stages.core.context import StepContext
from stages.core.fsio import dump_json, read_json, staged_outputs
from stages.core.splits import SPLITS, random_splits
from stages.nmt.files import SPLITS_FILE
from stages.nmt.params import PreprocessParams
from stages.nmt.schema import read_corpus, usable

PAD, BOS, EOS, UNK = "[PAD]", "[BOS]", "[EOS]", "[UNK]"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
TOKENIZER_FILES = {"source": "tokenizer_source.json", "target": "tokenizer_target.json"}
LANGUAGES = {"en-ru": ("en", "ru"), "ru-en": ("ru", "en")}


def orient(pairs: pd.DataFrame, direction: str, lowercase: bool) -> pd.DataFrame:
    """Usable pairs without exact repeats as `line`, `source`, `target` in `direction`."""
    kept = usable(pairs).drop_duplicates(["english", "russian"], ignore_index=True)
    src, tgt = ("english", "russian") if direction == "en-ru" else ("russian", "english")
    frame = pd.DataFrame({"line": kept["line"], "source": kept[src], "target": kept[tgt]})
    if lowercase:
        frame["source"], frame["target"] = frame["source"].str.lower(), frame["target"].str.lower()
    return frame


def assign_splits(frame: pd.DataFrame, params: PreprocessParams, seed: int) -> pd.Series:
    """`split` per row: the seeded 80/15/5 draw over distinct source sentences."""
    sources = list(dict.fromkeys(frame["source"]))
    by_source = random_splits(sources, params.val_fraction, params.test_fraction, seed)
    return frame["source"].map(by_source).rename("split")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, min_frequency: int, lowercase: bool
) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    if lowercase:
        tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIALS),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def encode(tokenizer: Tokenizer, texts: list[str]) -> list[list[int]]:
    return [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]


def detokenize(tokenizer: Tokenizer, ids: Iterable[list[int]]) -> list[str]:
    return tokenizer.decode_batch([list(i) for i in ids], skip_special_tokens=True)


def pack(sequences: list[list[int]]) -> dict[str, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int32)
    flat = torch.tensor([t for s in sequences for t in s], dtype=torch.int32)
    return {"ids": flat, "lengths": lengths}


def unpack(packed: dict[str, torch.Tensor]) -> list[list[int]]:
    flat = packed["ids"].tolist()
    out, start = [], 0
    for n in packed["lengths"].tolist():
        out.append(flat[start : start + n])
        start += n
    return out


@dataclass
class SplitData:
    """One cached split: token ids (no bos/eos) and the sentences they came from."""

    src: list[list[int]]
    tgt: list[list[int]]
    source: list[str]
    target: list[str]
    line: list[int]

    def __len__(self) -> int:
        return len(self.src)


def load_split(processed: Path, name: str) -> SplitData:
    cached = torch.load(processed / f"{name}.pt")
    return SplitData(
        unpack(cached["src"]),
        unpack(cached["tgt"]),
        cached["source"],
        cached["target"],
        cached["line"],
    )


def load_tokenizers(processed: Path) -> tuple[Tokenizer, Tokenizer]:
    return tuple(
        Tokenizer.from_file(str(processed / TOKENIZER_FILES[side])) for side in TOKENIZER_FILES
    )


def split_summary(processed: Path) -> dict:
    return read_json(processed / SPLITS_FILE)


def run(ctx: StepContext) -> None:
    params: PreprocessParams = ctx.task_params.preprocess
    corpus = read_corpus(ctx.paths.raw)
    frame = orient(corpus.pairs, params.direction, params.lowercase)
    frame["split"] = assign_splits(frame, params, ctx.common.seed)
    train = frame[frame["split"] == "train"]
    tokenizers = {
        side: train_tokenizer(
            train[side], params.vocab_size, params.min_frequency, params.lowercase
        )
        for side in ("source", "target")
    }
    ids = {side: encode(tokenizers[side], frame[side].tolist()) for side in tokenizers}
    frame["src_tokens"] = [len(i) for i in ids["source"]]
    frame["tgt_tokens"] = [len(i) for i in ids["target"]]
    too_long = (frame["split"] == "train") & (
        (frame["src_tokens"] > params.max_tokens) | (frame["tgt_tokens"] > params.max_tokens)
    )
    source_language, target_language = LANGUAGES[params.direction]
    out = ctx.paths.processed
    with staged_outputs(out) as staging:
        tmp = staging[out]
        tmp.mkdir()
        for side, tokenizer in tokenizers.items():
            tokenizer.save(str(tmp / TOKENIZER_FILES[side]))
        for name in SPLITS:
            rows = frame.index[(frame["split"] == name) & ~too_long].tolist()
            cached = {
                "src": pack([ids["source"][i] for i in rows]),
                "tgt": pack([ids["target"][i] for i in rows]),
                "source": frame.loc[rows, "source"].tolist(),
                "target": frame.loc[rows, "target"].tolist(),
                "line": frame.loc[rows, "line"].tolist(),
            }
            torch.save(cached, tmp / f"{name}.pt")
        kept = frame[~too_long]
        summary = {
            "direction": params.direction,
            "source_language": source_language,
            "target_language": target_language,
            "lowercase": params.lowercase,
            "corpus": str(corpus.path.relative_to(ctx.paths.raw)),
            "pairs": len(frame),
            "duplicates_dropped": len(usable(corpus.pairs)) - len(frame),
            "assigned": {name: int((frame["split"] == name).sum()) for name in SPLITS},
            "counts": {name: int((kept["split"] == name).sum()) for name in SPLITS},
            "train_too_long_dropped": int(too_long.sum()),
            "max_tokens": params.max_tokens,
            "vocab": {side: t.get_vocab_size() for side, t in tokenizers.items()},
            "tokens_per_sentence": {
                name: {
                    "source": round(float(rows["src_tokens"].mean()), 2),
                    "target": round(float(rows["tgt_tokens"].mean()), 2),
                }
                for name, rows in kept.groupby("split")
            },
        }
        (tmp / SPLITS_FILE).write_text(dump_json(summary), encoding="utf-8")
