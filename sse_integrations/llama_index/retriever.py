"""A LlamaIndex retriever over a Matryoshka index: :class:`MatryoshkaQdrantRetriever`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.schema import NodeWithScore, QueryBundle
    from llama_index.core.vector_stores.types import MetadataFilters
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.llama_index needs llama-index-core: pip install "sse-integrations[llamaindex]"'
    ) from error

from .. import _retrievers
from .._checks import check_positive_int
from .filters import metadata_filters_to_qdrant
from .nodes import node_from_stored

__all__ = ["MatryoshkaQdrantRetriever"]


class MatryoshkaQdrantRetriever(BaseRetriever):
    """Two-stage Matryoshka search over a Qdrant collection, as a LlamaIndex retriever.

    Wraps a :class:`sse_integrations.qdrant.MatryoshkaIndex` (sync and async retrieval) or an
    ``AsyncMatryoshkaIndex`` (``aretrieve`` only). Hits come back in the index's order as
    ``NodeWithScore``s: the node's id is the caller's document id, its text the stored text,
    its metadata the rest of the payload.

    Args:
        index: the index to search.
        similarity_top_k: nodes to return.
        prefetch_limit: first-stage candidates (None = the index's default).
        filters: LlamaIndex ``MetadataFilters`` on the payload (see :func:`metadata_filters_to_qdrant`).
        filter: a ``qdrant_client.models.Filter``; only matching points are candidates (both
            ``filters`` and ``filter`` given: a point must match both).
        mode: "dense" (two-stage Matryoshka), "sparse" (BM25) or "hybrid" (fused); sparse and
            hybrid need an index made with ``sparse=True``.
        search_kwargs: further keyword arguments for ``index.search`` (e.g. ``search_params``,
            ``two_stage``).
    """

    def __init__(
        self,
        index: Any,
        similarity_top_k: int = 4,
        *,
        prefetch_limit: int | Sequence[int] | None = None,
        filters: MetadataFilters | None = None,
        filter: Any = None,
        mode: str = "dense",
        search_kwargs: dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        _retrievers.check_index(index)
        check_positive_int(similarity_top_k, "similarity_top_k")
        search_kwargs = dict(search_kwargs or {})
        _retrievers.check_search_kwargs(search_kwargs, "similarity_top_k")
        _retrievers.check_mode(mode)
        self.mode = mode
        self.index = index
        self.similarity_top_k = similarity_top_k
        self.prefetch_limit = prefetch_limit
        self.filters = filters
        self.filter = filter
        if filters is not None:
            converted = metadata_filters_to_qdrant(filters)  # converted once; bad operators fail here
            filter = converted if filter is None else type(converted)(must=[converted, filter])
        self._qdrant_filter = filter
        self.search_kwargs = search_kwargs
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _search_arguments(self) -> dict[str, Any]:
        return {
            **self.search_kwargs,
            "limit": self.similarity_top_k,
            "mode": self.mode,
            "prefetch_limit": self.prefetch_limit,
            "filter": self._qdrant_filter,
        }

    def _to_nodes(self, points: Sequence[Any]) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=node_from_stored(hit.id, hit.text, hit.metadata, hit.node), score=hit.score)
            for hit in _retrievers.stored_hits(self.index, points)
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        async_calls = "aretrieve() (or an async query engine)"
        return self._to_nodes(
            _retrievers.search(self.index, query_bundle.query_str, self._search_arguments(), async_calls)
        )

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._to_nodes(await _retrievers.asearch(self.index, query_bundle.query_str, self._search_arguments()))
