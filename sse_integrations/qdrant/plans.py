"""The query plans: nested prefetch -> rescore, BM25 sparse, and fusion, each one engine request.

The engine (a Qdrant server, Qdrant Edge, or qdrant-client's local mode) executes every stage;
``execution="client"`` alone keeps a coarse query on the engine and rescores here, for comparison.

:func:`prefetch_limits` and :func:`two_stage_query` serve anyone who drives their own client.
The ``*_plan`` generators hold the search logic of an index (:class:`PlanIndex`): each yields client calls
``(method name or callable, keyword arguments)`` and receives their results, so one plan runs
on a sync and on an async client alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Protocol

import numpy as np
from qdrant_client import models

from .._checks import check_positive_int
from ..search_mode import SearchMode, search_mode
from ..sparse import SparseEncoder
from .layout import DenseStage
from .options import DEFAULT_PREFETCH_FACTOR
from .passages import PassageStage, passage_rescore_query
from .runner import Call

Hits = list[list[models.ScoredPoint]]


class PlanIndex(Protocol):
    """What a search plan reads from its index (:class:`.core.IndexCore` provides it)."""

    collection_name: str
    stages: tuple[DenseStage, ...]
    passages: PassageStage | None
    sparse_encoder: SparseEncoder | None
    last_timings: dict[str, float]

    @property
    def coarse(self) -> DenseStage: ...
    @property
    def full(self) -> DenseStage: ...
    @property
    def sparse_name(self) -> str: ...
    @property
    def fusion(self) -> str: ...
    @property
    def fusion_factor(self) -> int: ...
    @property
    def fusion_weights(self) -> tuple[float, float] | None: ...
    @property
    def rrf_k(self) -> int | None: ...
    def uses_prefetch(self) -> bool: ...
    def prefetch_limit_for(self, limit: int, prefetch_limit: int | Sequence[int] | None) -> int | Sequence[int]: ...
    def coarse_search_params(self, search_params: models.SearchParams | None) -> models.SearchParams | None: ...
    def encode_queries(self, queries: list[str]) -> dict[str, np.ndarray]: ...
    def ensure_collection_plan(self, create: bool, texts: Sequence[str] = ()) -> Generator[Call, Any, None]: ...


def prefetch_limits(
    stage_count: int,
    limit: int,
    prefetch_limit: int | Sequence[int] | None = None,
    prefetch_factor: int = DEFAULT_PREFETCH_FACTOR,
) -> list[int]:
    """Candidates kept by each stage but the last, coarsest first.

    An int is the first stage's limit; stages in between shrink geometrically towards
    ``limit``. None means ``prefetch_factor * limit``. A sequence gives every stage's limit.
    """
    check_positive_int(limit, "limit")
    if prefetch_limit is None:
        prefetch_limit = prefetch_factor * limit
    if isinstance(prefetch_limit, Sequence):
        limits = [int(value) for value in prefetch_limit]
        if len(limits) != stage_count - 1:
            raise ValueError(
                f"prefetch_limit needs {stage_count - 1} values (one per stage but the last), got {limits}"
            )
        for value in limits:
            check_positive_int(value, "prefetch_limit")
        if any(later > earlier for earlier, later in zip(limits, limits[1:])):
            raise ValueError(f"prefetch limits must not grow from coarse to fine stages, got {limits}")
        return [max(value, limit) for value in limits]
    check_positive_int(prefetch_limit, "prefetch_limit")
    first = max(int(prefetch_limit), limit)
    steps = stage_count - 1
    return [max(limit, math.ceil(first * (limit / first) ** (index / steps))) for index in range(steps)]


def two_stage_query(
    query_vectors: Mapping[str, Sequence[float] | np.ndarray],
    stages: Sequence[DenseStage],
    *,
    limit: int = 10,
    prefetch_limit: int | Sequence[int] | None = None,
    filter: models.Filter | None = None,
    search_params: models.SearchParams | None = None,
) -> dict[str, Any]:
    """Keyword arguments of ``query_points`` (or a ``QueryRequest``) for a nested-prefetch search.

    The filter and ``search_params`` go to the innermost (coarse) prefetch, so only matching
    points become candidates; each later stage rescores the previous stage's candidates.
    """
    limits = prefetch_limits(len(stages), limit, prefetch_limit)
    prefetch = candidate_prefetch(query_vectors, stages[:-1], limits, filter=filter, search_params=search_params)
    last = stages[-1]
    return {"query": _as_list(query_vectors[last.name]), "using": last.name, "prefetch": prefetch, "limit": limit}


def candidate_prefetch(
    query_vectors: Mapping[str, Sequence[float] | np.ndarray],
    stages: Sequence[DenseStage],
    limits: Sequence[int],
    *,
    filter: models.Filter | None = None,
    search_params: models.SearchParams | None = None,
) -> models.Prefetch:
    """The nested prefetch of ``stages``, coarsest innermost: the candidates a later stage rescores.

    The filter and ``search_params`` go to the innermost (coarse) prefetch, so only matching
    points become candidates.
    """
    prefetch = None
    for stage, stage_limit in zip(stages, limits):
        first = prefetch is None
        prefetch = models.Prefetch(
            prefetch=prefetch,
            query=_as_list(query_vectors[stage.name]),
            using=stage.name,
            limit=stage_limit,
            filter=filter if first else None,
            params=search_params if first else None,
        )
    assert prefetch is not None, "at least one candidate stage"
    return prefetch


def _as_list(vector: Sequence[float] | np.ndarray) -> list[float]:
    return vector.tolist() if isinstance(vector, np.ndarray) else list(vector)


@dataclass(frozen=True)
class SearchRequest:
    """One ``search_batch`` call: the arguments of :meth:`MatryoshkaIndex.search_batch`."""

    queries: list[str]
    limit: int = 10
    prefetch_limit: int | Sequence[int] | None = None
    filter: models.Filter | None = None
    with_payload: bool | Sequence[str] = True
    with_vectors: bool | Sequence[str] = False
    search_params: models.SearchParams | None = None
    two_stage: bool = True
    mode: SearchMode | str = SearchMode.DENSE

    def query_request(self, **query: Any) -> models.QueryRequest:
        """A ``QueryRequest`` returning what this search asked for (payload, vectors)."""
        return models.QueryRequest(**query, with_payload=self.with_payload, with_vector=self.with_vectors)


def search_plan(index: PlanIndex, request: SearchRequest) -> Generator[Call, Any, Hits]:
    """Check the mode and run its plan; ``index.last_timings`` holds the seconds of each step."""
    check_positive_int(request.limit, "limit")
    search_mode(request.mode)
    if request.mode != "dense" and index.sparse_encoder is None:
        # An index opened without sparse=True takes the sparse vector from the collection's layout.
        yield from index.ensure_collection_plan(create=False)
    if request.mode != "dense" and index.sparse_encoder is None:
        raise ValueError(
            f"mode={request.mode!r} needs the sparse vector, but this index was made without sparse=True "
            f"(collection {index.collection_name!r} has dense vectors only)"
        )
    if request.mode == "sparse":
        yield from index.ensure_collection_plan(create=False)
        index.last_timings = {}
        return (yield from sparse_plan(index, request))
    if request.mode == "hybrid":
        return (yield from hybrid_plan(index, request))
    return (yield from dense_plan(index, request))


def _query_batch(
    index: PlanIndex, requests: list[models.QueryRequest], timings: dict[str, float], step: str
) -> Generator[Call, Any, Hits]:
    started = time.perf_counter()
    responses = yield ("query_batch_points", {"collection_name": index.collection_name, "requests": requests})
    timings[step] = time.perf_counter() - started
    return [response.points for response in responses]


def dense_plan(index: PlanIndex, request: SearchRequest) -> Generator[Call, Any, Hits]:
    """Two-stage (or single-stage) dense search: nested prefetch on the engine, or rescoring here."""
    limit = request.limit
    limits = prefetch_limits(len(index.stages), limit, index.prefetch_limit_for(limit, request.prefetch_limit))
    yield from index.ensure_collection_plan(create=False)
    timings: dict[str, float] = {}
    index.last_timings = timings
    if not request.queries:
        return []
    started = time.perf_counter()
    vectors = index.encode_queries(request.queries)
    timings["encode"] = time.perf_counter() - started
    if request.two_stage and not index.uses_prefetch():
        return (yield from client_rescore_plan(index, request, vectors, limits, timings))
    coarse_params = index.coarse_search_params(request.search_params)
    requests = [
        request.query_request(**_engine_query(index, request, vectors, row, limits, coarse_params))
        for row in range(len(request.queries))
    ]
    return (yield from _query_batch(index, requests, timings, "query"))


def _engine_query(
    index: PlanIndex,
    request: SearchRequest,
    vectors: dict[str, np.ndarray],
    row: int,
    limits: list[int],
    coarse_params: models.SearchParams | None,
) -> dict[str, Any]:
    """Query API arguments of one query: the full vector alone, or every stage as a nested prefetch."""
    if index.passages is not None:
        return _passage_query(index, request, vectors, row, limits, coarse_params, limit=request.limit)
    if not request.two_stage:
        full = index.full.name
        return {
            "query": vectors[full][row].tolist(),
            "using": full,
            "limit": request.limit,
            "filter": request.filter,
            "params": request.search_params,
        }
    return two_stage_query(
        {name: matrix[row] for name, matrix in vectors.items()},
        index.stages,
        limit=request.limit,
        prefetch_limit=limits,
        filter=request.filter,
        search_params=coarse_params,
    )


def _passage_query(
    index: PlanIndex,
    request: SearchRequest,
    vectors: dict[str, np.ndarray],
    row: int,
    limits: list[int],
    coarse_params: models.SearchParams | None,
    *,
    limit: int,
) -> dict[str, Any]:
    """Candidates from the coarse stages (or, without two stages, an exact search of the full
    vector), rescored by whole document and best passage."""
    assert index.passages is not None
    query_vectors = {name: matrix[row] for name, matrix in vectors.items()}
    if request.two_stage:
        candidates = candidate_prefetch(
            query_vectors, index.stages[:-1], limits, filter=request.filter, search_params=coarse_params
        )
    else:
        full = index.full.name
        candidates = models.Prefetch(
            query=_as_list(query_vectors[full]),
            using=full,
            limit=limits[0],
            filter=request.filter,
            params=request.search_params,
        )
    return passage_rescore_query(query_vectors, candidates, index.full, index.passages, limit=limit)


def _sparse_query(sparse: Any) -> models.SparseVector:
    return models.SparseVector(indices=sparse.indices, values=sparse.values)


def sparse_plan(index: PlanIndex, request: SearchRequest) -> Generator[Call, Any, Hits]:
    """BM25 over the sparse vector; Qdrant's IDF modifier weighs the query terms."""
    if not request.queries:
        return []
    assert index.sparse_encoder is not None  # search_plan refused the mode otherwise
    started = time.perf_counter()
    requests = [
        request.query_request(
            query=_sparse_query(vector), using=index.sparse_name, limit=request.limit, filter=request.filter
        )
        for vector in index.sparse_encoder.encode_queries(request.queries)
    ]
    hits = yield from _query_batch(index, requests, index.last_timings, "sparse")
    index.last_timings["sparse"] = time.perf_counter() - started  # encoding the queries included
    return hits


