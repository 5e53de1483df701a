"""A LlamaIndex vector store over a Matryoshka index: :class:`MatryoshkaQdrantVectorStore`.

Re-exported by :mod:`sse_integrations.llama_index` (loaded on first use, so the embedding and
the retriever keep working without qdrant-client). Nodes are written by the shared payload
convention (:mod:`sse_integrations._payload`): text and node id by the index, metadata as top-level keys, the
source document under ``ref_doc_id`` and the rest of the node (relationships, templates,
excluded keys) under ``_node``, so ``VectorStoreIndex.from_vector_store`` over an existing
collection gets whole nodes back, and the other readers of the collection get plain metadata.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

try:
    from llama_index.core.schema import BaseNode, MetadataMode
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from qdrant_client import QdrantClient, models
except ImportError as error:  # pragma: no cover - exercised only without the extras
    raise ImportError(
        'MatryoshkaQdrantVectorStore needs llama-index-core and qdrant-client: pip install "sse-integrations[llamaindex,qdrant]"'
    ) from error
from pydantic import PrivateAttr

from .. import _adapters, _stores
from .._payload import check_metadata
from ..encoder import SSEEncoder
from ..search_mode import SearchMode
from .filters import metadata_filters_to_qdrant
from .nodes import node_from_point, node_payload

if TYPE_CHECKING:
    from ..qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
    from ..qdrant.backends import AnyClient

__all__ = ["MatryoshkaQdrantVectorStore"]

DEFAULT_COLLECTION = "llama_index"

_MODES = {
    VectorStoreQueryMode.DEFAULT: SearchMode.DENSE,
    VectorStoreQueryMode.SPARSE: SearchMode.SPARSE,
    VectorStoreQueryMode.HYBRID: SearchMode.HYBRID,
}
# The other way, for the retriever built on an index.
QUERY_MODES = {mode: query_mode for query_mode, mode in _MODES.items()}


class MatryoshkaQdrantVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store over a :class:`sse_integrations.qdrant.MatryoshkaIndex`.

    The index embeds every Matryoshka stage of a node's text with its SSE encoder and searches
    by the query text (``is_embedding_query`` is False, so LlamaIndex does not embed queries
    for it); results, order and scores equal ``index.search``. ``VectorStoreQueryMode``
    DEFAULT is the two-stage dense search, SPARSE is BM25 and HYBRID the fusion of both (an
    index made with ``sparse=True``); ``alpha`` weighs the dense list in an RRF fusion
    (``fusion_weights = (alpha, 1 - alpha)``). MMR re-picks the best ``mmr_prefetch_k`` dense hits
    (a query keyword; default 4 x ``similarity_top_k``) for diversity, ``mmr_threshold`` being lambda.
    A ``qdrant_filters=models.Filter`` query keyword (as llama-index-vector-stores-qdrant names it)
    must match too, beside the query's ``MetadataFilters``.

    Args:
        index: a ``MatryoshkaIndex`` (sync and async) or ``AsyncMatryoshkaIndex`` (async only);
            None builds a ``MatryoshkaIndex`` from the other arguments.
        client: a ``QdrantClient``; or ``path``, a folder for the embedded engine (Qdrant Edge, as
            ``MatryoshkaIndex(path, ...)``; for qdrant-client's local mode pass
            ``client=QdrantClient(path=...)``); neither gives ``QdrantClient(":memory:")``.
        collection_name, encoder, index_settings: the built index's collection, encoder
            (``SSEEncoder``, folder or hub id; None = bundled) and ``IndexOptions`` fields.
        tenant: serve one tenant of a multi-tenant index (``tenant_field``): every add, query
            and delete is for it alone (docs/tenancy.md).
    """

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False

    _index: Any = PrivateAttr()
    _weighted: dict[float, Any] = PrivateAttr(default_factory=dict)

    def __init__(
        self,
        index: MatryoshkaIndex | AsyncMatryoshkaIndex | None = None,
        *,
        client: AnyClient | None = None,
        path: str | os.PathLike | None = None,
        collection_name: str = DEFAULT_COLLECTION,
        encoder: SSEEncoder | str | os.PathLike | None = None,
        tenant: str | None = None,
        **index_settings: Any,
    ) -> None:
        super().__init__(stores_text=True)
        if index is None:
            from ..qdrant import MatryoshkaIndex

            if client is not None and path is not None:
                raise ValueError("pass a client or a path, not both")
            # A folder opens (or creates) an embedded shard there.
            engine = os.fspath(path) if path is not None else client if client is not None else QdrantClient(":memory:")
            index = MatryoshkaIndex(engine, collection_name, encoder, **index_settings)
        elif client is not None or path is not None or encoder is not None or index_settings:
            raise ValueError("pass an index, or the arguments to build one, not both")
        _adapters.check_index(index)
        # Every call of the store (and of its retrievers) goes through the tenant's handle.
        self._index = index.for_tenant(tenant) if tenant is not None else index

    @classmethod
    def class_name(cls) -> str:
        return "MatryoshkaQdrantVectorStore"

    @property
    def client(self) -> Any:
        return self._index.client

    @property
    def index(self) -> Any:
        """The wrapped Matryoshka index."""
        return self._index

    # writes ----------------------------------------------------------------------------------

    def _add_plan(self, nodes: Sequence[BaseNode]) -> Any:
        payloads = [node_payload(node) for node in nodes]
        check_metadata(self._index, [node.metadata for node in nodes])
        texts = [node.get_content(metadata_mode=MetadataMode.NONE) for node in nodes]
        ids = [node.node_id for node in nodes]
        written = yield from _stores.add_plan(self._index, texts, ids, payloads, None)
        return [str(node_id) for node_id in written]

    def add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        """Store nodes (their embeddings are not used: the index embeds each stage itself); returns their ids."""
        return _stores.run(self._index, self._add_plan(nodes), "async_add()")

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await _stores.arun(self._index, self._add_plan(nodes))

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of the source document ``ref_doc_id``."""
        _stores.run(
            self._index, _stores.delete_by_filter_plan(self._index, _stores.ref_doc_filter([ref_doc_id])), "adelete()"
        )

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await _stores.arun(
            self._index, _stores.delete_by_filter_plan(self._index, _stores.ref_doc_filter([ref_doc_id]))
        )

    def _delete_nodes_plan(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> Any:
        if node_ids is None and filters is None:
            raise ValueError("delete_nodes() needs node_ids or filters (clear() deletes everything)")
        if filters is None:
            yield from _stores.delete_plan(self._index, list(node_ids or []))
        else:
            yield from _stores.delete_by_filter_plan(self._index, self._filter(filters, node_ids) or models.Filter())

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete nodes by id, by metadata filters, or both (a node must match both)."""
        _stores.run(self._index, self._delete_nodes_plan(node_ids, filters), "adelete_nodes()")

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        await _stores.arun(self._index, self._delete_nodes_plan(node_ids, filters))

    def clear(self) -> None:
        """Delete every node; the collection and its layout (and BM25 statistics) stay."""
        _stores.run(self._index, _stores.delete_by_filter_plan(self._index, models.Filter()), "aclear()")

    async def aclear(self) -> None:
        await _stores.arun(self._index, _stores.delete_by_filter_plan(self._index, models.Filter()))

    # reads -----------------------------------------------------------------------------------

    def _filter(self, filters: MetadataFilters | None, node_ids: Sequence[str] | None = None) -> models.Filter | None:
        converted = metadata_filters_to_qdrant(filters) if filters is not None else None
        return _stores.both(converted, _stores.id_filter(self._index, node_ids) if node_ids is not None else None)

    def _get_plan(self, node_ids: list[str] | None, filters: MetadataFilters | None) -> Any:
        if filters is None and node_ids is not None:
            return (yield from _stores.get_plan(self._index, node_ids))  # in the order asked
        return (yield from _stores.scroll_plan(self._index, self._filter(filters, node_ids)))

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id (in that order), by metadata filters, both, or all of them."""
        return [
            node_from_point(point)
            for point in _stores.run(self._index, self._get_plan(node_ids, filters), "aget_nodes()")
        ]

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        return [node_from_point(point) for point in await _stores.arun(self._index, self._get_plan(node_ids, filters))]

    def _query_plan(self, query: VectorStoreQuery, kwargs: dict[str, Any]) -> Any:
        if query.mode not in _MODES and query.mode != VectorStoreQueryMode.MMR:
            raise ValueError(f"query mode {query.mode.value!r} is not supported: use default, mmr, sparse or hybrid")
        kwargs = dict(kwargs)
        # VectorStoreIndex passes node_ids=[] when the store keeps the nodes: that means no id filter.
        query_filter = self._filter(query.filters, query.node_ids or None)
        # A Qdrant filter beside the MetadataFilters, under the keyword llama-index-vector-stores-qdrant uses.
        query_filter = _stores.both(query_filter, kwargs.pop("qdrant_filters", None))
        if query.doc_ids:
            query_filter = _stores.both(query_filter, _stores.ref_doc_filter(query.doc_ids))
        if query.query_str is None:
            if query.query_embedding is None or query.mode != VectorStoreQueryMode.DEFAULT:
                raise ValueError("the query needs query_str (or, in the default mode, a full-width query_embedding)")
            plan = _stores.vector_search_plan(self._index, query.query_embedding, query.similarity_top_k, query_filter)
        elif query.mode == VectorStoreQueryMode.MMR:
            plan = self._mmr_plan(query, query.query_str, query_filter, kwargs)
        else:
            index = self._index_for(query)
            search = {**kwargs, "filter": query_filter, "mode": _MODES[query.mode]}
            plan = _stores.search_plan(index, query.query_str, query.similarity_top_k, **search)
        points = yield from plan
        return VectorStoreQueryResult(
            nodes=[node_from_point(point) for point in points],
            similarities=[float(point.score or 0.0) for point in points],
            ids=[point.id for point in points],
        )

    def _mmr_plan(self, query: VectorStoreQuery, query_str: str, query_filter: Any, kwargs: dict[str, Any]) -> Any:
        """MMR as LlamaIndex's own store: ``mmr_threshold`` is lambda (default 0.5), over ``mmr_prefetch_k`` dense hits."""
        search = dict(kwargs)
        threshold = query.mmr_threshold if query.mmr_threshold is not None else search.pop("mmr_threshold", None)
        fetch_k = search.pop("mmr_prefetch_k", None) or query.similarity_top_k * search.pop("mmr_prefetch_factor", 4)
        lambda_mult = 0.5 if threshold is None else float(threshold)
        return _stores.mmr_plan(
            self._index, query_str, query.similarity_top_k, fetch_k, lambda_mult, filter=query_filter, **search
        )

    def _index_for(self, query: VectorStoreQuery) -> Any:
        """The index, or a twin on the same collection whose RRF weights are ``(alpha, 1 - alpha)``."""
        if query.alpha is None or query.mode != VectorStoreQueryMode.HYBRID:
            return self._index
        alpha = float(query.alpha)
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if self._index.fusion != "rrf":
            raise ValueError("alpha weighs an RRF fusion; this index fuses with 'dbsf'")
        if alpha not in self._weighted:
            self._weighted[alpha] = self._index.with_options(fusion_weights=(alpha, 1.0 - alpha))
        return self._weighted[alpha]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top ``similarity_top_k`` nodes; extra ``kwargs`` go to ``index.search`` (e.g. ``prefetch_limit``)."""
        return _stores.run(self._index, self._query_plan(query, kwargs), "aquery()")

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await _stores.arun(self._index, self._query_plan(query, kwargs))
