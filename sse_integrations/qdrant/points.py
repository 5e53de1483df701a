"""Points: deterministic ids from the caller's document ids, the named vectors, and the payload."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from qdrant_client import models

from .._checks import check_unicode
from ..documents import ID_KEY, TEXT_KEY
from ..encoder import SSEEncoder
from ..matryoshka import truncate_and_normalize
from ..sparse import SparseVector
from .layout import DenseStage
from .passages import PassageStage

# Fixed, so one document id maps to the same point id in every collection (re-indexing into
# a new collection, or copying between clusters, keeps ids stable).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "sse-integrations/qdrant/point-id")

DocId = str | int | uuid.UUID


def to_point_id(doc_id: DocId, namespace: uuid.UUID = ID_NAMESPACE) -> int | str:
    """Deterministic Qdrant point id: non-negative ints and UUIDs pass through, other strings map by uuid5."""
    if isinstance(doc_id, bool):
        raise TypeError(f"document ids must be str, int or UUID, got bool {doc_id!r}")
    if isinstance(doc_id, (int, np.integer)):
        if doc_id < 0:
            raise ValueError(f"integer document ids must be >= 0 (Qdrant point ids are unsigned), got {doc_id}")
        return int(doc_id)
    if isinstance(doc_id, uuid.UUID):
        return str(doc_id)
    if isinstance(doc_id, str):
        try:
            # Only the canonical form passes through, so "A1B2..." and "a1b2..." stay distinct ids.
            parsed = uuid.UUID(doc_id)
            if str(parsed) == doc_id:
                return doc_id
        except ValueError:
            pass
        return str(uuid.uuid5(namespace, doc_id))
    raise TypeError(f"document ids must be str, int or UUID, got {type(doc_id).__name__}: {doc_id!r:.60}")


def named_point_id(doc_id: DocId, namespace: uuid.UUID, name: str) -> int | str:
    """:func:`to_point_id`, its errors naming the id's place (``name``, e.g. ``"ids[3]"``)."""
    if isinstance(doc_id, str) and not doc_id.isascii():
        # uuid5 would fail on it with a UnicodeEncodeError that names neither the id nor its place.
        check_unicode(doc_id, name)
    try:
        return to_point_id(doc_id, namespace)
    except TypeError as error:
        raise TypeError(f"{name}: {error}") from None
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def encode_stages(
    encoder: SSEEncoder,
    texts: Sequence[str],
    stages: Sequence[DenseStage],
    *,
    batch_size: int | None = None,
    passages: PassageStage | None = None,
) -> dict[str, np.ndarray]:
    """Named vectors for ``texts`` from one ``encode``: each stage's prefix, renormalised, and with
    ``passages`` the passage stage's prefix too (what a search sends as its passage query)."""
    passage_dim = (passages.dim or encoder.full_dim) if passages is not None else 0
    widest = max(passage_dim, *(stage.dim for stage in stages))
    kwargs: dict[str, Any] = {"batch_size": batch_size} if batch_size else {}
    full = encoder.encode(texts, truncate_dim=widest, normalize=False, **kwargs)
    vectors = stage_vectors(full, stages)
    if passages is not None:
        vectors[passages.name] = truncate_and_normalize(full, passage_dim)
    return vectors


class MultiVectors:
    """Each document's passage vectors: the rows of one matrix, ``counts[i]`` of them for document i."""

    def __init__(self, matrix: np.ndarray, counts: np.ndarray) -> None:
        if len(matrix) != int(np.sum(counts)):
            raise ValueError(f"{len(matrix)} passage vectors but counts add up to {int(np.sum(counts))}")
        self.matrix = matrix
        self.counts = np.asarray(counts, dtype=np.int64)
        self.bounds = np.concatenate([[0], np.cumsum(self.counts)]).tolist()

    def __len__(self) -> int:
        return len(self.counts)

    def split(self, rows: Sequence[Any]) -> list[Sequence[Any]]:
        """``rows`` (one entry per passage) grouped per document."""
        return [rows[start:stop] for start, stop in zip(self.bounds, self.bounds[1:])]

    def lists(self) -> list[list[list[float]]]:
        """Per document, its passages as float lists (what qdrant-client sends)."""
        return self.split(self.matrix.tolist())  # type: ignore[return-value]


def stage_vectors(full: np.ndarray, stages: Sequence[DenseStage]) -> dict[str, np.ndarray]:
    """Each stage's vectors from un-normalised vectors at the widest stage's width: prefix, then L2-normalise."""
    return {stage.name: truncate_and_normalize(full, stage.dim) for stage in stages}


def point_payloads(
    doc_ids: Sequence[DocId],
    texts: Sequence[str],
    payloads: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    text_key: str = TEXT_KEY,
    id_key: str = ID_KEY,
) -> list[dict[str, Any]]:
    """Each document's stored payload: the caller's plus the text and the document id."""
    stored = []
    for row, (doc_id, text) in enumerate(zip(doc_ids, texts)):
        payload = dict(payloads[row] or {}) if payloads is not None else {}
        payload[text_key] = text
        payload[id_key] = str(doc_id) if isinstance(doc_id, uuid.UUID) else doc_id
        stored.append(payload)
    return stored


def vector_rows(vectors: Mapping[str, np.ndarray | Sequence[Any]]) -> dict[str, Sequence[Any]]:
    """One entry per document for each named vector: dense arrays become float lists, in one ``tolist`` per array."""
    # One tolist() of the whole matrix costs a fraction of one per row.
    return {
        name: rows.tolist()
        if isinstance(rows, np.ndarray)
        else rows.lists()
        if isinstance(rows, MultiVectors)
        else rows
        for name, rows in vectors.items()
    }


def client_rows(rows: Sequence[Any]) -> Sequence[Any]:
    """One named vector's per-document entries as qdrant-client takes them: this package's sparse
    vectors become ``models.SparseVector``; anything else passes as it is."""
    if rows and isinstance(rows[0], SparseVector):
        return [models.SparseVector(indices=row.indices, values=row.values) for row in rows]
    return rows


def build_points(
    doc_ids: Sequence[DocId],
    texts: Sequence[str],
    vectors: Mapping[str, np.ndarray | Sequence[Any]],
    payloads: Sequence[Mapping[str, Any] | None] | None = None,
    *,
    text_key: str = TEXT_KEY,
    id_key: str = ID_KEY,
    namespace: uuid.UUID = ID_NAMESPACE,
) -> list[models.PointStruct]:
    """``PointStruct``s with every named vector; the payload is the caller's plus the text and the document id.

    ``vectors`` maps each vector name to a (documents x dim) array for dense vectors, to
    :class:`MultiVectors` for the passages, or to a sequence with one ready-made vector per
    document (``models.SparseVector`` or this package's ``SparseVector``).
    """
    # Every field is already of its final type (point ids from to_point_id, float lists, sparse
    # models), so pydantic's validation would only re-walk each vector; in a profile of
    # add_texts on the embedded engine it took longer than the engine's own upsert.
    make_point: Any = models.PointStruct.model_construct
    rows = {name: client_rows(values) for name, values in vector_rows(vectors).items()}
    stored = point_payloads(doc_ids, texts, payloads, text_key=text_key, id_key=id_key)
    return [
        make_point(
            id=to_point_id(doc_id, namespace),
            vector={name: values[row] for name, values in rows.items()},
            payload=stored[row],
        )
        for row, doc_id in enumerate(doc_ids)
    ]
