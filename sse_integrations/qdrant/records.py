"""Plans that read and delete stored points without encoding: by caller id, by filter, by a raw vector.

The vector stores need them (``get_by_ids``, deletion by source document, scrolling a
collection, search by an embedding the caller already has); they live here as plans so that
:class:`.index.MatryoshkaIndex` and :class:`.index.AsyncMatryoshkaIndex` run them like every
other call, on a server, in local mode and on the embedded engine alike. Every read answers
"nothing" before the collection exists: an index creates it on its first ``add_texts``.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from typing import Any, Protocol

from qdrant_client import models

from ..sparse import SparseEncoder
from .layout import SPARSE_METADATA_KEY, DenseStage
from .points import DocId
from .runner import Call

SCROLL_PAGE = 256


class RecordIndex(Protocol):
    """What these plans use of an index: its public attributes and methods (:class:`.core.IndexCore` has them)."""

    collection_name: str
    sparse_encoder: SparseEncoder | None
    sparse_stats: dict[str, float] | None

    @property
    def full(self) -> DenseStage: ...
    @property
    def text_key(self) -> str: ...
    def point_ids(self, ids: Iterable[DocId]) -> list[int | str]: ...
    def term_lengths(self, texts: Sequence[str]) -> list[int]: ...
    def ensure_collection_plan(self, create: bool, texts: Sequence[str] = ()) -> Generator[Call, Any, None]: ...


def exists_plan(index: RecordIndex) -> Generator[Call, Any, bool]:
    return bool((yield ("collection_exists", {"collection_name": index.collection_name})))


def get_plan(
    index: RecordIndex, ids: Sequence[DocId], with_vectors: bool | Sequence[str]
) -> Generator[Call, Any, list[models.Record]]:
    """Points by caller id, in the order asked; unknown ids are left out."""
    point_ids = index.point_ids(ids)
    if not point_ids or not (yield from exists_plan(index)):
        return []
    records = yield (
        "retrieve",
        {
            "collection_name": index.collection_name,
            "ids": point_ids,
            "with_payload": True,
            "with_vectors": with_vectors,
        },
    )
    by_point = {str(record.id): record for record in records}
    return [by_point[str(point_id)] for point_id in point_ids if str(point_id) in by_point]


def scroll_plan(
    index: RecordIndex, filter: models.Filter | None, with_vectors: bool | Sequence[str]
) -> Generator[Call, Any, list[models.Record]]:
    """Every point matching ``filter`` (all for None), read page by page."""
    if not (yield from exists_plan(index)):
        return []
    records: list[models.Record] = []
    offset = None
    while True:
        page, offset = yield (
            "scroll",
            {
                "collection_name": index.collection_name,
                "scroll_filter": filter,
                "limit": SCROLL_PAGE,
                "offset": offset,
                "with_payload": True,
                "with_vectors": with_vectors,
            },
        )
        records.extend(page)
        if offset is None:
            return records


def delete_where_plan(index: RecordIndex, filter: models.Filter) -> Generator[Call, Any, None]:
    if not isinstance(filter, models.Filter):
        raise TypeError(f"filter must be a qdrant_client.models.Filter, got {type(filter).__name__}")
    if (yield from exists_plan(index)):
        yield from forget_terms_plan(index, filter=filter)
        yield (
            "delete",
            {
                "collection_name": index.collection_name,
                "points_selector": models.FilterSelector(filter=filter),
                "wait": True,
            },
        )


def forget_terms_plan(
    index: RecordIndex, *, point_ids: Sequence[int | str] | None = None, filter: models.Filter | None = None
) -> Generator[Call, Any, None]:
    """BM25's running statistics forget the documents about to be deleted (by ids, else by ``filter``).

    Without it a deleted document kept counting in the average length new documents are
    weighted with. Collections without running statistics (made before them) are left as they are.
    """
    if not (yield from exists_plan(index)):
        return
    yield from index.ensure_collection_plan(create=False)
    encoder, stats = index.sparse_encoder, index.sparse_stats
    if encoder is None or stats is None:
        return
    if point_ids is not None:
        request = {"ids": list(point_ids), "with_payload": True, "with_vectors": False}
        found = yield ("retrieve", {"collection_name": index.collection_name, **request})
    else:
        found = yield from scroll_plan(index, filter, False)
    texts = [str((point.payload or {}).get(index.text_key, "")) for point in found]
    if not texts:
        return
    lengths = yield (index.term_lengths, {"texts": texts})
    docs = max(0, stats["doc_count"] - len(texts))
    terms = max(0, stats["term_count"] - sum(lengths)) if docs else 0
    encoder.avg_doc_length = terms / docs if terms else 1.0
    index.sparse_stats = {"doc_count": docs, "term_count": terms}
    metadata = {SPARSE_METADATA_KEY: {**encoder.get_config(), **index.sparse_stats}}
    yield ("update_collection", {"collection_name": index.collection_name, "metadata": metadata})


def search_by_vector_plan(
    index: RecordIndex,
    vector: Sequence[float],
    limit: int,
    filter: models.Filter | None,
    with_payload: bool | Sequence[str],
    with_vectors: bool | Sequence[str],
) -> Generator[Call, Any, list[models.ScoredPoint]]:
    """Search the full-width vector alone with an embedding the caller made (no coarse stage)."""
    if len(vector) != index.full.dim:
        raise ValueError(f"the vector has {len(vector)} dims, the index's full vector {index.full.dim}")
    if not (yield from exists_plan(index)):
        return []
    response = yield (
        "query_points",
        {
            "collection_name": index.collection_name,
            "query": [float(value) for value in vector],
            "using": index.full.name,
            "limit": limit,
            "query_filter": filter,
            "with_payload": with_payload,
            "with_vectors": with_vectors,
        },
    )
    return list(response.points)