def fusion_query(
    fusion: str, weights: tuple[float, float] | None, rrf_k: int | None
) -> models.FusionQuery | models.RrfQuery:
    """The Query API's fusion of the prefetched lists: DBSF, plain RRF, or parameterised RRF."""
    if fusion == "dbsf":
        return models.FusionQuery(fusion=models.Fusion.DBSF)
    if weights is None and rrf_k is None:
        # The plain form also works on servers older than parameterised RRF.
        return models.FusionQuery(fusion=models.Fusion.RRF)
    return models.RrfQuery(rrf=models.Rrf(k=rrf_k, weights=list(weights) if weights is not None else None))


def hybrid_plan(index: PlanIndex, request: SearchRequest) -> Generator[Call, Any, Hits]:
    """Fuse the two-stage dense list and the sparse list, each ``fusion_factor * limit`` long."""
    candidates = index.fusion_factor * request.limit
    prefetch_limit = index.prefetch_limit_for(request.limit, request.prefetch_limit)
    if isinstance(prefetch_limit, int):
        prefetch_limit = max(prefetch_limit, candidates)
    yield from index.ensure_collection_plan(create=False)
    index.last_timings = timings = {}
    if not request.queries:
        return []
    assert index.sparse_encoder is not None  # search_plan refused the mode otherwise
    started = time.perf_counter()
    vectors = index.encode_queries(request.queries)
    sparse_vectors = index.sparse_encoder.encode_queries(request.queries)
    timings["encode"] = time.perf_counter() - started
    limits = prefetch_limits(len(index.stages), candidates, prefetch_limit)
    fusion = fusion_query(index.fusion, index.fusion_weights, index.rrf_k)
    coarse_params = index.coarse_search_params(request.search_params)
    requests = []
    for row, sparse_vector in enumerate(sparse_vectors):
        if index.passages is not None:
            dense_query = _passage_query(index, request, vectors, row, limits, coarse_params, limit=candidates)
        else:
            dense_query = two_stage_query(
                {name: matrix[row] for name, matrix in vectors.items()},
                index.stages,
                limit=candidates,
                prefetch_limit=limits,
                filter=request.filter,
                search_params=coarse_params,
            )
        requests.append(
            request.query_request(
                prefetch=[
                    models.Prefetch(**dense_query),
                    models.Prefetch(
                        query=_sparse_query(sparse_vector),
                        using=index.sparse_name,
                        limit=candidates,
                        filter=request.filter,
                    ),
                ],
                query=fusion,
                limit=request.limit,
            )
        )
    return (yield from _query_batch(index, requests, timings, "query"))


