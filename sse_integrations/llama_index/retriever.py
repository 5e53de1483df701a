"""A LlamaIndex retriever over a Matryoshka index: :class:`MatryoshkaQdrantRetriever`.

A thin view of :class:`MatryoshkaQdrantVectorStore`: it sends the ``VectorStoreQuery`` that
``VectorStoreIndex.from_vector_store(store).as_retriever(...)`` sends and returns the same
``NodeWithScore``s, for code that holds an index rather than a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.schema import NodeWithScore, QueryBundle
    from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryResult
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.llama_index needs llama-index-core: pip install "sse-integrations[llamaindex]"'
    ) from error

from .. import _adapters
from .._checks import check_positive_int
from ..search_mode import search_mode
from .filters import metadata_filters_to_qdrant

if TYPE_CHECKING:
    from ..qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
    from .vectorstore import MatryoshkaQdrantVectorStore

__all__ = ["MatryoshkaQdrantRetriever"]


class MatryoshkaQdrantRetriever(BaseRetriever):
    """Two-stage Matryoshka search over a Qdrant collection, as a LlamaIndex retriever.

    Wraps a :class:`sse_integrations.qdrant.MatryoshkaIndex` (sync and async retrieval) or an
    ``AsyncMatryoshkaIndex`` (``aretrieve`` only) and returns what the vector store's
    ``as_retriever()`` returns for the same query: ``NodeWithScore``s whose node is the stored
    node (id, text, metadata, relationships when the store wrote them).

    Args:
        index: the index to search.
        similarity_top_k: nodes to return.
        prefetch_limit: first-stage candidates (None = the index's default).
        filters: LlamaIndex ``MetadataFilters`` on the payload (see :func:`metadata_filters_to_qdrant`).
        filter: a ``qdrant_client.models.Filter`` that must match too (the store's
            ``qdrant_filters`` query keyword).
        mode: "dense" (two-stage Matryoshka), "sparse" (BM25) or "hybrid" (fused); sparse and
            hybrid need an index made with ``sparse=True``.
        search_kwargs: further keyword arguments for ``index.search`` (e.g. ``search_params``,
            ``two_stage``).
        legacy_metadata: deprecated, True for one release: also put the document id under the
            index's ``id_key`` into each node's metadata, as this retriever did before it became
            a view of the store. Pass False to get the store's nodes exactly.
    """

    def __init__(
        self,
        index: MatryoshkaIndex | AsyncMatryoshkaIndex,
        similarity_top_k: int = 4,
        *,
        prefetch_limit: int | Sequence[int] | None = None,
        filters: MetadataFilters | None = None,
        filter: Any = None,
        mode: str = "dense",
        search_kwargs: dict[str, Any] | None = None,
        legacy_metadata: bool = True,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        from .vectorstore import MatryoshkaQdrantVectorStore

        check_positive_int(similarity_top_k, "similarity_top_k")
        search_kwargs = dict(search_kwargs or {})
        _adapters.check_search_kwargs(search_kwargs, "similarity_top_k")
        self.mode = search_mode(mode)
        self._store: MatryoshkaQdrantVectorStore = MatryoshkaQdrantVectorStore(index)
        self.index = index
        self.similarity_top_k = similarity_top_k
        self.prefetch_limit = prefetch_limit
        if filters is not None:
            metadata_filters_to_qdrant(filters)  # bad operators fail here, not at the first query
        self.filters = filters
        self.filter = filter
        self.search_kwargs = search_kwargs
        self.legacy_metadata = legacy_metadata
        if legacy_metadata:
            _adapters.warn_legacy_metadata(type(self).__name__, "node.node_id")
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _current_store(self) -> MatryoshkaQdrantVectorStore:
        # index and mode are public attributes: an assignment after construction takes effect.
        if self._store.index is not self.index:
            from .vectorstore import MatryoshkaQdrantVectorStore

            self._store = MatryoshkaQdrantVectorStore(self.index)
        return self._store

    def _query(self, query_bundle: QueryBundle) -> tuple[VectorStoreQuery, dict[str, Any]]:
        from .vectorstore import QUERY_MODES

        query = VectorStoreQuery(
            query_str=query_bundle.query_str,
            similarity_top_k=self.similarity_top_k,
            filters=self.filters,
            mode=QUERY_MODES[search_mode(self.mode)],
        )
        kwargs = {**self.search_kwargs, "prefetch_limit": self.prefetch_limit}
        if self.filter is not None:
            kwargs["qdrant_filters"] = self.filter
        return query, kwargs

    def _nodes(self, result: VectorStoreQueryResult) -> list[NodeWithScore]:
        hits = [
            NodeWithScore(node=node, score=score) for node, score in zip(result.nodes or [], result.similarities or [])
        ]
        if self.legacy_metadata:
            for hit in hits:
                hit.node.metadata[self.index.id_key] = hit.node.node_id
        return hits

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        _adapters.refuse_async_index(self.index, "retriever", "aretrieve() (or an async query engine)")
        query, kwargs = self._query(query_bundle)
        return self._nodes(self._current_store().query(query, **kwargs))

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        query, kwargs = self._query(query_bundle)
        return self._nodes(await self._current_store().aquery(query, **kwargs))
