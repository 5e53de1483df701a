"""Hybrid search in the index: a BM25 sparse vector beside the Matryoshka vectors, fused in Qdrant (local mode)."""

from __future__ import annotations

import math

import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models
from qdrant_client.hybrid.fusion import DEFAULT_RANKING_CONSTANT_K

from sse_integrations.qdrant import SPARSE_METADATA_KEY, AsyncMatryoshkaIndex, MatryoshkaIndex
from sse_integrations.sparse import SparseEncoder
from tests.helpers import HYBRID_CORPUS as CORPUS
from tests.helpers import HYBRID_IDS as IDS
from tests.helpers import HYBRID_QUERIES as QUERIES
from tests.helpers import hybrid_index


@pytest.fixture()
def index(tiny_encoder) -> MatryoshkaIndex:
    return hybrid_index(tiny_encoder)


def test_collection_has_an_idf_sparse_vector_and_stores_the_average_length(index, tiny_encoder):
    info = index.client.get_collection("hybrid")
    assert info.config.params.sparse_vectors["sparse"].modifier == models.Modifier.IDF
    expected = SparseEncoder(tiny_encoder.tokenizer).fit(CORPUS).avg_doc_length
    assert info.config.metadata[SPARSE_METADATA_KEY]["avg_doc_length"] == pytest.approx(expected)


def test_sparse_scores_are_bm25_with_qdrant_idf(index, tiny_encoder):
    encoder = SparseEncoder(tiny_encoder.tokenizer).fit(CORPUS)
    documents = encoder.encode_documents(CORPUS)
    document_frequency: dict[int, int] = {}
    for vector in documents:
        for term in vector.indices:
            document_frequency[term] = document_frequency.get(term, 0) + 1
    n = len(CORPUS)
    for query in QUERIES:
        [query_vector] = encoder.encode_queries([query])
        expected = {}
        for doc_id, vector in zip(IDS, documents):
            weights = dict(zip(vector.indices, vector.values))
            score = sum(
                math.log(1 + (n - document_frequency[t] + 0.5) / (document_frequency[t] + 0.5)) * weights[t]
                for t in query_vector.indices
                if t in weights
            )
            if score > 0:
                expected[doc_id] = score
        hits = index.search(query, limit=len(CORPUS), mode="sparse")
        assert {hit.payload["doc_id"]: hit.score for hit in hits} == pytest.approx(expected, rel=1e-5)


def test_hybrid_is_the_rrf_of_the_two_candidate_lists(index):
    limit = 4
    candidates = index.fusion_factor * limit
    for query in QUERIES:
        dense = [hit.payload["doc_id"] for hit in index.search(query, limit=candidates)]
        sparse = [hit.payload["doc_id"] for hit in index.search(query, limit=candidates, mode="sparse")]
        fused: dict[str, float] = {}
        for ranking in (dense, sparse):
            for position, doc_id in enumerate(ranking):
                fused[doc_id] = fused.get(doc_id, 0.0) + 1 / (position + DEFAULT_RANKING_CONSTANT_K)
        hits = index.search(query, limit=limit, mode="hybrid")
        assert [hit.score for hit in hits] == pytest.approx(sorted(fused.values(), reverse=True)[:limit])
        for hit in hits:
            assert fused[hit.payload["doc_id"]] == pytest.approx(hit.score)


@pytest.mark.parametrize(("weights", "k"), [((1.0, 0.3), None), ((0.5, 1.0), 10), (None, 60)])
def test_weighted_rrf_is_qdrants_formula_over_the_two_lists(tiny_encoder, weights, k):
    index = MatryoshkaIndex(
        QdrantClient(":memory:"), "w", tiny_encoder, sparse=True, fusion_factor=2, fusion_weights=weights, rrf_k=k
    )
    index.add_texts(CORPUS, ids=IDS)
    limit, constant = 4, k if k is not None else DEFAULT_RANKING_CONSTANT_K
    for query in QUERIES:
        fused: dict[str, float] = {}
        for mode, weight in zip(("dense", "sparse"), weights or (1.0, 1.0)):
            ranking = [hit.payload["doc_id"] for hit in index.search(query, limit=2 * limit, mode=mode)]
            for position, doc_id in enumerate(ranking):
                fused[doc_id] = fused.get(doc_id, 0.0) + 1 / ((position + 1) / weight + constant - 1)
        hits = index.search(query, limit=limit, mode="hybrid")
        assert [hit.score for hit in hits] == pytest.approx(sorted(fused.values(), reverse=True)[:limit])
        for hit in hits:
            assert fused[hit.payload["doc_id"]] == pytest.approx(hit.score)