# --- client-side rescoring -----------------------------------------------------------------


def client_rescore_plan(
    index: PlanIndex,
    request: SearchRequest,
    vectors: dict[str, np.ndarray],
    limits: list[int],
    timings: dict[str, float],
) -> Generator[Call, Any, Hits]:
    """Coarse search on the engine, later stages rescored here with numpy, payloads for the final hits only."""
    coarse = index.coarse.name
    coarse_params = index.coarse_search_params(request.search_params)
    requests = [
        models.QueryRequest(
            query=vectors[coarse][row].tolist(),
            using=coarse,
            limit=limits[0],
            filter=request.filter,
            params=coarse_params,
            with_payload=False,
            with_vector=False,
        )
        for row in range(len(request.queries))
    ]
    candidate_lists = [
        [point.id for point in hits] for hits in (yield from _query_batch(index, requests, timings, "coarse"))
    ]
    unique_ids = list(dict.fromkeys(point_id for ids in candidate_lists for point_id in ids))
    present, stage_matrices, records = yield from _candidate_vectors(index, request, unique_ids, timings)
    started = time.perf_counter()
    row_of = {point_id: row for row, point_id in enumerate(present)}
    later = [stage.name for stage in index.stages[1:]]
    ranked = []
    for row, candidates in enumerate(candidate_lists):
        rows = np.array([row_of[point_id] for point_id in candidates if point_id in row_of], dtype=np.int64)
        scores = np.zeros(0, dtype=np.float32)
        for name, keep in zip(later, [*limits[1:], request.limit]):
            order, scores = _rescore(vectors[name][row], stage_matrices[name][rows], keep)
            rows = rows[order]
        ranked.append([(present[position], float(score)) for position, score in zip(rows, scores)])
    timings["rescore"] = time.perf_counter() - started
    payloads = yield from _final_payloads(index, request, ranked, timings)
    with_vectors = request.with_vectors
    return [
        [
            models.ScoredPoint(
                id=point_id,
                version=0,
                score=score,
                payload=payloads.get(point_id),
                vector=_select_vectors(records[point_id].vector, with_vectors) if with_vectors else None,
            )
            for point_id, score in hits
        ]
        for hits in ranked
    ]


