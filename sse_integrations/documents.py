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
) -> list[Document]:
    """Documents from JSONL files, .txt/.md files, and folders of .txt/.md (searched recursively).

    JSONL: one object per line with ``text_field``; its id is ``id_field`` (default: "id" or
    "_id"), else ``"<file>:<line>"``; the other fields become the payload. A .txt/.md file is one
    document whose id is its path (relative to the folder given), or with ``lines=True`` one
    document per non-empty line (``"<file>:<line>"``). Ids are stable, so re-indexing the same
    files updates points instead of duplicating them.
    """
    documents: list[Document] = []
    for given in paths:
        root = Path(given)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
            if not files:
                raise FileNotFoundError(f"{root} holds no .txt or .md files")
            for file in files:
                documents.extend(_text_documents(file, file.relative_to(root).as_posix(), lines))
        elif root.is_file():
            if root.suffix.lower() in (".jsonl", ".ndjson"):
                documents.extend(_jsonl_documents(root, text_field, id_field))
            else:
                documents.extend(_text_documents(root, str(given), lines))
        else:
            raise FileNotFoundError(f"no such file or folder: {root}")
    seen: dict[str, str] = {}
    for document in documents:
        if document.id in seen:
            raise ValueError(f"document id {document.id!r} appears twice ({seen[document.id]} and again)")
        seen[document.id] = document.payload.get("source", "")
    return documents


def _text_documents(path: Path, name: str, lines: bool) -> list[Document]:
    text = path.read_text(encoding="utf-8")
    if not lines:
        return [Document(name, text, {"source": name})]
    return [
        Document(f"{name}:{number}", line.strip(), {"source": name, "line": number})
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _jsonl_documents(path: Path, text_field: str, id_field: str | None) -> list[Document]:
    documents = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get(text_field), str):
                raise ValueError(f"{path}:{number}: expected an object with a string {text_field!r} field")
            key = id_field or next((k for k in ("id", "_id") if k in row), None)
            if key is not None and key not in row:
                raise ValueError(f"{path}:{number}: no {key!r} field")
            doc_id = str(row[key]) if key is not None else f"{path}:{number}"
            payload = {k: v for k, v in row.items() if k not in (text_field, key, TEXT_KEY, ID_KEY)}
            documents.append(Document(doc_id, row[text_field], payload))
    return documents
