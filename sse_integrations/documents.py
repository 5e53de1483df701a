"""Documents read from files (JSONL, text, folders of text) with stable ids, for any store.

No database is imported here: the CLI's ``index`` and anything else that needs documents
from disk use it, and the stores turn :class:`Document` into their own records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._checks import check_unicode

__all__ = ["ID_KEY", "TEXT_KEY", "TEXT_SUFFIXES", "Document", "read_documents"]

# Payload keys under which a store keeps a document's text and the caller's id; a JSONL field
# of the same name would clash with them, so it is not copied into the payload.
TEXT_KEY = "text"
ID_KEY = "doc_id"


@dataclass(frozen=True)
class Document:
    """One document read by :func:`read_documents`."""

    id: str
    text: str
    payload: dict[str, Any]


TEXT_SUFFIXES = (".txt", ".md")


def read_documents(
    paths: Sequence[str | os.PathLike],
    *,
    text_field: str = "text",
    id_field: str | None = None,
    lines: bool = False,
    skipped: list[str] | None = None,
) -> list[Document]:
    """Documents from JSONL files, .txt/.md files, and folders of .txt/.md (searched recursively).

    JSONL: one object per line with ``text_field``; its id is ``id_field`` (default: "id" or
    "_id"), else ``"<file>:<line>"``; the other fields become the payload. A .txt/.md file is one
    document whose id is ``<file>``, or with ``lines=True`` one document per non-empty line
    (``"<file>:<line>"``).

    ``<file>`` is the file's resolved absolute path (POSIX separators), however it was named on
    the command line: the same file always gets the same ids (``a.jsonl``, ``/abs/a.jsonl`` and
    ``sub/../a.jsonl`` agree), and two different files never share one (``p1/notes.txt`` and
    ``p2/notes.txt`` stay two documents, in one run or two). So re-indexing updates points
    instead of duplicating them. A file reached twice in one call (a folder and a file inside
    it) is read once; two different documents with one id are refused, naming both places,
    and inputs holding no document at all are refused too. A file that cannot be read (not
    UTF-8, bad JSONL) is a ``ValueError``; given a ``skipped`` list, its message goes there
    instead and the file is left out whole.
    """
    documents: list[Document] = []
    places: list[str] = []
    read: set[Path] = set()
    for file in _input_files(paths):
        if file in read:
            continue
        read.add(file)
        try:
            if file.suffix.lower() in (".jsonl", ".ndjson"):
                found = _jsonl_documents(file, text_field, id_field)
            else:
                found = _text_documents(file, file.as_posix(), lines)
        except ValueError as error:
            if skipped is None:
                raise
            skipped.append(str(error))
            continue
        documents.extend(document for document, _ in found)
        places.extend(place for _, place in found)
    if not documents:
        raise ValueError(f"no documents in {', '.join(map(str, paths))}: the input is empty")
    seen: dict[str, str] = {}
    for document, place in zip(documents, places):
        if document.id in seen:
            raise ValueError(f"document id {document.id!r} appears twice ({seen[document.id]} and {place})")
        seen[document.id] = place
    return documents


def _input_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Every file to read, resolved, in the order given (a folder's files sorted)."""
    files: list[Path] = []
    for given in paths:
        root = Path(given).expanduser()
        if root.is_dir():
            found = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{root} holds no .txt or .md files")
            files.extend(p.resolve() for p in found)
        elif root.is_file():
            files.append(root.resolve())
        else:
            raise FileNotFoundError(f"no such file or folder: {root}")
    return files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(_not_utf8(path, error)) from None


def _not_utf8(path: Path, error: UnicodeDecodeError, line: int | None = None) -> str:
    where = f"{path}:{line}" if line is not None else str(path)
    return f"{where}: not valid UTF-8 (byte {error.object[error.start]:#04x} at offset {error.start})"


def _text_documents(path: Path, name: str, lines: bool) -> list[tuple[Document, str]]:
    text = _read_text(path)
    if not lines:
        return [(Document(name, text, {"source": name}), name)]
    return [
        (Document(f"{name}:{number}", line.strip(), {"source": name, "line": number}), f"{name}:{number}")
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _jsonl_documents(path: Path, text_field: str, id_field: str | None) -> list[tuple[Document, str]]:
    documents = []
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(_not_utf8(path, error, number)) from None
            if not line.strip():
                continue
            place = f"{path.as_posix()}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{place}: not JSON ({error.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                raise ValueError(f"{place}: expected an object with a string {text_field!r} field")
            key = id_field or next((k for k in ("id", "_id") if k in row), None)
            if key is not None and key not in row:
                raise ValueError(f"{place}: no {key!r} field")
            # JSON may spell a lone surrogate (\ud800) that no tokenizer or store accepts.
            check_unicode(row[text_field], f"{place}: field {text_field!r}")
            doc_id = str(row[key]) if key is not None else place
            payload = {k: v for k, v in row.items() if k not in (text_field, key, TEXT_KEY, ID_KEY)}
            documents.append((Document(doc_id, row[text_field], payload), place))
    return documents
