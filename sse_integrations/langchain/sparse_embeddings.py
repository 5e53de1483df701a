"""Our Japanese-capable BM25 for langchain-qdrant's own store: :class:`SSESparseEmbeddings`.

langchain-qdrant's hybrid and sparse modes take any ``SparseEmbeddings``; its usual one (fastembed's
``Qdrant/bm25``) splits words at spaces and so finds nothing for Japanese queries. This one gives
the store the sparse vectors ``MatryoshkaIndex`` stores (SSE token ids + character bigrams, BM25
term weights), and the collection's IDF modifier supplies the rest: create the collection with
``sparse_vector_params=SSESparseEmbeddings.sparse_vector_params``.

Example:
    >>> from langchain_qdrant import QdrantVectorStore, RetrievalMode
    >>> from sse_integrations.langchain import SSEEmbeddings, SSESparseEmbeddings
    >>> store = QdrantVectorStore.from_texts(
    ...     ["猫が窓際で眠っている", "株価が急落した"], embedding=SSEEmbeddings(),
    ...     sparse_embedding=SSESparseEmbeddings(), retrieval_mode=RetrievalMode.HYBRID,
    ...     sparse_vector_params=SSESparseEmbeddings.sparse_vector_params,
    ...     location=":memory:", collection_name="docs")
    >>> store.similarity_search("窓際の猫", k=1)[0].page_content
    '猫が窓際で眠っている'
"""

from __future__ import annotations

from typing import Any, ClassVar

try:
    from langchain_qdrant import SparseEmbeddings, SparseVector
    from qdrant_client import models
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'SSESparseEmbeddings needs langchain-qdrant: pip install "sse-integrations[langchain-qdrant]"'
    ) from error

from ..sparse_stream import StreamingSparseAdapter

__all__ = ["SSESparseEmbeddings"]


class SSESparseEmbeddings(StreamingSparseAdapter, SparseEmbeddings):
    """langchain-qdrant ``SparseEmbeddings`` from our BM25 sparse encoder.

    Documents get BM25 term-frequency weights, queries one unit weight per term; the IDF part is
    Qdrant's, so the sparse vector must be created with ``Modifier.IDF`` (pass
    :attr:`sparse_vector_params` to ``from_texts`` / ``from_documents`` / ``construct_instance``).

    BM25's average document length runs over the documents embedded so far (the store embeds in
    batches of ``batch_size``, 64 by default); :meth:`fit` on the corpus first, or a known
    ``avg_doc_length``, fixes it, and the weights then equal ``MatryoshkaIndex``'s.

    Args:
        model_name_or_path: model folder or hub id whose tokenizer makes the terms; None = the
            bundled default model.
        encoder: an already loaded :class:`SSEEncoder` to share with :class:`SSEEmbeddings`.
        features: "tokens", "bigrams" or "tokens+bigrams".
        k1: BM25's term-frequency saturation.
        b: BM25's document-length normalisation.
        avg_doc_length: a fixed average document length in terms; None = a running average.
    """

    # The collection setting the weights assume: Qdrant multiplies in each term's IDF.
    sparse_vector_params: ClassVar[dict[str, Any]] = {"modifier": models.Modifier.IDF}

    def embed_documents(self, texts: list[str]) -> list[SparseVector]:
        return [SparseVector(indices=v.indices, values=v.values) for v in self.bm25.encode_documents(texts)]

    def embed_query(self, text: str) -> SparseVector:
        vector = self.bm25.encode_query(text)
        return SparseVector(indices=vector.indices, values=vector.values)

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.bm25.get_config().items())
        return f"SSESparseEmbeddings({settings})"
