"""Translate your own sentences with the trained model:

    python -m stages.nmt.translate "Failed to connect to the device" [--beam N] [--root DIR]
    echo "Open the settings" | python -m stages.nmt.translate

Reads the selected model from models/nmt and the tokenizers from data/processed/nmt (what
`dvc repro` of the nmt task leaves); one translation per input line on stdout. Before the task
has been trained it prints one `error:` line and exits 2."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stages.core.context import TaskPaths
from stages.core.errors import USER_ERROR_EXIT, UserError
from stages.core.fsio import read_json
from stages.core.params import PARAMS_FILE, load_params
from stages.core.records import SELECTION_FILE
from stages.nmt.decoding import decode_all, load_models
from stages.nmt.params import EvaluateParams
from stages.nmt.preprocess import TOKENIZER_FILES, encode, load_tokenizers

TASK = "nmt"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stages.nmt.translate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("sentences", nargs="*", help="text to translate (default: stdin lines)")
    parser.add_argument(
        "--beam", type=int, help="beam size, 1 = greedy (default: nmt.evaluate.beam_size)"
    )
    parser.add_argument("--length-penalty", type=float, help="default: nmt.evaluate.length_penalty")
    parser.add_argument("--model", help="a trained model's name (default: the selected one)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    return parser


def decoding_defaults(root: Path) -> EvaluateParams:
    """The evaluate step's beam settings from params.yaml (the built-in ones without it)."""
    try:
        return load_params(root / PARAMS_FILE).task(TASK).evaluate
    except (UserError, KeyError):
        return EvaluateParams()


def translate(
    sentences: list[str],
    root: Path,
    beam: int | None = None,
    length_penalty: float | None = None,
    model: str | None = None,
) -> list[str]:
    paths = TaskPaths(root.resolve(), TASK)
    selection_file = paths.models / SELECTION_FILE
    tokenizer_files = [paths.processed / name for name in TOKENIZER_FILES.values()]
    missing = [p for p in (selection_file, *tokenizer_files) if not p.is_file()]
    if missing:
        raise UserError(
            f"{missing[0]}: not found: the {TASK} model has not been trained yet "
            f"(run `dvc repro train@{TASK}` in {paths.root})"
        )
    defaults = decoding_defaults(paths.root)
    beam = defaults.beam_size if beam is None else beam
    length_penalty = defaults.length_penalty if length_penalty is None else length_penalty
    if beam < 1:
        raise UserError(f"--beam: expected 1 or more, got {beam}")
    networks = load_models(paths.models)
    name = model or read_json(selection_file)["selected"]
    if name not in networks:
        raise UserError(f"--model: {name!r} is not trained (trained: {', '.join(networks)})")
    source_tokenizer, target_tokenizer = load_tokenizers(paths.processed)
    decoded = decode_all(
        networks[name], encode(source_tokenizer, sentences), beam, length_penalty, batch_size=32
    )
    return target_tokenizer.decode_batch([d.tokens for d in decoded], skip_special_tokens=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sentences = args.sentences or [line.rstrip("\n") for line in sys.stdin]
    try:
        outputs = translate(
            [s.strip() for s in sentences], args.root, args.beam, args.length_penalty, args.model
        )
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR_EXIT
    for line in outputs:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