@pytest.mark.parametrize(
    "options",
    [
        {"fusion": "rrf"},
        {"fusion": "dbsf"},
        {"fusion_weights": (1.0, 0.3)},
        {"fusion_weights": (0.2, 1.0), "rrf_k": 10},
    ],
)
def test_client_fusion_equals_the_query_api(tiny_encoder, options):
    client = QdrantClient(":memory:")
    local = MatryoshkaIndex(client, "h", tiny_encoder, sparse=True, execution="client", **options)
    local.add_texts(CORPUS, ids=IDS)
    server_style = MatryoshkaIndex(client, "h", tiny_encoder, sparse=True, execution="prefetch", **options)
    for query in QUERIES:
        ours = local.search(query, limit=5, mode="hybrid")
        theirs = server_style.search(query, limit=5, mode="hybrid")
        assert [hit.score for hit in ours] == pytest.approx([hit.score for hit in theirs], abs=1e-6)
        assert {hit.id for hit in ours} == {hit.id for hit in theirs}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fusion": "dbsf", "fusion_weights": (1.0, 0.5)}, "rrf' only"),
        ({"fusion": "dbsf", "rrf_k": 10}, "rrf' only"),
        ({"fusion_weights": (1.0,)}, "two finite weights"),
        ({"fusion_weights": (1.0, -0.5)}, "two finite weights"),
        ({"fusion_weights": (0, 0)}, "not both 0"),
        ({"fusion_weights": (1.0, float("nan"))}, "two finite weights"),
        ({"fusion_weights": ("dense", 1.0)}, "two finite weights"),
        ({"fusion_weights": 0.5}, "two finite weights"),
        ({"rrf_k": 0}, "rrf_k"),
    ],
)
def test_bad_fusion_options_are_refused_before_any_search(tiny_encoder, options, message):
    with pytest.raises(ValueError, match=message):
        MatryoshkaIndex(QdrantClient(":memory:"), "bad", tiny_encoder, sparse=True, **options)


def test_filters_apply_to_both_branches(index):
    only_even = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=0))])
    for mode in ("sparse", "hybrid"):
        hits = index.search("東京のホテル", limit=6, mode=mode, filter=only_even)
        assert hits and all(hit.payload["group"] == 0 for hit in hits)


def test_search_batch_matches_single_searches(index):
    batch = index.search_batch(QUERIES, limit=3, mode="hybrid")
    assert [[hit.id for hit in hits] for hits in batch] == [
        [hit.id for hit in index.search(query, limit=3, mode="hybrid")] for query in QUERIES
    ]


def test_reopened_storage_reads_the_stored_average_length(tmp_path, tiny_encoder):
    first = MatryoshkaIndex(QdrantClient(path=str(tmp_path)), "h", tiny_encoder, sparse=True)
    first.add_texts(CORPUS, ids=IDS)
    # Reopened storage must give every document the same BM25 score. Hybrid rankings are not
    # compared in full: some documents tie on BM25 (here two at 0.1244), reopened
    # storage may list such ties in another order, and RRF turns that order into scores.
    expected = {hit.id: hit.score for hit in first.search("設定ファイル", limit=len(CORPUS), mode="sparse")}
    top_hybrid = first.search("設定ファイル", limit=5, mode="hybrid")[0]
    stored = first.sparse_encoder.avg_doc_length
    first.client.close()
    again = MatryoshkaIndex(QdrantClient(path=str(tmp_path)), "h", tiny_encoder, sparse=True)
    reopened = {hit.id: hit.score for hit in again.search("設定ファイル", limit=len(CORPUS), mode="sparse")}
    assert reopened == pytest.approx(expected)
    hybrid = again.search("設定ファイル", limit=5, mode="hybrid")
    assert len(hybrid) == 5 and (hybrid[0].id, hybrid[0].score) == (top_hybrid.id, pytest.approx(top_hybrid.score))
    assert again.sparse_encoder.avg_doc_length == stored
    again.add_texts(["新しい文書です。"], ids=["new"])  # the average now includes the new document
    expected = SparseEncoder(tiny_encoder.tokenizer).fit([*CORPUS, "新しい文書です。"]).avg_doc_length
    assert again.sparse_encoder.avg_doc_length == pytest.approx(expected)
    again.client.close()


def test_dense_only_index_asked_for_hybrid_is_a_clear_error(tiny_encoder):
    dense = MatryoshkaIndex(QdrantClient(":memory:"), "d", tiny_encoder)
    dense.add_texts(CORPUS[:3])
    for mode in ("sparse", "hybrid"):
        with pytest.raises(ValueError, match="made without sparse=True"):
            dense.search("東京", mode=mode)
    with pytest.raises(ValueError, match="mode must be"):
        dense.search("東京", mode="bm25")


def test_opening_a_dense_collection_as_sparse_is_refused(tiny_encoder):
    client = QdrantClient(":memory:")
    MatryoshkaIndex(client, "d", tiny_encoder).add_texts(CORPUS[:3])
    with pytest.raises(ValueError, match="sparse vector 'sparse' is missing"):
        MatryoshkaIndex(client, "d", tiny_encoder, sparse=True).search("東京", mode="hybrid")


async def test_async_client_hybrid(tiny_encoder, index):
    async_index = AsyncMatryoshkaIndex(
        AsyncQdrantClient(":memory:"), "hybrid", tiny_encoder, sparse=True, fusion_factor=2
    )
    await async_index.add_texts(CORPUS, ids=IDS, payloads=[{"group": i % 2} for i in range(len(CORPUS))])
    for query in QUERIES:
        ours = await async_index.search(query, limit=4, mode="hybrid")
        assert [hit.id for hit in ours] == [hit.id for hit in index.search(query, limit=4, mode="hybrid")]
