"""The framework retrievers: every search mode reaches the index, an unknown one is refused, and each returns what its store's as_retriever() returns."""

from __future__ import annotations

import pytest

from sse_integrations.qdrant import MatryoshkaIndex
from tests.helpers import HYBRID_CORPUS, hybrid_index
from tests.helpers import HYBRID_QUERIES as QUERIES


@pytest.fixture()
def index(tiny_encoder) -> MatryoshkaIndex:
    return hybrid_index(tiny_encoder)


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_langchain_retriever_mode_matches_the_index(index, mode):
    from sse_integrations.langchain import MatryoshkaQdrantRetriever

    retriever = MatryoshkaQdrantRetriever(index=index, k=3, mode=mode)
    for query in QUERIES:
        expected = [hit.payload["doc_id"] for hit in index.search(query, limit=3, mode=mode)]
        assert [document.id for document in retriever.invoke(query)] == expected


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_llama_index_retriever_mode_matches_the_index(index, mode):
    from sse_integrations.llama_index import MatryoshkaQdrantRetriever

    retriever = MatryoshkaQdrantRetriever(index, similarity_top_k=3, mode=mode)
    for query in QUERIES:
        expected = [hit.payload["doc_id"] for hit in index.search(query, limit=3, mode=mode)]
        assert [node.node.id_ for node in retriever.retrieve(query)] == expected


def test_retrievers_reject_an_unknown_mode(index):
    from pydantic import ValidationError

    from sse_integrations.langchain import MatryoshkaQdrantRetriever as LangChainRetriever
    from sse_integrations.llama_index import MatryoshkaQdrantRetriever as LlamaIndexRetriever

    with pytest.raises(ValidationError):
        LangChainRetriever(index=index, mode="bm25")
    with pytest.raises(ValueError, match="mode must be"):
        LlamaIndexRetriever(index, mode="bm25")


# The retrievers are views of the vector stores: same hits, same documents/nodes, same filters,
# on both engines (qdrant-client local mode and the embedded Qdrant Edge shard).


def in_score_order(ranked: list, score_of) -> list:
    """``ranked`` with equal-score runs sorted by id: engines order RRF ties differently from call to call."""
    scores = [round(score_of(item), 5) for item in ranked]
    assert scores == sorted(scores, reverse=True)
    return sorted(ranked, key=lambda item: (-round(score_of(item), 5), _id_of(item)))


def _id_of(item) -> str:
    return item.id if hasattr(item, "page_content") else item.node.node_id


@pytest.fixture(params=["client", "edge"])
def backend_index(request, tiny_encoder, tmp_path) -> MatryoshkaIndex:
    return hybrid_index(tiny_encoder, None if request.param == "client" else str(tmp_path / "edge"))


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_langchain_retriever_returns_what_as_retriever_returns(backend_index, mode):
    from qdrant_client import models

    from sse_integrations.langchain import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore

    store = MatryoshkaQdrantVectorStore(backend_index, retrieval_mode=mode)
    k = len(HYBRID_CORPUS)  # every match: a tie at the cut could otherwise leave out different documents
    for filter in (None, {"group": 1}, models.Filter(must_not=[models.HasIdCondition(has_id=[])])):
        view = store.as_retriever(search_kwargs={"k": k, "filter": filter})
        retriever = MatryoshkaQdrantRetriever(index=backend_index, k=k, mode=mode, filter=filter, legacy_metadata=False)
        for query in QUERIES:
            expected = view.invoke(query)
            assert expected, query
            scores = {document.id: score for document, score in store.similarity_search_with_score(query, k, filter)}
            assert in_score_order(retriever.invoke(query), lambda d, scores=scores: scores[d.id]) == in_score_order(
                expected, lambda d, scores=scores: scores[d.id]
            )
    with pytest.raises(ValueError, match="search_kwargs may not set"):
        MatryoshkaQdrantRetriever(index=backend_index, search_kwargs={"k": 2})


@pytest.mark.parametrize("mode", ["dense", "sparse", "hybrid"])
def test_llama_index_retriever_returns_what_as_retriever_returns(backend_index, mode, tiny_encoder):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.vector_stores import MetadataFilter, MetadataFilters

    from sse_integrations.llama_index import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore, SSEEmbedding

    vector_index = VectorStoreIndex.from_vector_store(
        MatryoshkaQdrantVectorStore(backend_index), embed_model=SSEEmbedding(encoder=tiny_encoder)
    )
    query_mode = {"dense": "default", "sparse": "sparse", "hybrid": "hybrid"}[mode]
    for filters in (None, MetadataFilters(filters=[MetadataFilter(key="group", value=1)])):
        k = len(HYBRID_CORPUS)  # every match: a tie at the cut could otherwise leave out different nodes
        view = vector_index.as_retriever(similarity_top_k=k, filters=filters, vector_store_query_mode=query_mode)
        retriever = MatryoshkaQdrantRetriever(backend_index, k, filters=filters, mode=mode, legacy_metadata=False)
        for query in QUERIES:
            expected = view.retrieve(query)
            assert expected, query
            got = retriever.retrieve(query)
            got, expected = in_score_order(got, lambda hit: hit.score), in_score_order(expected, lambda hit: hit.score)
            assert [hit.node for hit in got] == [hit.node for hit in expected]
            # qdrant-client local mode's cosines jitter in the 8th digit between identical calls.
            assert [hit.score for hit in got] == pytest.approx([hit.score for hit in expected], rel=1e-6)


