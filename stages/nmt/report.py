"""report: reports/nmt/report.md and a self-contained report.html."""

from __future__ import annotations

import pandas as pd

from stages.core.context import StepContext
from stages.core.fsio import read_json
from stages.core.records import SELECTION_FILE
from stages.core.reporting import (
    data_section,
    did_not_learn_section,
    markdown_table,
    registry_paragraph,
    report_inputs,
    split_sizes,
    write_report,
)
from stages.nmt.files import EXAMPLES_TABLE, MODELS_TABLE, SPLITS_FILE

NAMES = {"en": "English", "ru": "Russian"}


def models_table(models: pd.DataFrame, selection: dict) -> pd.DataFrame:
    """One row per model: test scores of both decodings, then what training recorded."""
    wide = models.reset_index().pivot(
        index="model", columns="decoding", values=["bleu", "chrf", "token_bleu"]
    )
    table = pd.DataFrame(
        {
            "BLEU greedy": wide[("bleu", "greedy")],
            "BLEU beam": wide[("bleu", "beam")],
            "chrF beam": wide[("chrf", "beam")],
            "token BLEU beam": wide[("token_bleu", "beam")],
        }
    )
    trained = pd.DataFrame(selection["models"]).T
    table = table.join(
        trained[["architecture", "best_val_bleu", "best_epoch", "parameters", "seconds"]].rename(
            columns={"best_val_bleu": "val BLEU", "best_epoch": "best epoch", "seconds": "train s"}
        )
    )
    table["best epoch"] = table["best epoch"].astype(int) + 1
    table["parameters"] = table["parameters"].map(lambda n: f"{int(n):,}")
    return table.sort_values("BLEU beam", ascending=False).reset_index()


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def examples_table(examples: pd.DataFrame) -> pd.DataFrame:
    return examples.fillna("").map(cell).reset_index(drop=True)


def copy_baseline(metrics: dict) -> str:
    """What copying the source sentences unchanged scores, and a warning when the selected
    model does not beat it (older metrics files have no such figure)."""
    if "copy_source" not in metrics:
        return ""
    copied = metrics["copy_source"]["bleu"]
    line = f"Copying each source sentence unchanged scores {copied:.2f} sacreBLEU on this test set."
    if metrics["test"][metrics["selected"]]["beam"]["bleu"] <= copied:
        line += (
            " **The selected model does not beat that: it has not learned to translate this "
            "data; try more epochs (train.epochs / min_steps), a lower learning_rate, or more "
            "pairs.**"
        )
    return line + "\n"


def report_markdown(
    metrics: dict,
    models: pd.DataFrame,
    examples: pd.DataFrame,
    selection: dict,
    splits: dict,
    validation: dict,
    promotion: dict,
    run_info: dict,
) -> str:
    selected = metrics["selected"]
    best = metrics["test"][selected]
    source, target = NAMES[splits["source_language"]], NAMES[splits["target_language"]]
    return "\n".join(
        [
            f"# Translation — {source} → {target}",
            "",
            f"**Selected model `{selected}` (best validation BLEU): test sacreBLEU "
            f"{best['beam']['bleu']:.2f}** with beam search (beam {metrics['beam_size']}), "
            f"{best['greedy']['bleu']:.2f} greedy; chrF {best['beam']['chrf']:.2f}, the course's "
            f"token BLEU {best['beam']['token_bleu']:.2f}, over {metrics['test_sentences']} test "
            f"sentences. Trained on {selection.get('device', 'cpu')}.",
            "",
            copy_baseline(metrics),
            did_not_learn_section(m.get("did_not_learn") for m in selection["models"].values()),
            registry_paragraph(promotion, run_info),
            "",
            "## Models",
            "",
            "Every model in `params.yaml` (`nmt.train.models`), each its own nested MLflow run. "
            "sacreBLEU and chrF are computed on detokenized text against the raw references; "
            "token BLEU is the course's metric (corpus BLEU × 100 over lower-cased word and "
            "punctuation tokens). Validation BLEU: greedy, on the sentences train decodes each "
            "epoch.",
            "",
            markdown_table(models_table(models, selection), floatfmt=".2f"),
            "",
            "## Example translations",
            "",
            f"The first test sentences, translated by `{selected}`.",
            "",
            markdown_table(examples_table(examples)),
            "",
            "## BLEU by sentence length",
            "",
            "![BLEU by source length](plots/bleu_by_length.png)",
            "",
            "## Attention",
            "",
            f"Where `{selected}` looks in the source while writing each output token (its last "
            "cross-attention layer for the Transformer, averaged over heads).",
            "",
            "![Attention heatmaps](plots/attention.png)",
            "",
            "## Training",
            "",
            "![Training curves](plots/curves.png)",
            "",
            data_section(
                validation,
                split_sizes(splits["counts"])
                + f" Vocabulary (BPE, train split only): {splits['vocab']['source']} {source}, "
                f"{splits['vocab']['target']} {target} tokens; {splits['duplicates_dropped']} "
                f"repeated pairs and {splits['train_too_long_dropped']} training pairs longer "
                f"than {splits['max_tokens']} tokens left out.",
            ),
        ]
    )


def run(ctx: StepContext) -> None:
    paths = ctx.paths
    text = report_markdown(
        models=pd.read_csv(paths.plots / MODELS_TABLE, index_col=[0, 1]),
        examples=pd.read_csv(paths.plots / EXAMPLES_TABLE, index_col=0, keep_default_na=False),
        selection=read_json(paths.models / SELECTION_FILE),
        splits=read_json(paths.processed / SPLITS_FILE),
        **report_inputs(paths),
    )
    write_report(text, "Translation report", paths.report_md, paths.report_html)
