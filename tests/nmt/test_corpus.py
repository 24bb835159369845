"""The builtin English→Russian corpus: its cleaning rules, its readers and the committed files.

All offline: the rebuild itself (`python -m stages.nmt.corpus --check`) needs the package index."""

from __future__ import annotations

import io
import json
import lzma
import re
import struct
import zipfile
from collections import Counter

import pytest

from stages.nmt.corpus import (
    DATA_DIR,
    NOTICE_FILE,
    PAIRS_FILE,
    SOURCES,
    SOURCES_FILE,
    Source,
    clean_pair,
    clean_pairs,
    deduplicate,
    encode_pairs,
    extract,
    flatten,
    join_translations,
    load_pairs,
    normalise_whitespace,
    read_mo,
    strip_accelerators,
)

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
RU_PLURALS = (
    "nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && "
    "(n%100<10 || n%100>=20) ? 1 : 2);"
)


def write_mo(messages: dict[str, str]) -> bytes:
    """A GNU .mo catalogue as msgfmt writes it (without the optional hash table)."""
    encoded = {key.encode(): value.encode() for key, value in messages.items()}
    keys = sorted(encoded)
    ids = strs = b""
    spans = []
    for key in keys:
        spans.append((len(ids), len(key), len(strs), len(encoded[key])))
        ids += key + b"\0"
        strs += encoded[key] + b"\0"
    key_start = 7 * 4 + 16 * len(keys)
    value_start = key_start + len(ids)
    key_table, value_table = [], []
    for key_offset, key_length, value_offset, value_length in spans:
        key_table += [key_length, key_start + key_offset]
        value_table += [value_length, value_start + value_offset]
    header = struct.pack(
        "<7I", 0x950412DE, 0, len(keys), 7 * 4, 7 * 4 + 8 * len(keys), 0, key_start
    )
    tables = key_table + value_table
    return header + struct.pack(f"<{len(tables)}I", *tables) + ids + strs


MO_MESSAGES = {
    "": f"Content-Type: text/plain; charset=UTF-8\nPlural-Forms: {RU_PLURALS}\n",
    "Open the file": "Открыть файл",
    "menu\x04Save the file": "Сохранить файл",
    "One file was deleted\x00Files were deleted": "Удалён файл\x00Удалены файлы\x00Удалено файлов",
}


# ---------------------------------------------------------------------------------------------
# cleaning


def test_a_clean_pair_is_kept_as_it_is():
    assert clean_pair("Open the file.", "Открыть файл.") == ("Open the file.", "Открыть файл.")
    # a literal percent sign is not a placeholder
    assert clean_pair("Battery level is 100%", "Уровень заряда 100%") is not None


@pytest.mark.parametrize(
    ("english", "russian"),
    [
        ("Delete {name} right now", "Удалить {name} сейчас"),
        ("Delete {{ name }} right now", "Удалить {{ name }} сейчас"),
        ("Deleted %s files today", "Удалено %s файлов сегодня"),
        ("Deleted %(count)s files today", "Удалено %(count)s файлов сегодня"),
        ("Deleted %d files today", "Удалено %d файлов сегодня"),
        ("cannot find name for group ID %lu", "не удалось найти имя группы с ID %lu"),
        ("%.*s: invalid conversion specification", "%.*s: неверное описание преобразования"),
        ("Replace it with $1 please", "Замените на $1"),
        ("Turn it [%key:common::state::on%] now", "Включите это сейчас"),
        # a placeholder on the Russian side only is enough
        ("Delete the file now", "Удалить файл {name}"),
    ],
)
def test_entries_with_placeholders_are_dropped(english, russian):
    assert clean_pair(english, russian) is None


@pytest.mark.parametrize(
    ("english", "russian"),
    [
        ("Make it <b>bold</b> please", "Сделать <b>жирным</b>"),
        ("Tom &amp; Jerry are here", "Том и Джерри здесь"),
        ("Tom &#38; Jerry are here", "Том и Джерри здесь"),
        ("See [the docs](/docs) for details", "Смотрите документацию"),
        ("Run `pip install` to fix it", "Запустите pip install"),
        ("Read more on https://example.org today", "Подробнее на сайте"),
        ("Read more on www.example.org today", "Подробнее на сайте"),
        ("Write to admin@example.org for help", "Напишите администратору"),
        ("### How to pair the device", "Как подключить устройство"),
        ("Put it in the _templates folder", "Поместите в папку _templates"),
        ("Set the my_name option here", "Задайте параметр my_name"),
    ],
)
def test_entries_with_markup_or_code_are_dropped(english, russian):
    assert clean_pair(english, russian) is None


