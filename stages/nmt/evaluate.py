"""evaluate: every trained model on the test split with greedy decoding and beam search —
sacreBLEU (headline: the selected model's beam output), chrF and the course's token BLEU on
detokenized text; BLEU by source length, attention heatmaps of a few test sentences, training
curves; the selected model's translations of the test split as the submission."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.ticker import MaxNLocator

from stages.core.context import StepContext
from stages.core.evaluation import SameData, publish_evaluation
from stages.core.fsio import read_json
from stages.core.records import HISTORY_FILE, SELECTION_FILE
from stages.core.training import resolve_device
from stages.nmt.decoding import (
    Translation,
    chrf,
    decode_all,
    load_models,
    sacre_bleu,
    token_bleu,
)
from stages.nmt.files import EXAMPLES_TABLE, LENGTH_TABLE, MODELS_TABLE
from stages.nmt.params import EvaluateParams
from stages.nmt.preprocess import SplitData, load_split, load_tokenizers, split_summary
from stages.nmt.scoring import LENGTH_BUCKETS, bucket_label, item_scores, registered_scorer

DECODINGS = ("greedy", "beam")
ATTENTION_TOKENS = (4, 14)  # heatmaps: test sentences with this many source tokens


def scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    return {
        "bleu": sacre_bleu(hypotheses, references),
        "chrf": chrf(hypotheses, references),
        "token_bleu": token_bleu(hypotheses, references),
    }


def bleu_by_length(sources: list[str], references: list[str], outputs: dict[str, list[str]]):
    """sacreBLEU per source-length bucket (words) for each named output."""
    words = np.array([len(s.split()) for s in sources])
    rows = []
    for low, high in LENGTH_BUCKETS:
        chosen = np.flatnonzero((words >= low) & (words <= (high or words.max(initial=0))))
        if not len(chosen):
            continue
        row = {"source words": bucket_label(low, high), "sentences": len(chosen)}
        refs = [references[i] for i in chosen]
        for name, hypotheses in outputs.items():
            row[name] = sacre_bleu([hypotheses[i] for i in chosen], refs)
        rows.append(row)
    return pd.DataFrame(rows).set_index("source words")


def length_figure(table: pd.DataFrame) -> plt.Figure:
    models = [c for c in table.columns if c != "sentences"]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(1, len(models))
    x = np.arange(len(table))
    for k, name in enumerate(models):
        ax.bar(x + k * width - 0.4 + width / 2, table[name], width, label=name)
    labels = [f"{b}\n({n})" for b, n in zip(table.index, table["sentences"], strict=True)]
    ax.set_xticks(x, labels)
    ax.set_xlabel("source length in words (test sentences)")
    ax.set_ylabel("sacreBLEU (beam search)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return fig


def pick_for_attention(test: SplitData, shown: int) -> list[int]:
    """The first test sentences of moderate length (readable heatmaps)."""
    low, high = ATTENTION_TOKENS
    fitting = [i for i, s in enumerate(test.src) if low <= len(s) <= high]
    return (fitting or list(range(len(test))))[:shown]


def attention_figure(
    picked: list[int], test: SplitData, translations: list[Translation], tokenizers
) -> plt.Figure:
    source_tokenizer, target_tokenizer = tokenizers
    fig, axes = plt.subplots(1, len(picked), figsize=(5.2 * len(picked), 5.2), squeeze=False)
    for ax, i in zip(axes[0], picked, strict=True):
        weights = translations[i].attention.numpy()
        source = [source_tokenizer.id_to_token(t) for t in test.src[i]]
        output = [target_tokenizer.id_to_token(t) for t in translations[i].tokens]
        ax.imshow(weights if weights.size else np.zeros((1, 1)), cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(source)), source, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(output)), output, fontsize=8)
        ax.set_xlabel("source tokens")
        text = test.source[i] if len(test.source[i]) <= 60 else test.source[i][:59] + "…"
        ax.set_title(text, fontsize=9)
    axes[0][0].set_ylabel("output tokens (beam search)")
    fig.tight_layout()
    return fig


def curves_figure(history: pd.DataFrame, selected: str) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, rows in history.groupby("model"):
        style = {"lw": 2.5 if name == selected else 1.2, "alpha": 1 if name == selected else 0.7}
        epochs = rows["epoch"] + 1
        left.plot(epochs, rows["val_bleu"], label=name, **style)
        (line,) = right.plot(epochs, rows["val_loss"], label=f"{name} val", **style)
        right.plot(
            epochs, rows["train_loss"], ls="--", color=line.get_color(), label=f"{name} train"
        )
    left.set(xlabel="epoch", ylabel="validation sacreBLEU (greedy)")
    right.set(xlabel="epoch", ylabel="label-smoothed cross entropy")
    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def run(ctx: StepContext) -> None:
    params: EvaluateParams = ctx.task_params.evaluate
    paths = ctx.paths
    selection = read_json(paths.models / SELECTION_FILE)
    selected = selection["selected"]
    test = load_split(paths.processed, "test")
    tokenizers = load_tokenizers(paths.processed)
    device = resolve_device(ctx.common.device)

    texts: dict[str, dict[str, list[str]]] = {}
    beams: dict[str, list[Translation]] = {}
    for name, network in load_models(paths.models).items():
        texts[name] = {}
        with torch.inference_mode():
            for decoding in DECODINGS:
                beam = 1 if decoding == "greedy" else params.beam_size
                translations = decode_all(
                    network, test.src, beam, params.length_penalty, params.batch_size, device
                )
                texts[name][decoding] = tokenizers[1].decode_batch(
                    [t.tokens for t in translations], skip_special_tokens=True
                )
                if decoding == "beam":
                    beams[name] = translations
    references = test.target
    results = {
        name: {d: scores(outputs[d], references) for d in DECODINGS}
        for name, outputs in texts.items()
    }
    table = pd.DataFrame(
        [
            {"model": name, "decoding": d, **values}
            for name, by_decoding in results.items()
            for d, values in by_decoding.items()
        ]
    ).set_index(["model", "decoding"])
    lengths = bleu_by_length(test.source, references, {name: texts[name]["beam"] for name in texts})
    chosen = texts[selected]
    examples = pd.DataFrame(
        {
            "source": test.source,
            "reference": references,
            "greedy": chosen["greedy"],
            "beam": chosen["beam"],
        }
    )
    summary = split_summary(paths.processed)
    metrics = {
        "headline": {
            "metric": "bleu",
            "value": results[selected]["beam"]["bleu"],
            "split": "test",
            "model": selected,
        },
        "test": results,
        # the floor a model must clear: names, numbers and option flags carry over unchanged
        "copy_source": scores(test.source, references),
        "valid": {
            name: {"bleu": row["best_val_bleu"]} for name, row in selection["models"].items()
        },
        "selected": selected,
        "direction": summary["direction"],
        "beam_size": params.beam_size,
        "test_sentences": len(test),
    }
    figures = {
        "bleu_by_length.png": length_figure(lengths),
        "attention.png": attention_figure(
            pick_for_attention(test, params.attention_shown), test, beams[selected], tokenizers
        ),
        "curves.png": curves_figure(pd.read_csv(paths.models / HISTORY_FILE), selected),
    }
    # the promotion rule pairs these beam translations with the champion's, sentence by sentence
    same_data = SameData(
        item_scores(test.source, references, chosen["beam"]), registered_scorer(ctx, test)
    )
    publish_evaluation(
        ctx,
        metrics,
        results[selected]["beam"],
        examples,
        figures,
        same_data,
        {
            MODELS_TABLE: table,
            LENGTH_TABLE: lengths,
            EXAMPLES_TABLE: examples.head(params.examples_shown),
        },
    )
