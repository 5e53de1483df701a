"""Japanese message catalogues shipped in PyPI and npm packages, as ordered lists of strings.

Training material only (v2 recipe, ``document_training.string_page_pairs``): the programs' own
Japanese messages, grouped the way their sources group them, so that a page of neighbouring
strings is about one topic. Pinned here; each package's licence is checked when it is read.

- TypeScript's compiler diagnostics (``lib/ja/diagnosticMessages.generated.json``, Apache-2.0),
  ordered by diagnostic code and grouped by the code's hundreds (codes of one hundred are
  about one feature: 6xxx compiler options, 2xxx type checking, ...).
- The Japanese ``.po`` catalogues of Django, Sphinx, Spyder, Wagtail and a few Django apps
  (BSD / MIT), grouped by the source file of each message's first reference; packages that
  ship only compiled ``.mo`` files (Trac, Django REST framework) in the order of their
  English message ids, one group per file.

These are not the catalogues of ``/usr/share/locale`` (the independent evaluation's material):
they are read from the registry packages below and nothing else.
"""

from __future__ import annotations

import ast
import gettext
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

from japanese_readmes import read_permissive

CATALOGUE_PACKAGES = (
    "npm:typescript@5.9.3",
    "pypi:django==5.2.19",
    "pypi:sphinx==9.0.4",
    "pypi:spyder==6.1.8",
    "pypi:wagtail==8.0.1",
    "pypi:django-allauth==65.21.1",
    "pypi:django-debug-toolbar==8.0.0",
    "pypi:django-import-export==4.4.3",
    "pypi:trac==1.6",
    "pypi:djangorestframework==3.18.3",
)
_CODE = re.compile(r"_(\d+)$")


def parse_po(text: str) -> list[tuple[str, str]]:
    """(first source reference, translated string) of each translated entry of a ``.po`` file."""
    entries: list[tuple[str, str]] = []
    reference, field, parts = "", None, {"msgid": [], "msgstr": []}

    def flush() -> None:
        msgid, msgstr = "".join(parts["msgid"]), "".join(parts["msgstr"])
        if msgid and msgstr:
            entries.append((reference, msgstr))

    for line in text.splitlines() + [""]:
        line = line.strip()
        if not line:
            flush()
            reference, field, parts = "", None, {"msgid": [], "msgstr": []}
        elif line.startswith("#:"):
            if not reference:
                reference = line[2:].split()[0].split(":")[0] if line[2:].split() else ""
        elif line.startswith("#"):
            continue
        elif line.startswith(("msgid_plural", "msgctxt")):
            field = None
        elif line.startswith("msgid "):
            field = "msgid"
            parts["msgid"].append(ast.literal_eval(line[6:]))
        elif line.startswith(("msgstr ", "msgstr[0] ")):
            field = "msgstr"
            parts["msgstr"].append(ast.literal_eval(line.split(" ", 1)[1]))
        elif line.startswith("msgstr["):
            field = None
        elif line.startswith('"') and field:
            parts[field].append(ast.literal_eval(line))
    return entries


def typescript_catalogues(archive: Path) -> list[tuple[str, list[str]]]:
    with tarfile.open(archive) as tar:
        messages = json.loads(tar.extractfile("package/lib/ja/diagnosticMessages.generated.json").read())
    coded = sorted((int(_CODE.search(key).group(1)), text) for key, text in messages.items() if _CODE.search(key))
    groups: dict[str, list[str]] = {}
    for code, text in coded:
        groups.setdefault(f"typescript-{code // 100:03d}", []).append(text)
    return sorted(groups.items())


def parse_mo(data: bytes) -> list[str]:
    """Translated strings of a compiled ``.mo`` file, in the order of their message ids."""
    catalogue = gettext.GNUTranslations(io.BytesIO(data))._catalog
    entries = []
    for key, text in catalogue.items():
        msgid = key[0] if isinstance(key, tuple) else key
        if isinstance(key, tuple) and key[1] != 0:
            continue
        if msgid and text:
            entries.append((msgid, text))
    return [text for _, text in sorted(entries)]


def po_catalogues(archive: Path, package: str) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    with zipfile.ZipFile(archive) as wheel:
        names = sorted(wheel.namelist())
        for name in names:
            if "/ja/LC_MESSAGES/" in name and name.endswith(".po"):
                for reference, text in parse_po(wheel.read(name).decode("utf-8", "replace")):
                    groups.setdefault(f"{package}:{reference or name}", []).append(text)
            elif "/ja/LC_MESSAGES/" in name and name.endswith(".mo") and name[:-3] + ".po" not in names:
                groups[f"{package}:{name}"] = parse_mo(wheel.read(name))
    return sorted(groups.items())


def read_catalogues(download_dir: Path, specs: tuple[str, ...] = CATALOGUE_PACKAGES) -> list[tuple[str, list[str]]]:
    """Every pinned catalogue package's strings, grouped; packages without a permissive licence are skipped."""
    catalogues: list[tuple[str, list[str]]] = []
    for spec in specs:
        package = read_permissive(spec, download_dir)
        if package is None:
            continue
        path, name, _ = package
        if name == "typescript":
            catalogues += typescript_catalogues(path)
        else:
            catalogues += po_catalogues(path, name)
    return catalogues