def test_accelerator_marks_are_removed():
    assert clean_pair("&Open last file", "О&ткрыть последний файл") == (
        "Open last file",
        "Открыть последний файл",
    )
    assert clean_pair("_Save the file", "_Сохранить файл") == ("Save the file", "Сохранить файл")
    assert strip_accelerators("Save _As new") == "Save As new"
    assert strip_accelerators("Fish && Chips") == "Fish & Chips"
    assert strip_accelerators("Tom & Jerry") == "Tom & Jerry"
    assert strip_accelerators("snake_case and _private") == "snake_case and _private"


def test_whitespace_is_normalised():
    assert normalise_whitespace("  a\tb\nc\u00a0d\u200b  e\r\n") == "a b c d e"
    assert clean_pair("Open  the\tnew\nfile ", " Открыть\u00a0новый\u200b файл") == (
        "Open the new file",
        "Открыть новый файл",
    )


def test_short_english_is_dropped():
    assert clean_pair("Open file", "Открыть файл") is None
    assert clean_pair("Open file 2 !", "Открыть файл 2 !") is None  # tokens without letters
    assert clean_pair("Open the file", "Открыть файл") is not None


def test_russian_without_cyrillic_or_copying_the_english_is_dropped():
    assert clean_pair("Open the file", "Otkryt fajl") is None
    assert clean_pair("Home Assistant Cloud service", "Home Assistant Cloud service") is None
    assert clean_pair("Open the file", "") is None
    # and the English side must be English
    assert clean_pair("Открыть этот файл", "Открыть файл") is None


def test_long_sentences_are_dropped_only_with_a_cap():
    english, russian = "Open the file " * 20, "Открыть файл " * 20
    assert clean_pair(english, russian) is not None
    assert clean_pair(english, russian, max_chars=100) is None


def test_deduplicate_keeps_the_first_russian_per_english():
    pairs = [
        ("Open the file", "Открыть файл", "a"),
        ("Close the file", "Закрыть файл", "a"),
        ("Open the file", "Откройте файл", "b"),
        ("Close the file", "Закрыть файл", "a"),
    ]
    assert deduplicate(pairs) == pairs[:2]


def test_clean_pairs_cleans_then_deduplicates_in_order():
    entries = [
        ("Open {x} now", "Открыть {x}", "a"),
        ("&Open the file", "Открыть файл", "a"),
        ("Open the file", "Откройте файл", "b"),
        ("Close the file", "Закрыть файл", "b"),
    ]
    assert clean_pairs(entries) == [
        ("Open the file", "Открыть файл", "a"),
        ("Close the file", "Закрыть файл", "b"),
    ]


# ---------------------------------------------------------------------------------------------
# readers


def test_flatten_nested_json():
    tree = {"config": {"step": {"user": {"title": "Set up", "data": {"host": "Host"}}}, "n": 3}}
    tree["list"] = ["first", {"x": "second"}, None]
    assert flatten(tree) == {
        "config.step.user.title": "Set up",
        "config.step.user.data.host": "Host",
        "list.0": "first",
        "list.1.x": "second",
    }


def test_join_translations_pairs_the_common_key_paths():
    english = {"b": {"title": "Pick the bridge"}, "a": "Failed to connect", "only_en": "x y z"}
    russian = {"a": "Не удалось подключиться", "b": {"title": "Выберите шлюз"}, "only_ru": "ы"}
    assert join_translations(english, russian) == [
        ("a", "Failed to connect", "Не удалось подключиться"),
        ("b.title", "Pick the bridge", "Выберите шлюз"),
    ]


def test_read_mo_gives_singulars_without_context_or_header():
    assert read_mo(write_mo(MO_MESSAGES)) == [
        ("One file was deleted", "One file was deleted", "Удалён файл"),
        ("Open the file", "Open the file", "Открыть файл"),
        ("menu\x04Save the file", "Save the file", "Сохранить файл"),
    ]


def _zip(files: dict[str, bytes]) -> zipfile.ZipFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return zipfile.ZipFile(io.BytesIO(buffer.getvalue()))


def _source(kind: str) -> Source:
    return Source("pkg", "1.0", "0" * 64, "MIT", "https://example.org", kind, ())


def test_extract_reads_home_assistant_json_pairs():
    en = {"config": {"abort": {"cannot_connect": "Failed to connect"}}}
    ru = {"config": {"abort": {"cannot_connect": "Не удалось подключиться"}}}
    wheel = _zip(
        {
            "homeassistant/components/hue/translations/en.json": json.dumps(en).encode(),
            "homeassistant/components/hue/translations/ru.json": json.dumps(ru).encode(),
            "homeassistant/components/nest/translations/en.json": json.dumps(en).encode(),
            "homeassistant/components/nest/translations/de.json": b"{}",
        }
    )
    assert extract(_source("ha-json"), wheel) == [
        ("hue:config.abort.cannot_connect", "Failed to connect", "Не удалось подключиться")
    ]


