"""Real English→Russian sentence pairs of another shape that ship offline: the Russian message
catalogues of Debian's command-line tools (`/usr/share/locale/ru/LC_MESSAGES/*.mo`: coreutils,
tar, git, gnupg, the C library …), written as a Tatoeba/ManyThings `rus-eng/rus.txt` with its
attribution column, as a user unpacks `rus-eng.zip`.

Another shape than the built-in UI strings of web apps: error and help messages of system tools,
lower-case fragments, option names (`--start`), a different vocabulary, and a third column."""

from __future__ import annotations

from pathlib import Path

from stages.nmt.corpus import clean_pairs, read_mo

CATALOGUES = Path("/usr/share/locale/ru/LC_MESSAGES")
# catalogue -> the Debian package that ships it (.ci/run installs any that is missing)
PACKAGES = {
    "coreutils": "coreutils",
    "tar": "tar",
    "findutils": "findutils",
    "diffutils": "diffutils",
    "sed": "sed",
    "bash": "bash",
    "dpkg": "dpkg",
    "apt": "apt",
    "libc": "libc-l10n",
    "gnupg2": "gnupg-l10n",
    "git": "git",
    "wget": "wget",
    "make": "make",
}


def catalogue_pairs() -> list[tuple[str, str, str]]:
    """(english, russian, attribution), cleaned as the built-in corpus is, one Russian per
    English sentence, in catalogue order."""
    entries = []
    for catalogue, package in PACKAGES.items():
        path = CATALOGUES / f"{catalogue}.mo"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: apt-get install {package}")
        attribution = f"Debian package {package}, {path.name}"
        entries += [(en, ru, attribution) for _, en, ru in read_mo(path.read_bytes())]
    return clean_pairs(entries)


def write_tatoeba(root: Path) -> int:
    """`root/rus-eng/rus.txt` (english<TAB>russian<TAB>attribution) and `_about.txt`; returns
    the number of pairs."""
    pairs = catalogue_pairs()
    folder = root / "rus-eng"
    folder.mkdir(parents=True)
    (folder / "rus.txt").write_text("".join(f"{en}\t{ru}\t{src}\n" for en, ru, src in pairs))
    (folder / "_about.txt").write_text("Debian's Russian message catalogues, one pair a line.\n")
    return len(pairs)
