"""Reading documents needs no database: ``sse_integrations.documents`` works without qdrant-client."""

from __future__ import annotations

import json
import subprocess
import sys

from sse_integrations.documents import Document, read_documents


def test_documents_import_and_read_without_qdrant_client(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        json.dumps({"id": "a", "text": "猫", "theme": "cats"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    # None in sys.modules makes any `import qdrant_client` fail, as if the extra were missing.
    code = (
        "import sys; sys.modules['qdrant_client'] = None\n"
        "from sse_integrations.documents import read_documents\n"
        f"[document] = read_documents([{str(corpus)!r}])\n"
        "assert (document.id, document.text, document.payload) == ('a', '猫', {'theme': 'cats'}), document\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] == 'qdrant_client' and sys.modules[m] is not None]\n"
        "assert not loaded, loaded\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr


def test_reserved_payload_keys_are_not_copied_from_jsonl(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(json.dumps({"_id": 7, "text": "本文", "doc_id": "x", "n": 1}) + "\n", encoding="utf-8")
    assert read_documents([corpus]) == [Document("7", "本文", {"n": 1})]


def test_the_qdrant_package_still_exports_the_reader():
    from sse_integrations import qdrant

    assert qdrant.read_documents is read_documents and qdrant.Document is Document
