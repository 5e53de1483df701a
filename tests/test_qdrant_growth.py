"""An index over time: BM25 statistics as the collection grows, layouts read back, concurrent writers."""

from __future__ import annotations

import pytest
from qdrant_client import QdrantClient

from sse_integrations.qdrant import SPARSE_METADATA_KEY, MatryoshkaIndex
from sse_integrations.sparse import SparseEncoder
from tests.helpers import HYBRID_CORPUS as CORPUS
from tests.helpers import hit_ids, run_in_threads

SHORT = ["猫。", "犬。", "雨。", "空。"]
LONG = [text * 4 for text in CORPUS[:4]]


@pytest.mark.parametrize("backend", ["client", "edge"])
def test_bm25_average_length_follows_every_add(tiny_encoder, tmp_path, backend):
    where = QdrantClient(":memory:") if backend == "client" else tmp_path
    index = MatryoshkaIndex(where, "g", tiny_encoder, sparse=True)
    index.add_texts(SHORT, ids=[f"s{i}" for i in range(len(SHORT))])
    index.add_texts(LONG, ids=[f"l{i}" for i in range(len(LONG))])
    expected = SparseEncoder(tiny_encoder.tokenizer).fit(SHORT + LONG).avg_doc_length
    assert index.sparse_encoder.avg_doc_length == pytest.approx(expected)
    stored = index.client.get_collection("g").config.metadata[SPARSE_METADATA_KEY]
    assert stored["avg_doc_length"] == pytest.approx(expected) and stored["doc_count"] == len(SHORT + LONG)
    # Another index on the collection (a new process, say) continues from the stored sums.
    if backend == "edge":
        index.close()
        again = MatryoshkaIndex(tmp_path, "g", tiny_encoder, sparse=True)
    else:
        again = MatryoshkaIndex(where, "g", tiny_encoder, sparse=True)
    again.add_texts(["晴れ。"], ids=["x"])
    expected = SparseEncoder(tiny_encoder.tokenizer).fit([*SHORT, *LONG, "晴れ。"]).avg_doc_length
    assert again.sparse_encoder.avg_doc_length == pytest.approx(expected)
    if backend == "edge":
        again.close()


@pytest.mark.parametrize("backend", ["client", "edge"])
def test_a_sparse_collection_opened_without_sparse_true_reads_its_layout(tiny_encoder, tmp_path, backend):
    client = QdrantClient(":memory:") if backend == "client" else None
    made = MatryoshkaIndex(client or tmp_path, "s", tiny_encoder, sparse=True)
    made.add_texts(CORPUS[:6], ids=[f"d{i}" for i in range(6)])
    expected = hit_ids(made.search(CORPUS[2], limit=3, mode="hybrid"))
    if backend == "edge":
        made.close()
    plain = MatryoshkaIndex(client or tmp_path, "s", tiny_encoder)
    assert hit_ids(plain.search(CORPUS[2], limit=3, mode="hybrid")) == expected
    plain.add_texts([CORPUS[7]], ids=["new"])  # new points get their sparse vector too
    assert "new" in hit_ids(plain.search(CORPUS[7], limit=3, mode="sparse"))
    if backend == "edge":
        plain.close()


@pytest.mark.parametrize("round_", range(2))
def test_eight_threads_adding_to_one_local_client_keep_every_document(tiny_encoder, round_):
    client = QdrantClient(":memory:")

    def add(worker: int) -> None:
        # One index per thread, as a web server's request handlers would make them. Short texts
        # in batches of 2: many interleaved upserts, which corrupted local mode's arrays unguarded.
        index = MatryoshkaIndex(client, "t", tiny_encoder)
        index.add_texts(
            [f"文 {worker}-{i}" for i in range(100)], ids=[f"{worker}-{i}" for i in range(100)], batch_size=2
        )

    run_in_threads(add)
    assert MatryoshkaIndex(client, "t", tiny_encoder).count() == 8 * 100


@pytest.mark.parametrize("backend", ["client", "edge"])
def test_bm25_statistics_forget_deleted_documents(tiny_encoder, tmp_path, backend):
    """delete and delete_where subtract the deleted documents' terms, so the average is that of what is stored."""
    from qdrant_client import models

    where = QdrantClient(":memory:") if backend == "client" else tmp_path
    index = MatryoshkaIndex(where, "g", tiny_encoder, sparse=True)
    index.add_texts(SHORT, ids=[f"s{i}" for i in range(len(SHORT))], payloads=[{"kind": "short"}] * len(SHORT))
    index.add_texts(LONG, ids=[f"l{i}" for i in range(len(LONG))], payloads=[{"kind": "long"}] * len(LONG))
    index.delete(["l0", "l1", "unknown"])
    kept = SHORT + LONG[2:]
    expected = SparseEncoder(tiny_encoder.tokenizer).fit(kept).avg_doc_length
    stored = index.client.get_collection("g").config.metadata[SPARSE_METADATA_KEY]
    assert stored["doc_count"] == len(kept) and index.sparse_encoder.avg_doc_length == pytest.approx(expected)
    index.delete_where(models.Filter(must=[models.FieldCondition(key="kind", match=models.MatchValue(value="long"))]))
    expected = SparseEncoder(tiny_encoder.tokenizer).fit(SHORT).avg_doc_length
    stored = index.client.get_collection("g").config.metadata[SPARSE_METADATA_KEY]
    assert stored["doc_count"] == len(SHORT) and stored["avg_doc_length"] == pytest.approx(expected)
    assert index.count() == len(SHORT)
    if backend == "edge":
        index.close()
