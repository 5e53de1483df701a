"""Our Japanese-capable BM25 for LlamaIndex's own Qdrant store: :class:`SSESparseEncoder`.

``llama_index.vector_stores.qdrant.QdrantVectorStore`` takes its sparse encoder as two functions,
``sparse_doc_fn`` and ``sparse_query_fn`` (its default, fastembed's BM25, splits words at spaces
and finds nothing for Japanese queries). :meth:`SSESparseEncoder.store_options` gives the store
everything hybrid search needs: both functions, a sparse vector created with ``Modifier.IDF``
(Qdrant supplies BM25's IDF part), and a rank fusion that ranks as Qdrant's RRF does, so a hybrid
query ranks as ``MatryoshkaIndex``'s (the store's own default fuses normalised scores instead).

Example:
    >>> from llama_index.vector_stores.qdrant import QdrantVectorStore
    >>> from qdrant_client import QdrantClient
    >>> from sse_integrations.llama_index import SSESparseEncoder
    >>> store = QdrantVectorStore("docs", client=QdrantClient(":memory:"), **SSESparseEncoder().store_options())
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

from ..sparse_stream import StreamingSparseAdapter

_EXTRA = 'SSESparseEncoder needs llama-index-vector-stores-qdrant: pip install "sse-integrations[llamaindex-qdrant]"'
try:
    from llama_index.core.vector_stores.types import VectorStoreQueryResult
    from qdrant_client import models
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(_EXTRA) from error
# Nothing here imports the store itself (the caller does), but without it this class serves nothing.
try:
    _store_missing = importlib.util.find_spec("llama_index.vector_stores.qdrant") is None
except ImportError:  # its parent package is missing
    _store_missing = True
if _store_missing:
    raise ImportError(_EXTRA)

__all__ = ["SSESparseEncoder", "reciprocal_rank_fusion"]

BatchSparseEncoding = tuple[list[list[int]], list[list[float]]]
# Qdrant's RRF rank constant when a query names none (the engine's and qdrant-client's default).
QDRANT_RRF_K = 2


class SSESparseEncoder(StreamingSparseAdapter):
    """Our BM25 sparse encoder as LlamaIndex's Qdrant store takes it (``sparse_doc_fn`` / ``sparse_query_fn``).

    BM25's average document length runs over the documents encoded so far (the store encodes in
    batches of its ``batch_size``, 64 by default); :meth:`fit` on the corpus first, or a known
    ``avg_doc_length``, fixes it, and the weights then equal ``MatryoshkaIndex``'s. The store
    encodes each node's ``get_content(metadata_mode=EMBED)``, so metadata it embeds is counted too.

    Args:
        model_name_or_path: model folder or hub id whose tokenizer makes the terms; None = the
            bundled default model.
        encoder: an already loaded :class:`SSEEncoder` to share with :class:`SSEEmbedding`.
        features: "tokens", "bigrams" or "tokens+bigrams".
        k1: BM25's term-frequency saturation.
        b: BM25's document-length normalisation.
        avg_doc_length: a fixed average document length in terms; None = a running average.
    """

    def encode_documents(self, texts: list[str]) -> BatchSparseEncoding:
        """``sparse_doc_fn``: (indices, values) per text, BM25 term-frequency weights."""
        vectors = self.bm25.encode_documents(texts)
        return [v.indices for v in vectors], [v.values for v in vectors]

    def encode_queries(self, texts: list[str]) -> BatchSparseEncoding:
        """``sparse_query_fn``: (indices, values) per query, one unit weight per term."""
        vectors = self.bm25.encode_queries(texts)
        return [v.indices for v in vectors], [v.values for v in vectors]

    def store_options(self, rrf_k: int = QDRANT_RRF_K) -> dict[str, Any]:
        """Keyword arguments for ``QdrantVectorStore(...)``: hybrid on, our encoder, IDF, RRF.

        Args:
            rrf_k: RRF's rank constant (Qdrant's default, 2, as ``MatryoshkaIndex`` uses).
        """
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 1:
            raise ValueError(f"rrf_k must be a positive integer, got {rrf_k!r}")

        def fusion(
            dense_result: VectorStoreQueryResult,
            sparse_result: VectorStoreQueryResult,
            alpha: float = 0.5,
            top_k: int = 2,
        ) -> VectorStoreQueryResult:
            return reciprocal_rank_fusion(dense_result, sparse_result, alpha=alpha, top_k=top_k, rrf_k=rrf_k)

        return {
            "enable_hybrid": True,
            "sparse_doc_fn": self.encode_documents,
            "sparse_query_fn": self.encode_queries,
            "sparse_config": models.SparseVectorParams(modifier=models.Modifier.IDF),
            "hybrid_fusion_fn": fusion,
        }

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self.bm25.get_config().items())
        return f"SSESparseEncoder({settings})"


def reciprocal_rank_fusion(
    dense_result: VectorStoreQueryResult,
    sparse_result: VectorStoreQueryResult,
    alpha: float = 0.5,
    top_k: int = 2,
    rrf_k: int = QDRANT_RRF_K,
) -> VectorStoreQueryResult:
    """Fuse the store's dense and sparse lists by rank, as Qdrant's weighted RRF does.

    A hit at 0-based rank ``r`` of a list with weight ``w`` adds ``1 / ((r + 1) / w + rrf_k - 1)``;
    LlamaIndex's ``alpha`` (1 = dense only, 0 = sparse only) sets the weights ``(2 alpha, 2 (1 - alpha))``,
    so its default 0.5 weighs both lists equally. Ties keep the dense list's order first.
    """
    if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and 0 <= alpha <= 1):
        raise ValueError(f"alpha must be between 0 (sparse only) and 1 (dense only), got {alpha!r}")
    scores: dict[str, float] = {}
    nodes: dict[str, Any] = {}
    for result, weight in ((dense_result, 2 * alpha), (sparse_result, 2 * (1 - alpha))):
        for rank, node in enumerate(result.nodes or []):
            nodes.setdefault(node.node_id, node)
            if weight > 0:
                scores[node.node_id] = scores.get(node.node_id, 0.0) + 1 / ((rank + 1) / weight + rrf_k - 1)
            else:
                scores.setdefault(node.node_id, 0.0)
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:top_k]
    return VectorStoreQueryResult(
        nodes=[nodes[node_id] for node_id, _ in ranked],
        similarities=[score for _, score in ranked],
        ids=[node_id for node_id, _ in ranked],
    )
