"""Helpers shared by several test modules (fixtures built on them live in conftest.py)."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEV_SET = REPO / "tests" / "data" / "tatoeba_ja_dev"
CORPUS_FILE = DEV_SET / "corpus.jsonl"
QUERIES_FILE = DEV_SET / "queries.jsonl"

# A small corpus whose words overlap the queries, so BM25 and the fused rankings have something to rank.
HYBRID_CORPUS = [
    "東京駅の近くにホテルがあります。",
    "京都の古いお寺を訪ねました。",
    "設定ファイルを開いてオプションを変更してください。",
    "データベースに接続できませんでした。",
    "猫が窓のそばで眠っている。",
    "犬は公園で元気に走り回っている。",
    "東京から大阪まで新幹線で行きます。",
    "エラーが発生した場合はログを確認してください。",
    "春には桜の花が咲きます。",
    "冬になると山に雪が積もります。",
    "このアプリは検索がとても速い。",
    "図書館で静かに勉強しています。",
]
HYBRID_IDS = [f"doc-{i}" for i in range(len(HYBRID_CORPUS))]
HYBRID_QUERIES = ["東京のホテル", "設定ファイルのオプション", "ログを確認", "雪の山"]


def distinct_corpus(encoder, count: int) -> tuple[list[str], list[str]]:
    """The first ``count`` dev-set documents whose fixture embeddings differ, as (ids, texts).

    The fixture's tiny vocabulary maps some different sentences to the same token bag; exact
    score ties would let an engine's tie-breaking, not the ranking, decide the order.
    """
    with open(CORPUS_FILE, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    ids, texts, seen = [], [], set()
    for row, vector in zip(rows, np.round(encoder.encode([row["text"] for row in rows]), 4)):
        if vector.tobytes() not in seen:
            seen.add(vector.tobytes())
            ids.append(row["_id"])
            texts.append(row["text"])
    assert len(texts) >= count, f"fewer than {count} distinct documents"
    return ids[:count], texts[:count]


def query_texts(count: int) -> list[str]:
    """The first ``count`` dev-set queries (all different)."""
    with open(QUERIES_FILE, encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:count]


def hit_ids(points) -> list[str]:
    """The caller's document ids of an index's hits, in order."""
    return [point.payload["doc_id"] for point in points]


def tied_groups(ids, scores, digits: int = 5) -> list[set]:
    """A ranking as groups of equal score, best first: engines may order exact ties either way."""
    groups: dict[float, set] = {}
    for doc_id, score in zip(ids, scores):
        groups.setdefault(round(score, digits), set()).add(doc_id)
    return [groups[score] for score in sorted(groups, reverse=True)]


def run_example(name: str, arguments: list[str], monkeypatch, capsys) -> str:
    """Run examples/<name> as a script with ``arguments``; returns what it printed."""
    example = REPO / "examples" / name
    monkeypatch.setattr("sys.argv", [str(example), *arguments])
    runpy.run_path(str(example), run_name="__main__")
    return capsys.readouterr().out


def hybrid_index(encoder, client=None):
    """The hybrid corpus in a sparse index (fusion over 2 x limit candidates), payload ``group`` = position % 2."""
    from qdrant_client import QdrantClient

    from sse_integrations.qdrant import MatryoshkaIndex

    index = MatryoshkaIndex(client or QdrantClient(":memory:"), "hybrid", encoder, sparse=True, fusion_factor=2)
    index.add_texts(HYBRID_CORPUS, ids=HYBRID_IDS, payloads=[{"group": i % 2} for i in range(len(HYBRID_CORPUS))])
    return index


def run_in_threads(work, count: int = 8) -> None:
    """Run ``work(worker)`` for workers 0..count-1 in threads released together; re-raise the first error."""
    import threading

    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def run(worker: int) -> None:
        try:
            barrier.wait()
            work(worker)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(worker,)) for worker in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


# The engines an index runs on: qdrant-client's local mode, the embedded Edge engine, and a real
# Qdrant server (only when QDRANT_URL is set; see docs/testing.md).
BACKENDS = ["client", "edge", "server"]
SERVER_SKIP_REASON = (
    "server backend: set QDRANT_URL (and QDRANT_API_KEY if the server needs one) "
    "to run the client-path tests against a real Qdrant server"
)


class Engine:
    """One backend for a test: where an index lives, and collection names unique on a shared server."""

    def __init__(self, kind: str, folder: Path) -> None:
        import os
        import uuid

        self.kind = kind
        self.folder = folder
        self.url = os.environ.get("QDRANT_URL")
        self.api_key = os.environ.get("QDRANT_API_KEY")
        # A server outlives the test run and may be shared: every collection name gets this run's prefix.
        self.prefix = f"sse_test_{uuid.uuid4().hex[:12]}_" if kind == "server" else ""

    def __repr__(self) -> str:
        return f"Engine({self.kind!r})"

    def name(self, base: str) -> str:
        return self.prefix + base

    def where(self):
        """What an index takes as its first argument: a sync client, or a folder for the embedded engine."""
        from qdrant_client import QdrantClient

        if self.kind == "edge":
            return self.folder / "edge"
        if self.kind == "server":
            return QdrantClient(url=self.url, api_key=self.api_key)
        return QdrantClient(":memory:")

    def store_kwargs(self) -> dict:
        """The vector stores' way to name the engine: ``client=`` or, for the embedded engine, ``path=``."""
        where = self.where()
        return {"path": where} if self.kind == "edge" else {"client": where}

    def async_where(self):
        from qdrant_client import AsyncQdrantClient

        if self.kind == "edge":
            return self.folder / "edge"
        if self.kind == "server":
            return AsyncQdrantClient(url=self.url, api_key=self.api_key)
        return AsyncQdrantClient(":memory:")

    def remove_collections(self) -> list[str]:
        """Delete this run's collections from the server (nothing to do for the other engines)."""
        if self.kind != "server":
            return []
        from qdrant_client import QdrantClient

        client = QdrantClient(url=self.url, api_key=self.api_key)
        names = [c.name for c in client.get_collections().collections if c.name.startswith(self.prefix)]
        for name in names:
            client.delete_collection(name)
        client.close()
        return names