def _candidate_vectors(
    index: PlanIndex, request: SearchRequest, unique_ids: list[Any], timings: dict[str, float]
) -> Generator[Call, Any, tuple[list[Any], dict[str, np.ndarray], dict[Any, Any]]]:
    """The later stages' vectors of the candidates still present: (ids, name -> matrix, id -> record)."""
    later = [stage.name for stage in index.stages[1:]]
    started = time.perf_counter()
    fetch_vectors: bool | list[str]
    if request.with_vectors is True:
        fetch_vectors = True
    else:
        fetch_vectors = list(dict.fromkeys([*later, *(request.with_vectors or [])]))
    records = []
    if unique_ids:
        # Vectors only: payloads are fetched for the final hits alone, not for every candidate.
        records = yield (
            "retrieve",
            {
                "collection_name": index.collection_name,
                "ids": unique_ids,
                "with_payload": False,
                "with_vectors": fetch_vectors,
            },
        )
    timings["retrieve"] = time.perf_counter() - started
    by_id = {record.id: record for record in records}
    # A point deleted between the two calls is simply not a candidate any more.
    present = [point_id for point_id in unique_ids if point_id in by_id]
    matrices = {
        stage.name: _stack([by_id[point_id].vector[stage.name] for point_id in present], stage.dim)
        for stage in index.stages[1:]
    }
    return present, matrices, by_id


def _final_payloads(
    index: PlanIndex, request: SearchRequest, ranked: list[list[tuple[Any, float]]], timings: dict[str, float]
) -> Generator[Call, Any, dict[Any, Any]]:
    if request.with_payload is False:
        return {}
    started = time.perf_counter()
    payloads: dict[Any, Any] = {}
    final_ids = list(dict.fromkeys(point_id for hits in ranked for point_id, _ in hits))
    if final_ids:
        records = yield (
            "retrieve",
            {
                "collection_name": index.collection_name,
                "ids": final_ids,
                "with_payload": request.with_payload,
                "with_vectors": False,
            },
        )
        payloads = {record.id: record.payload for record in records}
    timings["payload"] = time.perf_counter() - started
    return payloads


def _stack(rows: list[list[float]], dim: int) -> np.ndarray:
    """float32 matrix from lists of floats (one flat fromiter beats np.array on nested lists)."""
    return np.fromiter(chain.from_iterable(rows), dtype=np.float32, count=len(rows) * dim).reshape(len(rows), dim)


def _rescore(query: np.ndarray, candidates: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of candidate rows (unit vectors) against a unit query; top ``keep`` positions, best first."""
    scores = candidates @ query
    # Stable on ties, so equal scores keep the previous stage's order.
    order = np.argsort(-scores, kind="stable")[:keep]
    return order, scores[order]


def _select_vectors(vector: Any, with_vectors: bool | Sequence[str]) -> Any:
    if with_vectors is False or with_vectors is None:
        return None
    if with_vectors is True:
        return vector
    return {name: vector[name] for name in with_vectors if name in vector}
