"""What the LangChain and LlamaIndex vector stores share: operations on a Matryoshka index, sync or async.

Each operation is written once as a plan, a generator that yields ``(callable, kwargs)`` and
gets the call's result back; :func:`run` executes it on a sync index and :func:`arun` on an
async one (awaiting what the calls return) or, for a sync index, in a worker thread. Both use
the index's own plan runners (:mod:`.qdrant.runner`), so an error travels the same way. The
callables are the index's public methods only, so both stores work wherever the index does
(a Qdrant server, qdrant-client's local mode, the embedded engine on a folder).

Imports Qdrant but no framework, so neither store imports the other's adapter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np
from qdrant_client import models

from ._checks import is_async_index
from ._payload import REF_DOC_KEY, StoredPoint, read_point
from .qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex, TenantHandle
from .qdrant.runner import Call, run_plan, run_plan_async

# A tenant's handle (index.for_tenant) stands for its index everywhere a store uses one.
Index = MatryoshkaIndex | AsyncMatryoshkaIndex | TenantHandle
Step = Call
Plan = Generator[Step, Any, Any]


def run(index: Index, plan: Plan, async_name: str) -> Any:
    """Run ``plan`` on a sync index; an async index names ``async_name``, the method to await instead."""
    if is_async_index(index):
        raise TypeError(f"this store wraps an AsyncMatryoshkaIndex: use {async_name}, or build it on a MatryoshkaIndex")
    return run_plan(plan)


async def arun(index: Index, plan: Plan) -> Any:
    """Await ``plan`` on an async index; a sync index runs it in a worker thread (its calls block)."""
    if not is_async_index(index):
        return await asyncio.to_thread(run_plan, plan)
    return await run_plan_async(plan)


# plans -----------------------------------------------------------------------------------------


def exists_plan(index: Index) -> Generator[Step, Any, bool]:
    # The index creates its collection on the first add (a sparse index fits BM25 on those
    # texts), so an empty store has none yet: reads answer "nothing" instead of failing.
    return bool((yield (index.exists, {})))


def add_plan(
    index: Index, texts: Sequence[str], ids: Sequence[Any], payloads: Sequence[dict[str, Any]], batch_size: int | None
) -> Generator[Step, Any, list[Any]]:
    kwargs: dict[str, Any] = {"texts": list(texts), "ids": list(ids), "payloads": list(payloads)}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    return list((yield (index.add_texts, kwargs)))


def search_plan(index: Index, query: str, limit: int, **search: Any) -> Generator[Step, Any, list[StoredPoint]]:
    """``index.search`` read by the payload convention; an empty store gives no hits."""
    if not (yield from exists_plan(index)):
        return []
    points = yield (index.search, {"query": query, "limit": limit, **search})
    return [read_point(index, point) for point in points]


def vector_search_plan(
    index: Index, vector: Sequence[float], limit: int, query_filter: models.Filter | None
) -> Generator[Step, Any, list[StoredPoint]]:
    """Exact search by a full-width vector (the caller embedded the query already): no coarse stage."""
    points = yield (index.search_by_vector, {"vector": vector, "limit": limit, "filter": query_filter})
    return [read_point(index, point) for point in points]


def mmr_plan(
    index: Index, query: str, k: int, fetch_k: int, lambda_mult: float, **search: Any
) -> Generator[Step, Any, list[StoredPoint]]:
    """Maximal marginal relevance over the index's ``fetch_k`` best hits, on their full vectors."""
    candidates = yield from search_plan(index, query, fetch_k, with_vectors=[index.full.name], **search)
    if not candidates:
        return []
    query_vector = (yield (index.encode_queries, {"queries": [query]}))[index.full.name][0]
    vectors = np.array([point.vector[index.full.name] for point in candidates], dtype=np.float32)
    return [candidates[i] for i in maximal_marginal_relevance(query_vector, vectors, k, lambda_mult)]


def maximal_marginal_relevance(query: np.ndarray, vectors: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Greedy MMR on unit vectors: each pick maximises ``lambda * sim(query) - (1 - lambda) * max sim(picked)``."""
    relevance = vectors @ query
    picked: list[int] = []
    redundancy = np.full(len(vectors), -np.inf)
    while len(picked) < min(k, len(vectors)):
        scores = lambda_mult * relevance - (1 - lambda_mult) * np.where(np.isinf(redundancy), 0.0, redundancy)
        scores[picked] = -np.inf
        best = int(np.argmax(scores))
        picked.append(best)
        redundancy = np.maximum(redundancy, vectors @ vectors[best])
    return picked


def get_plan(index: Index, ids: Sequence[Any]) -> Generator[Step, Any, list[StoredPoint]]:
    """Stored points by caller id, in the order asked; unknown ids are left out."""
    records = yield (index.get, {"ids": list(ids)})
    return [read_point(index, record) for record in records]


def delete_plan(index: Index, ids: Sequence[Any]) -> Generator[Step, Any, None]:
    if ids and (yield from exists_plan(index)):
        yield (index.delete, {"ids": list(ids)})


def delete_by_filter_plan(index: Index, query_filter: models.Filter) -> Generator[Step, Any, None]:
    yield (index.delete_where, {"filter": query_filter})


def ref_doc_filter(ref_doc_ids: Sequence[str]) -> models.Filter:
    return models.Filter(must=[models.FieldCondition(key=REF_DOC_KEY, match=models.MatchAny(any=list(ref_doc_ids)))])


def id_filter(index: Index, ids: Sequence[Any]) -> models.HasIdCondition:
    # The index's own mapping: on a multi-tenant index, the tenant's point ids.
    return models.HasIdCondition(has_id=[index.point_id(doc_id) for doc_id in ids])


def scroll_plan(index: Index, query_filter: models.Filter | None) -> Generator[Step, Any, list[StoredPoint]]:
    """Every point matching ``query_filter`` (all of them for None)."""
    records = yield (index.scroll, {"filter": query_filter})
    return [read_point(index, record) for record in records]


def both(first: models.Filter | None, second: Any) -> models.Filter | None:
    """A filter that needs ``first`` and ``second`` (either may be None)."""
    if second is None:
        return first
    if first is None:
        return second if isinstance(second, models.Filter) else models.Filter(must=[second])
    return models.Filter(must=[first, second])
