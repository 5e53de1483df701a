"""The LangChain integration: embeddings, a vector store, its retriever and filter translation.

- :class:`SSEEmbeddings` (``embeddings.py``): a ``langchain_core`` ``Embeddings`` on an :class:`SSEEncoder`;
- :class:`MatryoshkaQdrantVectorStore` (``vectorstore.py``): a ``VectorStore`` over a
  :class:`sse_integrations.qdrant.MatryoshkaIndex` (coarse Matryoshka prefix, then full-width
  rescoring), for the framework's ``from_documents`` -> ``as_retriever()`` flow;
- :class:`MatryoshkaQdrantRetriever` (``retriever.py``): the same search as a retriever built
  directly on an index;
- :func:`dict_filter_to_qdrant` (``filters.py``): LangChain's dict filters as Qdrant filters;
- :class:`SSESparseEmbeddings` (``sparse_embeddings.py``): our BM25 sparse vectors for
  langchain-qdrant's own ``QdrantVectorStore`` (hybrid and sparse modes), Japanese included.

Example:
    >>> from sse_integrations import SSEEncoder
    >>> from sse_integrations.langchain import SSEEmbeddings
    >>> encoder = SSEEncoder.from_pretrained()
    >>> embeddings = SSEEmbeddings(encoder=encoder, truncate_dim=256)
    >>> len(embeddings.embed_query("窓際の猫"))
    256
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .embeddings import SSEEmbeddings
from .retriever import MatryoshkaQdrantRetriever

if TYPE_CHECKING:
    from .filters import dict_filter_to_qdrant
    from .sparse_embeddings import SSESparseEmbeddings
    from .vectorstore import MatryoshkaQdrantVectorStore, RetrievalMode

__all__ = [
    "MatryoshkaQdrantRetriever",
    "MatryoshkaQdrantVectorStore",
    "RetrievalMode",
    "SSEEmbeddings",
    "SSESparseEmbeddings",
    "dict_filter_to_qdrant",
]

# These need qdrant-client (and SSESparseEmbeddings langchain-qdrant) as well: loaded on first
# use, so the embeddings and the retriever import with the langchain extra alone.
_QDRANT_NAMES = {
    "MatryoshkaQdrantVectorStore": "vectorstore",
    "RetrievalMode": "vectorstore",
    "dict_filter_to_qdrant": "filters",
    "SSESparseEmbeddings": "sparse_embeddings",
}


def __getattr__(name: str) -> Any:
    if name in _QDRANT_NAMES:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_QDRANT_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