def test_a_qdrant_filter_on_the_llama_index_retriever_is_the_stores_qdrant_filters(backend_index):
    from llama_index.core.vector_stores.types import VectorStoreQuery
    from qdrant_client import models

    from sse_integrations.llama_index import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore

    group_0 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=0))])
    store = MatryoshkaQdrantVectorStore(backend_index)
    for query in QUERIES:
        result = store.query(VectorStoreQuery(query_str=query, similarity_top_k=3), qdrant_filters=group_0)
        hits = MatryoshkaQdrantRetriever(backend_index, 3, filter=group_0, legacy_metadata=False).retrieve(query)
        assert [hit.node.node_id for hit in hits] == result.ids
        assert all(hit.node.metadata["group"] == 0 for hit in hits)


def test_the_old_metadata_keys_stay_one_release_with_a_deprecation_warning(index):
    from sse_integrations.langchain import MatryoshkaQdrantRetriever as LangChainRetriever
    from sse_integrations.langchain import MatryoshkaQdrantVectorStore as LangChainStore
    from sse_integrations.llama_index import MatryoshkaQdrantRetriever as LlamaIndexRetriever

    query = QUERIES[0]
    with pytest.warns(FutureWarning, match="legacy_metadata=False"):
        legacy = LangChainRetriever(index=index, k=3)
    scored = LangChainStore(index).similarity_search_with_score(query, k=3)
    for document, (plain, score) in zip(legacy.invoke(query), scored, strict=True):
        assert document.metadata == {**plain.metadata, "doc_id": plain.id, "score": pytest.approx(score)}
    with pytest.warns(FutureWarning, match="legacy_metadata=False"):
        old_nodes = LlamaIndexRetriever(index, 3).retrieve(query)
    new_nodes = LlamaIndexRetriever(index, 3, legacy_metadata=False).retrieve(query)
    for old, new in zip(old_nodes, new_nodes, strict=True):
        assert old.node.metadata == {**new.node.metadata, "doc_id": new.node.node_id}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        LangChainRetriever(index=index, legacy_metadata=False)
        LlamaIndexRetriever(index, legacy_metadata=False)


def test_the_deprecation_reaches_a_scripts_user(tiny_model_path):
    """Shown without -W flags: a DeprecationWarning raised inside the frameworks' constructors would be hidden."""
    import subprocess
    import sys

    script = (
        "from qdrant_client import QdrantClient\n"
        "from sse_integrations import SSEEncoder\n"
        "from sse_integrations.qdrant import MatryoshkaIndex\n"
        "from sse_integrations.langchain import MatryoshkaQdrantRetriever as L\n"
        "from sse_integrations.llama_index import MatryoshkaQdrantRetriever as X\n"
        f"index = MatryoshkaIndex(QdrantClient(':memory:'), 'w', SSEEncoder.from_pretrained({str(tiny_model_path)!r}))\n"
        "L(index=index)\n"
        "X(index)\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr.count("legacy_metadata=False") == 2, completed.stderr


def test_a_retriever_follows_its_index_and_mode_when_they_change(index, tiny_encoder):
    from sse_integrations.langchain import MatryoshkaQdrantRetriever as LangChainRetriever
    from sse_integrations.llama_index import MatryoshkaQdrantRetriever as LlamaIndexRetriever

    other = hybrid_index(tiny_encoder)
    other.delete(["doc-0", "doc-1", "doc-2"])
    query = QUERIES[0]
    retriever = LangChainRetriever(index=index, k=3, legacy_metadata=False)
    assert [p.payload["doc_id"] for p in other.search(query, limit=3)] != [
        p.payload["doc_id"] for p in index.search(query, limit=3)
    ]
    copied = retriever.model_copy(update={"index": other})
    assert [d.id for d in copied.invoke(query)] == [p.payload["doc_id"] for p in other.search(query, limit=3)]
    assert [d.id for d in retriever.invoke(query, limit=2)] == [
        p.payload["doc_id"] for p in index.search(query, limit=2)
    ]
    with pytest.raises(ValueError, match="search_kwargs may not set"):
        LangChainRetriever(index=index, search_kwargs={"filter": None})
    nodes = LlamaIndexRetriever(index, 3, legacy_metadata=False)
    nodes.index, nodes.mode = other, "sparse"
    expected = [p.payload["doc_id"] for p in other.search(query, limit=3, mode="sparse")]
    assert [hit.node.node_id for hit in nodes.retrieve(query)] == expected
