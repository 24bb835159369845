"""validate: the corpus is UTF-8 (the parser stops otherwise, naming the line), lines have 2 or
3 tab-separated columns, both sides hold text, the Russian side is Cyrillic, the two sides are
of plausible relative length, and not too many pairs repeat. A failure names the lines."""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
import numpy as np
import pandas as pd

from stages.core.context import StepContext
from stages.core.validation import TableCheck, publish_report, run_checks
from stages.nmt.params import ValidateParams
from stages.nmt.schema import CYRILLIC, Corpus, read_corpus, usable, where


def length_ratio(english: pd.Series, russian: pd.Series) -> pd.Series:
    """Longer side / shorter side, in characters."""
    a, b = english.str.len(), russian.str.len()
    return np.maximum(a, b) / np.maximum(np.minimum(a, b), 1)


def flag(pairs: pd.DataFrame, params: ValidateParams) -> pd.DataFrame:
    """The pairs with one problem column per check, holding `line N: text` where it occurs."""
    named = pd.Series(
        [
            where(n, f"{e} | {r}")
            for n, e, r in pairs[["line", "english", "russian"]].itertuples(index=False)
        ],
        index=pairs.index,
        dtype=object,
    )
    nonempty = (pairs["english"] != "") & (pairs["russian"] != "")
    repeated = pairs.duplicated(["english", "russian"], keep="first") & nonempty
    return pairs.assign(
        empty_side=named.where(~nonempty),
        no_cyrillic=named.where(nonempty & ~pairs["russian"].str.contains(CYRILLIC)),
        misaligned=named.where(
            nonempty & (length_ratio(pairs["english"], pairs["russian"]) > params.max_length_ratio)
        ),
        duplicate=named.where(repeated),
    )


def lines_table(corpus: Corpus) -> pd.DataFrame:
    """One row per non-blank line; `malformed` names the lines without 2 or 3 columns."""
    malformed = pd.DataFrame(
        {
            "line": [n for n, _ in corpus.malformed],
            "malformed": [where(n, t) for n, t in corpus.malformed],
        }
    )
    good = pd.DataFrame({"line": corpus.pairs["line"], "malformed": None})
    frame = pd.concat([good, malformed], ignore_index=True) if len(malformed) else good
    return frame.astype({"malformed": object}).sort_values("line", ignore_index=True)


def check(corpus: Corpus, params: ValidateParams) -> list[TableCheck]:
    flagged = flag(corpus.pairs, params)
    kept = 1 - params.max_skipped_share
    return [
        TableCheck(
            "lines",
            lines_table(corpus),
            [gxe.ExpectColumnValuesToBeNull(column="malformed", mostly=kept)],
        ),
        TableCheck(
            "pairs",
            flagged,
            [
                gxe.ExpectColumnValuesToBeNull(column="empty_side", mostly=kept),
                gxe.ExpectColumnValuesToBeNull(
                    column="no_cyrillic", mostly=params.min_cyrillic_share
                ),
                gxe.ExpectColumnValuesToBeNull(
                    column="misaligned", mostly=1 - params.max_misaligned_share
                ),
                gxe.ExpectColumnValuesToBeNull(
                    column="duplicate", mostly=1 - params.max_duplicate_share
                ),
            ],
        ),
        TableCheck(
            "usable",
            usable(corpus.pairs),
            [gxe.ExpectTableRowCountToBeBetween(min_value=params.min_pairs)],
        ),
    ]


def _stats(lengths: pd.Series) -> str:
    if not len(lengths):
        return "—"
    q = lengths.quantile([0, 0.5, 0.95, 1]).astype(int).tolist()
    return " / ".join(map(str, q))


def facts(corpus: Corpus, raw) -> dict[str, Any]:
    pairs = usable(corpus.pairs)
    duplicates = int(pairs.duplicated(["english", "russian"]).sum())
    return {
        "corpus file": str(corpus.path.relative_to(raw)),
        "encoding": "UTF-8",
        "columns": "3 (english, russian, attribution)"
        if corpus.columns == 3
        else "2 (english, russian)",
        "lines": corpus.lines,
        "blank lines (skipped)": corpus.blank,
        "malformed lines (skipped)": len(corpus.malformed),
        "pairs with an empty side (skipped)": len(corpus.pairs) - len(pairs),
        "usable pairs": len(pairs),
        "duplicate pairs (dropped by preprocess)": duplicates,
        "distinct english sentences": int(pairs["english"].nunique()),
        "english words min / median / p95 / max": _stats(pairs["english"].str.split().str.len()),
        "russian words min / median / p95 / max": _stats(pairs["russian"].str.split().str.len()),
    }


def run(ctx: StepContext) -> None:
    params: ValidateParams = ctx.task_params.validate_
    corpus = read_corpus(ctx.paths.raw)
    report = run_checks(ctx.task, check(corpus, params), facts(corpus, ctx.paths.raw))
    publish_report(report, ctx.paths.validation_json, ctx.paths.validation_html)
