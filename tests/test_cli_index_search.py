"""`sse-integrations index / search / demo` on embedded Qdrant storage, including resuming after an interruption."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sse_integrations.cli import main
from sse_integrations.qdrant import MatryoshkaIndex, read_documents
from sse_integrations.qdrant.edge import EdgeClient

SAMPLE_CORPUS = (
    Path(__file__).resolve().parent.parent / "sse_integrations" / "assets" / "sample_corpus" / "corpus.jsonl"
)
REPO = Path(__file__).resolve().parent.parent
DEV_CORPUS = REPO / "tests" / "data" / "tatoeba_ja_dev" / "corpus.jsonl"


def stored_doc_ids(path: Path, collection: str) -> list:
    client = EdgeClient(path)
    try:
        records, _ = client.scroll(collection, limit=100_000, with_payload=True)
        return [record.payload["doc_id"] for record in records]
    finally:
        client.close()


def index_options(storage: Path, model: Path, batch_size: int) -> list[str]:
    """`index` options for collection "docs" in embedded storage at ``storage``."""
    return [
        "--collection",
        "docs",
        "--qdrant-path",
        str(storage),
        "--model",
        str(model),
        "--batch-size",
        str(batch_size),
    ]


@pytest.fixture()
def jsonl(tmp_path) -> Path:
    lines = SAMPLE_CORPUS.read_text(encoding="utf-8").splitlines()[:60]
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_index_then_search_prints_ranked_hits(jsonl, tmp_path, tiny_model_path, tiny_encoder, capsys):
    storage = tmp_path / "qdrant"
    base = ["--collection", "docs", "--qdrant-path", str(storage), "--model", str(tiny_model_path)]
    assert main(["index", str(jsonl), *base, "--batch-size", "16", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "indexed 60 documents into 'docs'" in out and "the collection holds 60 points" in out

    assert main(["search", "猫が好きです", "雨の日", *base, "--limit", "5", "--json"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["query"] for r in results] == ["猫が好きです", "雨の日"]
    with MatryoshkaIndex(storage, "docs", tiny_encoder) as index:
        expected = index.search("猫が好きです", limit=5)
    assert [h["id"] for h in results[0]["hits"]] == [p.payload["doc_id"] for p in expected]
    assert [h["rank"] for h in results[0]["hits"]] == [1, 2, 3, 4, 5]
    assert [h["score"] for h in results[0]["hits"]] == sorted((h["score"] for h in results[0]["hits"]), reverse=True)

    assert main(["search", "猫が好きです", *base, "--limit", "3", "--where", "theme=cats"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("query: 猫が好きです")
    hit_lines = [line for line in text.splitlines()[1:] if line.strip()]
    assert len(hit_lines) == 3 and all("cats-" in line for line in hit_lines)


def test_index_keeps_payload_fields_and_reads_text_folders(tmp_path, tiny_model_path, capsys):
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("猫が寝ている。\n犬が走る。\n", encoding="utf-8")
    (folder / "sub" / "b.md").write_text("# 見出し\n雨が降っている。\n", encoding="utf-8")
    (folder / "skip.bin").write_bytes(b"\x00")
    storage = tmp_path / "qdrant"
    base = ["--qdrant-path", str(storage), "--model", str(tiny_model_path), "--no-progress"]
    assert main(["index", str(folder), "--collection", "files", *base]) == 0
    # Ids are resolved absolute paths (see read_documents), whatever the folder was called.
    resolved = folder.resolve().as_posix()
    assert sorted(stored_doc_ids(storage, "files")) == [f"{resolved}/a.txt", f"{resolved}/sub/b.md"]
    assert main(["index", str(folder / "a.txt"), "--lines", "--collection", "lines", *base]) == 0
    expected_ids = [f"{resolved}/a.txt:1", f"{resolved}/a.txt:2"]
    assert sorted(stored_doc_ids(storage, "lines")) == expected_ids
    docs = read_documents([SAMPLE_CORPUS])
    assert docs[0].payload == {"theme": "cats", "title": "猫", "tatoeba_ids": docs[0].payload["tatoeba_ids"]}


def test_bad_inputs_exit_with_a_message(tmp_path, tiny_model_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "猫"}\n{"id": "b", "body": "犬"}\n', encoding="utf-8")
    base = ["--collection", "docs", "--qdrant-path", str(tmp_path / "q"), "--model", str(tiny_model_path)]
    assert main(["index", str(bad), *base]) == 2
    assert "bad.jsonl:2: expected an object with a string 'text' field" in capsys.readouterr().err
    twice = tmp_path / "twice.jsonl"
    twice.write_text('{"id": "a", "text": "猫"}\n{"id": "a", "text": "犬"}\n', encoding="utf-8")
    assert main(["index", str(twice), *base]) == 2
    assert "'a' appears twice" in capsys.readouterr().err
    assert main(["index", str(tmp_path / "missing.jsonl"), *base]) == 2
    assert main(["search", "猫", *base]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["search", "猫", *base[:-2], "--where", "novalue", "--model", str(tiny_model_path)]) == 2


def test_interrupted_index_resumes_to_one_point_per_document(jsonl, tmp_path, tiny_model_path, monkeypatch, capsys):
    storage = tmp_path / "qdrant"
    args = ["index", str(jsonl), *index_options(storage, tiny_model_path, batch_size=8), "--no-progress"]
    original = EdgeClient.upsert
    calls = {"n": 0}

    def interrupted(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the run
        return original(self, *a, **kw)

    monkeypatch.setattr(EdgeClient, "upsert", interrupted)
    assert main(args) == 2  # "interrupted ... run the same command again to resume", no traceback
    monkeypatch.setattr(EdgeClient, "upsert", original)
    assert len(stored_doc_ids(storage, "docs")) == 24  # three batches of 8 made it
    assert main(args) == 0
    ids = stored_doc_ids(storage, "docs")
    assert len(ids) == 60 and sorted(ids) == sorted(d.id for d in read_documents([jsonl]))


@pytest.mark.parametrize("skip_existing", [True, False])
def test_killed_index_process_resumes_to_every_document_once(tmp_path, tiny_model_path, skip_existing):
    # Enough documents in small batches that the embedded engine is still writing when the kill lands.
    total = 2000
    lines = DEV_CORPUS.read_text(encoding="utf-8").splitlines()[:total]
    source = tmp_path / "docs.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    storage = tmp_path / "qdrant"
    command = [sys.executable, "-m", "sse_integrations.cli", "index", str(source)]
    command += index_options(storage, tiny_model_path, batch_size=5)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Off a terminal the bar is drawn only when asked for (--progress).
    process = subprocess.Popen(
        [*command, "--progress"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, cwd=tmp_path
    )
    # Wait until the progress bar reports written documents, then kill without warning.
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        chunk = process.stderr.read1(4096)
        if not chunk:
            break
        seen += chunk
        done = [int(n) for n in re.findall(rb"\| *(\d+)/%d" % total, seen)]
        if any(0 < n < total for n in done):
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, seen.decode(errors="replace")[-500:]
    partial = stored_doc_ids(storage, "docs")
    assert 0 < len(partial) < total and len(set(partial)) == len(partial)

    rerun = subprocess.run(
        [*command, *(["--skip-existing"] if skip_existing else []), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert rerun.returncode == 0, rerun.stderr
    if skip_existing:
        assert f"{len(partial)} of {total} documents already indexed; adding {total - len(partial)}" in rerun.stderr
    ids = stored_doc_ids(storage, "docs")
    assert len(ids) == total and sorted(ids) == sorted(json.loads(line)["_id"] for line in lines)


def test_demo_indexes_the_sample_corpus_and_times_both_searches(tiny_model_path, capsys):
    assert main(["demo", "--model", str(tiny_model_path), "--repeats", "1", "猫を飼っています", "雨の日"]) == 0
    out = capsys.readouterr().out
    assert "indexed 308 Japanese documents" in out and "coarse 64 + full 512" in out
    assert out.count("\nquery: ") == 2
    assert out.count("  two-stage ") == 2 and out.count("  single-stage ") == 2
    assert "query" in out and "median per query" in out
