"""Training-only material of the v2 build: the pinned package list and the catalogue readers."""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
readmes = importlib.import_module("japanese_readmes")
catalogues = importlib.import_module("japanese_catalogues")
docs = importlib.import_module("document_training")


def test_no_training_only_package_is_in_the_dev_set_list():
    held = {readmes._normalised_name(readmes.package_name(s)) for s in readmes.pinned_packages()}
    training = readmes.training_packages()
    assert training, "the training-only list is empty"
    assert len(set(training)) == len(training)
    for spec in training:
        assert spec.startswith(("pypi:", "npm:")) and ("==" in spec or "@" in spec.split(":", 1)[1][1:]), spec
        assert readmes._normalised_name(readmes.package_name(spec)) not in held, spec


PO = r"""
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: app/views.py:10 app/other.py:3
msgid "Save the file"
msgstr "ファイルを保存します"

#: app/views.py:12
msgid "One item"
msgid_plural "%d items"
msgstr[0] "%d 個の項目"

#: app/models.py:1
msgid "Untranslated"
msgstr ""

#: app/models.py:2
msgid ""
"A long "
"message"
msgstr ""
"長い"
"メッセージ"
"""


def test_parse_po_keeps_translated_entries_with_their_first_source_file():
    assert catalogues.parse_po(PO) == [
        ("app/views.py", "ファイルを保存します"),
        ("app/views.py", "%d 個の項目"),
        ("app/models.py", "長いメッセージ"),
    ]


def test_string_page_pairs_query_a_page_by_keywords_of_one_of_its_strings():
    strings = [f"オプション --opt{i} を付けると file{i}.txt を保存します" for i in range(60)]
    pairs = docs.string_page_pairs([("app", strings)], random.Random(0), "strings", page_chars=200)
    assert pairs and {p.source for p in pairs} == {"strings"}
    for pair in pairs:
        assert pair.group == "strings:app"
        assert all(term in pair.document for term in pair.query.split())
        assert len(pair.document) < 200 + 40
