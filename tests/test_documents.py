"""Reading documents needs no database: ``sse_integrations.documents`` works without qdrant-client."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


# --- ids (issue 16, items 1-3, 8) ------------------------------------------------------


def test_same_name_in_two_folders_gives_two_documents(tmp_path):
    for folder, text in (("p1", "一つ目"), ("p2", "二つ目")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "notes.txt").write_text(text, encoding="utf-8")
    together = read_documents([tmp_path / "p1", tmp_path / "p2"])
    apart = read_documents([tmp_path / "p1"]) + read_documents([tmp_path / "p2"])
    assert [d.text for d in together] == ["一つ目", "二つ目"]
    assert len({d.id for d in together}) == 2
    assert [d.id for d in apart] == [d.id for d in together]


def test_ids_do_not_depend_on_how_the_path_is_spelled(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "noid.jsonl").write_text('{"text": "猫"}\n{"text": "犬"}\n', encoding="utf-8")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "a.txt").write_text("本文", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    spellings = ["noid.jsonl", str(tmp_path / "noid.jsonl"), "sub/../noid.jsonl", "./noid.jsonl"]
    ids = [[d.id for d in read_documents([spelling])] for spelling in spellings]
    assert all(each == ids[0] for each in ids) and len(set(ids[0])) == 2
    folder_ids = [read_documents([spelling])[0].id for spelling in ("f", str(tmp_path / "f"), "sub/../f", "f/a.txt")]
    assert len(set(folder_ids)) == 1


def test_a_file_named_twice_is_read_once(tmp_path):
    (tmp_path / "a.txt").write_text("本文", encoding="utf-8")
    assert len(read_documents([tmp_path, tmp_path / "a.txt"])) == 1


def test_duplicate_id_message_names_both_places(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"id": "x", "text": "一"}\n', encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "二"}\n{"id": "x", "text": "三"}\n', encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        read_documents([tmp_path / "a.jsonl", tmp_path / "b.jsonl"])
    message = str(caught.value)
    assert "'x'" in message and "a.jsonl:1" in message and "b.jsonl:2" in message


def test_empty_input_says_no_documents(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no documents"):
        read_documents([tmp_path / "empty.jsonl"])


def test_invalid_utf8_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_bytes("猫".encode() + b"\xff\n")
    with pytest.raises(ValueError, match=r"bad\.txt: not valid UTF-8 \(byte 0xff"):
        read_documents([tmp_path / "bad.txt"])
    (tmp_path / "bad.jsonl").write_bytes(b'{"text": "a"}\n{"text": "\xfe"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not valid UTF-8"):
        read_documents([tmp_path / "bad.jsonl"])


def test_lone_surrogate_in_jsonl_names_the_line(tmp_path):
    (tmp_path / "s.jsonl").write_text('{"text": "ok"}\n{"text": "a\\ud800b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"s\.jsonl:2: field 'text' holds a lone surrogate '\\ud800' at character 1"):
        read_documents([tmp_path / "s.jsonl"])