def test_extract_reads_only_russian_gettext_catalogues():
    catalogue = write_mo(MO_MESSAGES)
    wheel = _zip(
        {
            "pkg/locale/ru/LC_MESSAGES/django.mo": catalogue,
            "pkg/locale/ru/LC_MESSAGES/django.po": b"not read",
            "pkg/locale/de/LC_MESSAGES/django.mo": catalogue,
            "pkg/locale/ru_RU/LC_MESSAGES/app.mo": write_mo(
                {"": MO_MESSAGES[""], "Run all cells": "Запустить все ячейки"}
            ),
        }
    )
    assert extract(_source("gettext"), wheel) == [
        ("pkg/locale/ru/LC_MESSAGES/django.mo:One file was deleted", *read_mo(catalogue)[0][1:]),
        ("pkg/locale/ru/LC_MESSAGES/django.mo:Open the file", "Open the file", "Открыть файл"),
        (
            "pkg/locale/ru/LC_MESSAGES/django.mo:menu\x04Save the file",
            "Save the file",
            "Сохранить файл",
        ),
        (
            "pkg/locale/ru_RU/LC_MESSAGES/app.mo:Run all cells",
            "Run all cells",
            "Запустить все ячейки",
        ),
    ]


def test_encoded_pairs_load_back_and_encode_deterministically(tmp_path):
    pairs = [("Open the file", "Открыть файл", "a"), ("Close the file", "Закрыть файл", "b")]
    data = encode_pairs(pairs)
    assert data == encode_pairs(pairs)
    (tmp_path / "pairs.tsv.xz").write_bytes(data)
    assert load_pairs(tmp_path / "pairs.tsv.xz") == pairs
    with pytest.raises(ValueError):
        encode_pairs([("Open\tthe file", "Открыть файл", "a")])


def test_load_pairs_rejects_a_malformed_line(tmp_path):
    path = tmp_path / "pairs.tsv.xz"
    path.write_bytes(lzma.compress("Open the file\tОткрыть файл\n".encode()))
    with pytest.raises(ValueError, match="3 tab-separated fields"):
        load_pairs(path)


# ---------------------------------------------------------------------------------------------
# the committed corpus


@pytest.fixture(scope="module")
def committed() -> list[tuple[str, str, str]]:
    return load_pairs()


@pytest.fixture(scope="module")
def sources_json() -> list[dict]:
    return json.loads((DATA_DIR / SOURCES_FILE).read_text(encoding="utf-8"))


def test_committed_corpus_is_large_small_and_well_formed(committed):
    assert len(committed) >= 10_000
    assert (DATA_DIR / PAIRS_FILE).stat().st_size < 1_000_000
    for pair in committed:
        assert len(pair) == 3
        assert all(field and not re.search(r"[\t\n\r]", field) for field in pair), pair
        assert CYRILLIC.search(pair[1]), pair


def test_committed_corpus_has_one_russian_per_english(committed):
    duplicates = [e for e, n in Counter(english for english, _, _ in committed).items() if n > 1]
    assert duplicates == []


def test_committed_corpus_passes_its_own_cleaning(committed):
    assert [pair for pair in committed if clean_pair(pair[0], pair[1]) != pair[:2]] == []


def test_committed_corpus_encodes_to_the_committed_bytes(committed):
    assert encode_pairs(committed) == (DATA_DIR / PAIRS_FILE).read_bytes()


def test_sources_json_matches_the_pins_and_the_corpus(committed, sources_json):
    pinned = {(s.package, s.version, s.sha256, s.licence) for s in SOURCES}
    listed = {(s["package"], s["version"], s["sha256"], s["licence"]) for s in sources_json}
    assert listed == pinned
    counts = Counter(source for _, _, source in committed)
    assert counts == {s["package"]: s["pairs"] for s in sources_json}
    assert all(s["pairs"] > 0 for s in sources_json)


def test_notice_names_every_source_with_its_licence(sources_json):
    notice = (DATA_DIR / NOTICE_FILE).read_text(encoding="utf-8")
    for source in sources_json:
        assert f"## {source['package']} {source['version']}" in notice
        assert (
            f"| {source['package']} | {source['version']} | {source['licence']} | "
            f"{source['url']} | {source['pairs']} |" in notice
        )
