"""What both framework retrievers share: every search mode reaches the index, an unknown one is refused."""

from __future__ import annotations

import pytest

from sse_integrations.qdrant import MatryoshkaIndex
from tests.helpers import HYBRID_QUERIES as QUERIES
from tests.helpers import hybrid_index


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
