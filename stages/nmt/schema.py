"""Finding and parsing the parallel corpus: the course's `data.txt` (`english<TAB>russian`), the
Tatoeba/ManyThings `rus.txt` (a third column of attribution) or any single `.txt` of that
shape, at whatever depth the archive put it.

Lines with 2 or 3 tab-separated columns are pairs (sides stripped); blank lines and lines with
another column count are skipped and counted, by line number, for the validation report. A file
that is not UTF-8 stops here with one line naming the file, the line and the byte offset."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from stages.core.errors import UserError

PREFERRED = ("data.txt", "rus.txt")  # the course file, the Tatoeba/ManyThings file
COLUMNS = ["line", "english", "russian"]
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
SHOWN_CHARS = 40  # text shown next to a line number in validation samples


@dataclass
class Corpus:
    path: Path
    pairs: pd.DataFrame  # COLUMNS, one row per 2- or 3-column line (sides may be empty)
    malformed: list[tuple[int, str]] = field(default_factory=list)  # (line, text): other counts
    blank: int = 0
    lines: int = 0  # lines in the file (a final newline ends the last one)
    columns: int = 2  # the most common column count of the pairs: 2 course, 3 Tatoeba


def find_corpus(raw: Path) -> Path:
    """`data.txt`, else `rus.txt` (the shallowest of each), else the one `.txt` file there is
    (ManyThings' `_about.txt` and other `_`-files do not count)."""
    for name in PREFERRED:
        matches = sorted(raw.rglob(name), key=lambda p: (len(p.parts), str(p)))
        if matches:
            return matches[0]
    candidates = sorted(
        p for p in raw.rglob("*.txt") if p.is_file() and not p.name.startswith(("_", "."))
    )
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UserError(
            f"{raw}: no corpus found (expected data.txt with english<TAB>russian lines, or "
            "Tatoeba's rus.txt)"
        )
    shown = ", ".join(str(p.relative_to(raw)) for p in candidates[:5])
    raise UserError(
        f"{raw}: {len(candidates)} .txt files and none named data.txt or rus.txt ({shown}); "
        "keep one or rename the corpus data.txt"
    )


def decode(data: bytes, path: Path) -> str:
    """UTF-8 text (a byte-order mark dropped); anything else is a UserError naming the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 4]
        raise UserError(
            f"{path}: not UTF-8 text: line {line}, byte offset {exc.start} ({bad!r}); convert "
            "it first, e.g. iconv -f cp1251 -t utf-8"
        ) from None


def parse_text(text: str, path: Path) -> Corpus:
    rows, malformed, blank, widths = [], [], 0, {2: 0, 3: 0}
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            blank += 1
            continue
        fields = line.split("\t")
        if len(fields) not in (2, 3):
            malformed.append((number, line))
            continue
        widths[len(fields)] += 1
        rows.append((number, fields[0].strip(), fields[1].strip()))
    return Corpus(
        path=path,
        pairs=pd.DataFrame(rows, columns=COLUMNS),
        malformed=malformed,
        blank=blank,
        lines=len(lines),
        columns=3 if widths[3] > widths[2] else 2,
    )


def read_corpus(raw: Path) -> Corpus:
    path = find_corpus(raw)
    return parse_text(decode(path.read_bytes(), path), path)


def usable(pairs: pd.DataFrame) -> pd.DataFrame:
    """Pairs with text on both sides."""
    return pairs[(pairs["english"] != "") & (pairs["russian"] != "")].reset_index(drop=True)


def where(line: int, text: str) -> str:
    """How a problem row is named in validation samples: `line 17: <the text>`."""
    shown = text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
    return f"line {line}: {shown}"
