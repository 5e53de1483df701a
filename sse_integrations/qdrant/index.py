"""The index classes: :class:`MatryoshkaIndex` on a sync client, :class:`AsyncMatryoshkaIndex` on an async one.

Both inherit every setting, check and plan from :class:`.core.IndexCore`; each public method
builds a plan and hands it to :func:`.runner.run_plan` or :func:`.runner.run_plan_async`, which
execute the plan's client calls plainly or with ``await``. So the async class is not a hand-made copy of the sync one.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from qdrant_client import models

from .._checks import check_text
from ..search_mode import SearchMode
from . import records
from .backends import AnyClient, AsyncClient, Client, backend_of
from .core import PerClientLocks
from .points import DocId
from .runner import run_plan, run_plan_async
from .tenant_index import TenantIndexCore

# Apart from the write locks: a search may run between the calls of an add, never inside one.
_ENGINE_LOCKS = PerClientLocks()


def engine_lock(client: AnyClient) -> AbstractContextManager[Any]:
    """What every engine call of an index holds: on qdrant-client's local mode one lock per client,
    because its numpy arrays grow under a concurrent search (IndexError, issue 31); elsewhere
    nothing, so reads on a server or the embedded engine (whose writes lock themselves) stay parallel."""
    if backend_of(client) != "local":
        return contextlib.nullcontext()
    return _ENGINE_LOCKS.get(client)


class MatryoshkaIndex(TenantIndexCore):
    """SSE documents in a Qdrant collection with Matryoshka named vectors, searched two-stage.

    Example:
        >>> from qdrant_client import QdrantClient
        >>> index = MatryoshkaIndex(QdrantClient(":memory:"), "docs")
        >>> index.add_texts(["猫が窓のそばで眠っている。"], ids=["cat"])
        >>> index.search("窓際の猫", limit=3)[0].payload["doc_id"]
        'cat'
    """

    client: Client

    @functools.cached_property
    def _engine_lock(self) -> AbstractContextManager[Any]:
        return engine_lock(self.client)

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[DocId]:
        """Encode and upsert texts (creating the collection if needed); returns the document ids.

        Batches are stored in order; while one is stored, a worker thread encodes the next
        (encoding releases the GIL for most of its time, so both run at once).

        Args:
            texts: documents.
            ids: caller ids (str, non-negative int or UUID); re-adding an id replaces that
                point. None gives random UUID strings.
            payloads: extra payload per document (may not use the text/id keys).
            batch_size: documents per encode + upsert (default: the index's).
            show_progress: progress bar (default: the index's setting).
            tenant: the documents' tenant on a multi-tenant index (default: the index's bound
                one; without either, each payload carries its own ``tenant_field``).
            shard_key_selector: custom shard key(s) of the write (server/cluster only).

        Raises:
            IndexingError: a batch failed; ``written_ids`` lists the documents stored before it.
        """
        with self.write_lock:
            plan = self._add_plan(texts, ids, payloads, batch_size, show_progress, tenant=tenant)
            return run_plan(self.scoped(plan, tenant, shard_key_selector, write=True), self.client, self._engine_lock)

    def search(
        self,
        query: str,
        limit: int = 10,
        *,
        prefetch_limit: int | Sequence[int] | None = None,
        filter: models.Filter | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
        search_params: models.SearchParams | None = None,
        two_stage: bool = True,
        mode: SearchMode | str = SearchMode.DENSE,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.ScoredPoint]:
        """Top ``limit`` documents for ``query``, best first, as Qdrant ``ScoredPoint``s.

        Args:
            query: the query text.
            limit: hits to return.
            prefetch_limit: first-stage candidates (default: the index's, else factor * limit).
            filter: a Qdrant filter; only matching points become candidates.
            with_payload, with_vectors: as in ``query_points``.
            search_params: Qdrant ``SearchParams`` for the coarse stage (hnsw_ef, quantization).
            two_stage: False searches the full vector alone (for comparison).
            mode: "dense" (two-stage Matryoshka), "sparse" (BM25) or "hybrid" (both, fused by
                ``fusion``); sparse and hybrid need an index made with ``sparse=True``.
            tenant: the tenant searched on a multi-tenant index (default: the index's bound one);
                only its points are candidates, whatever ``filter`` says.
            shard_key_selector: custom shard key(s) searched (server/cluster only).
        """
        check_text(query, "query")
        return self.search_batch(
            [query],
            limit,
            prefetch_limit=prefetch_limit,
            filter=filter,
            with_payload=with_payload,
            with_vectors=with_vectors,
            search_params=search_params,
            two_stage=two_stage,
            mode=mode,
            tenant=tenant,
            shard_key_selector=shard_key_selector,
        )[0]

    def search_batch(
        self,
        queries: Sequence[str],
        limit: int = 10,
        *,
        prefetch_limit: int | Sequence[int] | None = None,
        filter: models.Filter | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
        search_params: models.SearchParams | None = None,
        two_stage: bool = True,
        mode: SearchMode | str = SearchMode.DENSE,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[list[models.ScoredPoint]]:
        """:meth:`search` for many queries: one encode, one batched request per stage."""
        plan = self._search_plan(
            queries,
            limit=limit,
            prefetch_limit=prefetch_limit,
            filter=filter,
            with_payload=with_payload,
            with_vectors=with_vectors,
            search_params=search_params,
            two_stage=two_stage,
            mode=mode,
        )
        return run_plan(self.scoped(plan, tenant, shard_key_selector), self.client, self._engine_lock)

    def delete(self, ids: Sequence[DocId], *, tenant: str | None = None, shard_key_selector: Any = None) -> None:
        """Delete documents by caller id (unknown ids are ignored; on a multi-tenant index, the tenant's only)."""
        plan = self.scoped(self._delete_plan(ids, tenant), tenant, shard_key_selector)
        with self.write_lock:
            run_plan(plan, self.client, self._engine_lock)

    def count(
        self, filter: models.Filter | None = None, *, tenant: str | None = None, shard_key_selector: Any = None
    ) -> int:
        """Exact number of points in the collection (matching ``filter``; the tenant's on a multi-tenant index)."""
        plan = self.scoped(self._count_plan(filter), tenant, shard_key_selector)
        return run_plan(plan, self.client, self._engine_lock)

    def exists(self) -> bool:
        """Whether the collection exists yet (the first ``add_texts`` creates it)."""
        return run_plan(records.exists_plan(self), self.client, self._engine_lock)

    def get(
        self,
        ids: Sequence[DocId],
        *,
        with_vectors: bool | Sequence[str] = False,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.Record]:
        """Stored points by caller id, in the order asked; unknown ids (and other tenants') are left out."""
        plan = self.scoped(self._get_plan(ids, with_vectors, tenant), tenant, shard_key_selector)
        return run_plan(plan, self.client, self._engine_lock)

    def scroll(
        self,
        filter: models.Filter | None = None,
        *,
        with_vectors: bool | Sequence[str] = False,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.Record]:
        """Every stored point matching ``filter`` (all of them for None; the tenant's on a multi-tenant index)."""
        plan = self.scoped(records.scroll_plan(self, filter, with_vectors), tenant, shard_key_selector)
        return run_plan(plan, self.client, self._engine_lock)

    def delete_where(self, filter: models.Filter, *, tenant: str | None = None, shard_key_selector: Any = None) -> None:
        """Delete every point matching a Qdrant filter (for example all chunks of one source document);
        on a multi-tenant index, of the tenant's points only."""
        plan = self.scoped(records.delete_where_plan(self, filter), tenant, shard_key_selector)
        with self.write_lock:
            run_plan(plan, self.client, self._engine_lock)

    def search_by_vector(
        self,
        vector: Sequence[float],
        limit: int = 10,
        *,
        filter: models.Filter | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.ScoredPoint]:
        """Top ``limit`` points for a full-width embedding you already have, on the full vector alone."""
        plan = records.search_by_vector_plan(self, vector, limit, filter, with_payload, with_vectors)
        return run_plan(self.scoped(plan, tenant, shard_key_selector), self.client, self._engine_lock)

    def flush(self) -> None:
        """Persist the embedded shard's segments now (writes are already in its WAL); no-op on a client."""
        with self.write_lock:
            run_plan(self._maintenance_plan("flush"), self.client, self._engine_lock)

    def optimize(self) -> bool:
        """Build the embedded shard's HNSW graphs and merge segments now (blocks); no-op on a client.

        Run it after a bulk load: until then searches scan the unindexed segments exactly.
        """
        with self.write_lock:
            return run_plan(self._maintenance_plan("optimize"), self.client, self._engine_lock)

    def close(self) -> None:
        """Flush and release an embedded folder the index opened (a client passed in stays open)."""
        run_plan(self._close_plan(), self.client, self._engine_lock)

    def __enter__(self) -> MatryoshkaIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncMatryoshkaIndex(TenantIndexCore):
    """:class:`MatryoshkaIndex` on an ``AsyncQdrantClient``: the same options, awaitable methods."""

    is_async = True
    client: AsyncClient

    async def add_texts(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[DocId]:
        """See :meth:`MatryoshkaIndex.add_texts`."""
        plan = self._add_plan(texts, ids, payloads, batch_size, show_progress, tenant=tenant)
        return await run_plan_async(self.scoped(plan, tenant, shard_key_selector, write=True), self.client)

    async def search(
        self,
        query: str,
        limit: int = 10,
        *,
        prefetch_limit: int | Sequence[int] | None = None,
        filter: models.Filter | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
        search_params: models.SearchParams | None = None,
        two_stage: bool = True,
        mode: SearchMode | str = SearchMode.DENSE,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.ScoredPoint]:
        """See :meth:`MatryoshkaIndex.search`."""
        check_text(query, "query")
        results = await self.search_batch(
            [query],
            limit,
            prefetch_limit=prefetch_limit,
            filter=filter,
            with_payload=with_payload,
            with_vectors=with_vectors,
            search_params=search_params,
            two_stage=two_stage,
            mode=mode,
            tenant=tenant,
            shard_key_selector=shard_key_selector,
        )
        return results[0]

    async def search_batch(
        self,
        queries: Sequence[str],
        limit: int = 10,
        *,
        prefetch_limit: int | Sequence[int] | None = None,
        filter: models.Filter | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
        search_params: models.SearchParams | None = None,
        two_stage: bool = True,
        mode: SearchMode | str = SearchMode.DENSE,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[list[models.ScoredPoint]]:
        """See :meth:`MatryoshkaIndex.search_batch`."""
        plan = self._search_plan(
            queries,
            limit=limit,
            prefetch_limit=prefetch_limit,
            filter=filter,
            with_payload=with_payload,
            with_vectors=with_vectors,
            search_params=search_params,
            two_stage=two_stage,
            mode=mode,
        )
        return await run_plan_async(self.scoped(plan, tenant, shard_key_selector), self.client)

    async def delete(self, ids: Sequence[DocId], *, tenant: str | None = None, shard_key_selector: Any = None) -> None:
        """See :meth:`MatryoshkaIndex.delete`."""
        await run_plan_async(self.scoped(self._delete_plan(ids, tenant), tenant, shard_key_selector), self.client)

    async def count(
        self, filter: models.Filter | None = None, *, tenant: str | None = None, shard_key_selector: Any = None
    ) -> int:
        """See :meth:`MatryoshkaIndex.count`."""
        return await run_plan_async(self.scoped(self._count_plan(filter), tenant, shard_key_selector), self.client)

    async def exists(self) -> bool:
        """See :meth:`MatryoshkaIndex.exists`."""
        return await run_plan_async(records.exists_plan(self), self.client)

    async def get(
        self,
        ids: Sequence[DocId],
        *,
        with_vectors: bool | Sequence[str] = False,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.Record]:
        """See :meth:`MatryoshkaIndex.get`."""
        plan = self.scoped(self._get_plan(ids, with_vectors, tenant), tenant, shard_key_selector)
        return await run_plan_async(plan, self.client)

    async def scroll(
        self,
        filter: models.Filter | None = None,
        *,
        with_vectors: bool | Sequence[str] = False,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.Record]:
        """See :meth:`MatryoshkaIndex.scroll`."""
        plan = self.scoped(records.scroll_plan(self, filter, with_vectors), tenant, shard_key_selector)
        return await run_plan_async(plan, self.client)

    async def delete_where(
        self, filter: models.Filter, *, tenant: str | None = None, shard_key_selector: Any = None
    ) -> None:
        """See :meth:`MatryoshkaIndex.delete_where`."""
        plan = self.scoped(records.delete_where_plan(self, filter), tenant, shard_key_selector)
        await run_plan_async(plan, self.client)

    async def search_by_vector(
        self,
        vector: Sequence[float],
        limit: int = 10,
        *,
        filter: models.Filter | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
        tenant: str | None = None,
        shard_key_selector: Any = None,
    ) -> list[models.ScoredPoint]:
        """See :meth:`MatryoshkaIndex.search_by_vector`."""
        plan = records.search_by_vector_plan(self, vector, limit, filter, with_payload, with_vectors)
        return await run_plan_async(self.scoped(plan, tenant, shard_key_selector), self.client)

    async def flush(self) -> None:
        """See :meth:`MatryoshkaIndex.flush`."""
        await run_plan_async(self._maintenance_plan("flush"), self.client)

    async def optimize(self) -> bool:
        """See :meth:`MatryoshkaIndex.optimize`."""
        return await run_plan_async(self._maintenance_plan("optimize"), self.client)

    async def close(self) -> None:
        """See :meth:`MatryoshkaIndex.close`."""
        await run_plan_async(self._close_plan(), self.client)

    async def __aenter__(self) -> AsyncMatryoshkaIndex:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
