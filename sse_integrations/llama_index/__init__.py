"""The LlamaIndex integration: an embedding, a vector store, its retriever and filter translation.

- :class:`SSEEmbedding` (``embeddings.py``): a ``BaseEmbedding`` on an :class:`SSEEncoder`
  (set it as ``Settings.embed_model``);
- :class:`MatryoshkaQdrantVectorStore` (``vectorstore.py``): a vector store over a
  :class:`sse_integrations.qdrant.MatryoshkaIndex` (coarse Matryoshka prefix, then full-width
  rescoring) for ``VectorStoreIndex``;
- :class:`MatryoshkaQdrantRetriever` (``retriever.py``): the same search as a retriever built
  directly on an index;
- :func:`metadata_filters_to_qdrant` (``filters.py``) and the node <-> payload convention (``nodes.py``);
- :class:`SSESparseEncoder` (``sparse.py``): our BM25 sparse vectors for LlamaIndex's own
  Qdrant store (``QdrantVectorStore(..., **SSESparseEncoder().store_options())``), Japanese included.

Example:
    >>> from llama_index.core import Settings
    >>> from sse_integrations.llama_index import SSEEmbedding
    >>> Settings.embed_model = SSEEmbedding(truncate_dim=256)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .embeddings import SSEEmbedding
from .filters import metadata_filters_to_qdrant
from .retriever import MatryoshkaQdrantRetriever

if TYPE_CHECKING:
    from .sparse import SSESparseEncoder
    from .vectorstore import MatryoshkaQdrantVectorStore

__all__ = [
    "MatryoshkaQdrantRetriever",
    "MatryoshkaQdrantVectorStore",
    "SSEEmbedding",
    "SSESparseEncoder",
    "metadata_filters_to_qdrant",
]

# These need qdrant-client as well: loaded on first use, so the embedding and the retriever
# import with the llamaindex extra alone.
_QDRANT_NAMES = {"MatryoshkaQdrantVectorStore": "vectorstore", "SSESparseEncoder": "sparse"}


def __getattr__(name: str) -> Any:
    if name in _QDRANT_NAMES:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_QDRANT_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
