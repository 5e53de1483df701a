"""Qdrant collections with Matryoshka named vectors and two-stage (coarse -> full) search.

One point per document carries several named vectors, all prefixes of one SSE embedding:
by default ``"coarse"`` (the first 64 dimensions, renormalised) and ``"full"`` (all 512).
A search ranks the collection on the cheap coarse vector, keeps ``prefetch_limit``
candidates, and rescores only those with the full vector. More stages (32 -> 128 -> 512)
nest the same way.

Execution follows the engine. A Qdrant server (or cloud) runs the stages natively, so
search sends one ``query_points`` call with a nested ``prefetch``. qdrant-client's local
mode (``QdrantClient(":memory:")`` or ``path=...``) rescores a prefetch by filtering the whole
collection in Python, which is slower than a single full-width query; there the index runs
the coarse query itself, takes the candidates' larger vectors from the local storage (or
``retrieve``) and rescores them with numpy. Both return Qdrant ``ScoredPoint`` lists with the
same ranking.

The low-level helpers (:func:`make_stages`, :func:`vectors_config`, :func:`encode_stages`,
:func:`build_points`, :func:`two_stage_query`) serve people who drive their own client;
:class:`MatryoshkaIndex` and :class:`AsyncMatryoshkaIndex` wrap them for a sync or async
client. Both share one implementation: the logic is written once as generators that yield
client calls, and each class only runs those calls (plainly or with ``await``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

try:
    from qdrant_client import QdrantClient, models
    from qdrant_client.local.async_qdrant_local import AsyncQdrantLocal
    from qdrant_client.local.qdrant_local import QdrantLocal
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.qdrant needs qdrant-client: pip install "sse-integrations[qdrant]"'
    ) from error

from ._checks import as_text_list, check_positive_int, check_text
from .documents import ID_KEY, TEXT_KEY, Document, read_documents
from .encoder import SSEEncoder
from .matryoshka import truncate_and_normalize, validate_dim
from .sparse import SparseEncoder

__all__ = [
    "COARSE_NAME",
    "DEFAULT_COARSE_DIM",
    "DEFAULT_PREFETCH_FACTOR",
    "FULL_NAME",
    "ID_KEY",
    "ID_NAMESPACE",
    "TEXT_KEY",
    "AsyncMatryoshkaIndex",
    "CollectionMismatchError",
    "DenseStage",
    "Document",
    "IndexingError",
    "MatryoshkaIndex",
    "build_points",
    "encode_stages",
    "is_local_client",
    "layout_differences",
    "make_stages",
    "prefetch_limits",
    "read_documents",
    "stages_from_collection",
    "to_point_id",
    "two_stage_query",
    "vectors_config",
]

DEFAULT_COARSE_DIM = 64
COARSE_NAME = "coarse"
FULL_NAME = "full"
# Candidates kept by the first stage per requested hit: prefetch_limit = factor * limit.
# benchmarks/two_stage.py (docs/benchmarks.md), bundled model, 50,000 Tatoeba sentences:
# recall@10 against the exact 512-dim ranking with a 64-dim coarse stage was 0.947 at 100
# candidates, 0.984 at 300 and 0.992 at 500, the smallest measured limit reaching 0.99.
DEFAULT_PREFETCH_FACTOR = 50
DEFAULT_BATCH_SIZE = 256
# Fixed, so one document id maps to the same point id in every collection (re-indexing into
# a new collection, or copying between clusters, keeps ids stable).
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "sse-integrations/qdrant/point-id")

DocId = Union[str, int, uuid.UUID]
Execution = Literal["auto", "prefetch", "client"]
SearchMode = Literal["dense", "sparse", "hybrid"]
Fusion = Literal["rrf", "dbsf"]
SPARSE_NAME = "sparse"
# Collection metadata key holding the sparse encoder's settings (its average document length
# above all), so every process that opens the collection weights new documents alike.
SPARSE_METADATA_KEY = "sse_sparse"
# Candidates each branch of a hybrid search contributes to the fusion, per requested hit.
DEFAULT_FUSION_FACTOR = 5
QuantizationOption = Union[Literal["binary", "scalar"], "models.QuantizationConfig", None]


class CollectionMismatchError(ValueError):
    """An existing collection's vectors differ from what the index expects; nothing was written."""


class IndexingError(RuntimeError):
    """A batch failed while adding texts; ``written_ids`` were stored before it, ``failed_ids`` were not."""

    def __init__(self, message: str, written_ids: list[DocId], failed_ids: list[DocId]) -> None:
        super().__init__(message)
        self.written_ids = written_ids
        self.failed_ids = failed_ids


# --- layout --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DenseStage:
    """One named dense vector of the collection: a Matryoshka prefix of ``dim`` dimensions.

    Args:
        name: the Qdrant vector name.
        dim: prefix width (a Matryoshka dim of the model).
        quantization: None, "binary", "scalar", or a ``models.QuantizationConfig``.
        on_disk: keep the original vectors on disk (server only; Qdrant's default if None).
    """

    name: str
    dim: int
    quantization: QuantizationOption = None
    on_disk: bool | None = None


def make_stages(
    full_dim: int,
    coarse_dim: int = DEFAULT_COARSE_DIM,
    *,
    stages: Sequence[int | DenseStage] | None = None,
    coarse_name: str = COARSE_NAME,
    full_name: str = FULL_NAME,
    quantization: QuantizationOption = None,
) -> tuple[DenseStage, ...]:
    """The named vectors of a collection, coarsest first and the rescoring vector last.

    Without ``stages`` this is ``coarse_name`` (``coarse_dim``) and ``full_name`` (``full_dim``).
    Integer entries of ``stages`` are named ``coarse_name`` (first), ``full_name`` (last) and
    ``f"{coarse_name}_{dim}"`` (in between). ``quantization`` applies to the first stage when
    it is given as an int.
    """
    entries: list[int | DenseStage] = list(stages) if stages is not None else [coarse_dim, full_dim]
    if len(entries) < 2:
        raise ValueError(f"a Matryoshka index needs at least two stages (coarse and rescoring), got {entries!r}")
    built: list[DenseStage] = []
    for position, entry in enumerate(entries):
        if isinstance(entry, DenseStage):
            stage = entry
        elif isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
            if position == 0:
                name = coarse_name
            elif position == len(entries) - 1:
                name = full_name
            else:
                name = f"{coarse_name}_{int(entry)}"
            stage = DenseStage(name, int(entry), quantization if position == 0 else None)
        else:
            raise TypeError(f"stages[{position}] must be an int or a DenseStage, got {type(entry).__name__}")
        validate_dim(stage.dim, full_dim)
        if not isinstance(stage.name, str) or not stage.name:
            raise ValueError(f"stages[{position}] needs a non-empty vector name, got {stage.name!r}")
        built.append(stage)
    names = [stage.name for stage in built]
    if len(set(names)) != len(names):
        raise ValueError(f"vector names must be distinct, got {names}")
    dims = [stage.dim for stage in built]
    if any(later <= earlier for earlier, later in zip(dims, dims[1:])):
        raise ValueError(f"stage dims must increase from coarse to full, got {dims}")
    return tuple(built)


def _quantization_config(option: QuantizationOption) -> models.QuantizationConfig | None:
    if option is None:
        return None
    if option == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig())
    if option == "scalar":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99)
        )
    if isinstance(option, (models.BinaryQuantization, models.ScalarQuantization, models.ProductQuantization)):
        return option
    raise ValueError(f"quantization must be None, 'binary', 'scalar' or a qdrant QuantizationConfig, got {option!r}")


def vectors_config(
    stages: Sequence[DenseStage], distance: models.Distance = models.Distance.COSINE
) -> dict[str, models.VectorParams]:
    """``vectors_config`` for ``create_collection``: one cosine ``VectorParams`` per stage."""
    return {
        stage.name: models.VectorParams(
            size=stage.dim,
            distance=distance,
            quantization_config=_quantization_config(stage.quantization),
            on_disk=stage.on_disk,
        )
        for stage in stages
    }


def _describe(dense: Mapping[str, Any], sparse: Iterable[str]) -> str:
    parts = [f"{name}: {params.size} {str(getattr(params.distance, 'value', params.distance)).lower()}"
             for name, params in dense.items()]
    parts += [f"{name}: sparse" for name in sparse]
    return "{" + ", ".join(parts) + "}"


def layout_differences(
    info: models.CollectionInfo,
    expected: Mapping[str, models.VectorParams],
    expected_sparse: Iterable[str] = (),
) -> list[str]:
    """What differs between an existing collection's vectors and the expected ones (empty = match)."""
    existing = info.config.params.vectors
    if existing is None:
        existing = {}
    elif isinstance(existing, models.VectorParams):
        existing = {"": existing}  # Qdrant's unnamed default vector
    existing_sparse = set((info.config.params.sparse_vectors or {}).keys())
    wanted_sparse = set(expected_sparse)
    problems = []
    for name in expected:
        if name not in existing:
            problems.append(f"vector {name!r} is missing")
    for name in existing:
        if name not in expected:
            label = "an unnamed default vector" if name == "" else f"vector {name!r}"
            problems.append(f"the collection has {label} that this index does not use")
    for name, params in expected.items():
        if name in existing:
            have = existing[name]
            if have.size != params.size:
                problems.append(f"vector {name!r} has size {have.size}, expected {params.size}")
            if have.distance != params.distance:
                problems.append(f"vector {name!r} uses {have.distance}, expected {params.distance}")
    for name in sorted(wanted_sparse - existing_sparse):
        problems.append(f"sparse vector {name!r} is missing")
    for name in sorted(existing_sparse - wanted_sparse):
        problems.append(f"the collection has sparse vector {name!r} that this index does not use")
    if problems:
        problems.append(
            f"collection has {_describe(existing, existing_sparse)}, "
            f"this index expects {_describe(expected, wanted_sparse)}"
        )
    return problems


# --- points --------------------------------------------------------------------------------


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


def encode_stages(
    encoder: SSEEncoder,
    texts: Sequence[str],
    stages: Sequence[DenseStage],
    *,
    batch_size: int | None = None,
) -> dict[str, np.ndarray]:
    """Named vectors for ``texts``: one ``encode`` at the widest stage, each prefix renormalised."""
    widest = max(stage.dim for stage in stages)
    kwargs = {"batch_size": batch_size} if batch_size else {}
    full = encoder.encode(texts, truncate_dim=widest, normalize=False, **kwargs)
    return {stage.name: truncate_and_normalize(full, stage.dim) for stage in stages}


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

    ``vectors`` maps each vector name to a (documents x dim) array for dense vectors, or to a
    sequence with one ready-made vector per document (e.g. ``models.SparseVector``).
    """
    points = []
    for row, (doc_id, text) in enumerate(zip(doc_ids, texts)):
        payload = dict(payloads[row] or {}) if payloads is not None else {}
        payload[text_key] = text
        payload[id_key] = str(doc_id) if isinstance(doc_id, uuid.UUID) else doc_id
        points.append(
            models.PointStruct(
                id=to_point_id(doc_id, namespace),
                vector={
                    name: rows[row].tolist() if isinstance(rows, np.ndarray) else rows[row]
                    for name, rows in vectors.items()
                },
                payload=payload,
            )
        )
    return points


# --- queries -------------------------------------------------------------------------------


def prefetch_limits(
    stage_count: int, limit: int, prefetch_limit: int | Sequence[int] | None = None,
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
            raise ValueError(f"prefetch_limit needs {stage_count - 1} values (one per stage but the last), got {limits}")
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
    prefetch = None
    for stage, stage_limit in zip(stages[:-1], limits):
        first = prefetch is None
        prefetch = models.Prefetch(
            prefetch=prefetch,
            query=_as_list(query_vectors[stage.name]),
            using=stage.name,
            limit=stage_limit,
            filter=filter if first else None,
            params=search_params if first else None,
        )
    last = stages[-1]
    return {"query": _as_list(query_vectors[last.name]), "using": last.name, "prefetch": prefetch, "limit": limit}


def _as_list(vector: Sequence[float] | np.ndarray) -> list[float]:
    return vector.tolist() if isinstance(vector, np.ndarray) else list(vector)


def is_local_client(client: Any) -> bool:
    """True for qdrant-client's local mode (``":memory:"`` or ``path=``), sync or async."""
    # qdrant-client exposes no public flag; the local engine is the wrapped `_client`.
    inner = getattr(client, "_client", client)
    return isinstance(inner, (QdrantLocal, AsyncQdrantLocal))


def _stack(rows: list[list[float]], dim: int) -> np.ndarray:
    """float32 matrix from lists of floats (one flat fromiter beats np.array on nested lists)."""
    from itertools import chain

    return np.fromiter(chain.from_iterable(rows), dtype=np.float32, count=len(rows) * dim).reshape(len(rows), dim)


def _local_vectors(client: Any, collection_name: str, point_ids: Sequence[Any], names: Sequence[str]
                   ) -> dict[str, np.ndarray] | None:
    """The points' vectors read straight from qdrant-client's local-mode storage, or None.

    ``retrieve`` copies every vector into a Python list and a pydantic model (tens of
    microseconds per point), which dominated two-stage latency at a few hundred candidates;
    local mode keeps the same vectors in one numpy array per name. qdrant-client has no public
    accessor for them, so this reads its storage defensively and returns None (the caller then
    uses ``retrieve``) whenever anything is not as expected.
    """
    try:
        collection = client._client.collections[collection_name]
        index_of, matrices = collection.ids, collection.vectors
        deleted, deleted_per_vector = collection.deleted, collection.deleted_per_vector
        rows = [index_of[point_id] for point_id in point_ids]
        if rows and (np.asarray(deleted)[rows] != 0).any():
            return None
        found = {}
        for name in names:
            matrix = matrices[name]
            if not isinstance(matrix, np.ndarray) or matrix.ndim != 2:
                return None
            if rows and (np.asarray(deleted_per_vector[name])[rows] != 0).any():
                return None
            found[name] = matrix[rows]  # fancy indexing copies: later writes cannot change it
        return found
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def _rescore(
    query: np.ndarray, candidates: np.ndarray, keep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of candidate rows (unit vectors) against a unit query; top ``keep`` positions, best first."""
    scores = candidates @ query
    # Stable on ties, so equal scores keep the previous stage's order.
    order = np.argsort(-scores, kind="stable")[:keep]
    return order, scores[order]


# --- the index -----------------------------------------------------------------------------

_Call = tuple[Any, dict[str, Any]]  # (client method name, kwargs) or (callable, kwargs)


class _IndexCore:
    """Configuration and client-independent logic; subclasses only execute the yielded calls."""

    _is_async = False
    #: In local mode, read candidates' vectors from the local storage instead of ``retrieve``.
    local_fast_path = True

    def __init__(
        self,
        client: Any,
        collection_name: str,
        encoder: SSEEncoder | str | os.PathLike | None = None,
        *,
        coarse_dim: int = DEFAULT_COARSE_DIM,
        stages: Sequence[int | DenseStage] | None = None,
        coarse_name: str = COARSE_NAME,
        full_name: str = FULL_NAME,
        quantization: QuantizationOption = None,
        prefetch_limit: int | Sequence[int] | None = None,
        prefetch_factor: int = DEFAULT_PREFETCH_FACTOR,
        execution: Execution = "auto",
        text_key: str = TEXT_KEY,
        id_key: str = ID_KEY,
        id_namespace: uuid.UUID = ID_NAMESPACE,
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress: bool | None = None,
        collection_kwargs: Mapping[str, Any] | None = None,
        sparse: bool | SparseEncoder = False,
        sparse_name: str = SPARSE_NAME,
        fusion: Fusion = "rrf",
        fusion_factor: int = DEFAULT_FUSION_FACTOR,
        fusion_weights: tuple[float, float] | None = None,
        rrf_k: int | None = None,
    ) -> None:
        """
        Args:
            client: a ``QdrantClient`` or ``AsyncQdrantClient`` (local mode, server or cloud).
            collection_name: created on the first ``add_texts`` if missing.
            encoder: an ``SSEEncoder``, a model folder / hub id, or None for the bundled model.
            coarse_dim: width of the first-stage vector (a Matryoshka dim).
            stages: all stages, coarsest first, as dims or ``DenseStage``s (overrides ``coarse_dim``).
            coarse_name, full_name: vector names of the first and last stage.
            quantization: "binary", "scalar" or a Qdrant config for the coarse vector (server only;
                local mode stores it but searches the float vectors).
            prefetch_limit: default first-stage candidates (int, or one per stage but the last).
            prefetch_factor: with no ``prefetch_limit``, candidates = factor * limit.
            execution: "auto" (prefetch on servers, client-side rescoring in local mode),
                "prefetch" (always one Query API call) or "client" (always rescoring here).
            text_key, id_key: payload keys of the text and of the caller's document id.
            id_namespace: uuid5 namespace that maps string ids to point ids.
            batch_size: documents per encode + upsert in ``add_texts``.
            show_progress: progress bar in ``add_texts``; None shows it for long runs on a terminal.
            collection_kwargs: passed to ``create_collection`` (shard_number, replication_factor,
                hnsw_config, optimizers_config, ...).
            sparse: True (or a configured ``SparseEncoder``) adds a BM25 sparse vector per point,
                with Qdrant's IDF modifier, for ``mode="sparse"`` and ``mode="hybrid"`` searches.
            sparse_name: the sparse vector's name.
            fusion: how hybrid search fuses the dense and sparse lists: "rrf" or "dbsf".
            fusion_factor: candidates each list contributes to the fusion = factor * limit.
            fusion_weights: RRF weights of the (dense, sparse) lists; None weighs them equally.
                A weight w turns rank r into 1 / (r / w + k - 1), Qdrant's weighted RRF.
            rrf_k: RRF's rank constant k; None keeps Qdrant's default (2).
        """
        if not isinstance(collection_name, str) or not collection_name:
            raise ValueError(f"collection_name must be a non-empty str, got {collection_name!r}")
        if execution not in ("auto", "prefetch", "client"):
            raise ValueError(f"execution must be 'auto', 'prefetch' or 'client', got {execution!r}")
        if text_key == id_key:
            raise ValueError(f"text_key and id_key must differ, both are {text_key!r}")
        check_positive_int(batch_size, "batch_size")
        check_positive_int(prefetch_factor, "prefetch_factor")
        if inspect.iscoroutinefunction(getattr(client, "upsert", None)) != self._is_async:
            wanted, other = ("AsyncMatryoshkaIndex", "an async") if not self._is_async else ("MatryoshkaIndex", "a sync")
            raise TypeError(f"{type(client).__name__} is {other} client: use {wanted} with it")
        self.client = client
        self.collection_name = collection_name
        self.encoder = encoder if isinstance(encoder, SSEEncoder) else SSEEncoder.from_pretrained(encoder)
        self.stages = make_stages(
            self.encoder.full_dim, coarse_dim, stages=stages, coarse_name=coarse_name,
            full_name=full_name, quantization=quantization,
        )
        if prefetch_limit is not None:
            prefetch_limits(len(self.stages), 1, prefetch_limit)  # validate early
        self.prefetch_limit = prefetch_limit
        self.prefetch_factor = prefetch_factor
        self.execution = execution
        self.text_key = text_key
        self.id_key = id_key
        self.id_namespace = id_namespace
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.collection_kwargs = dict(collection_kwargs or {})
        self._check_collection_kwargs()
        if fusion not in ("rrf", "dbsf"):
            raise ValueError(f"fusion must be 'rrf' or 'dbsf', got {fusion!r}")
        check_positive_int(fusion_factor, "fusion_factor")
        if fusion == "dbsf" and (fusion_weights is not None or rrf_k is not None):
            raise ValueError("fusion_weights and rrf_k apply to fusion='rrf' only (Qdrant's DBSF takes neither)")
        if fusion_weights is not None:
            try:
                weights = tuple(float(weight) for weight in fusion_weights)
            except (TypeError, ValueError):
                weights = ()
            if len(weights) != 2 or not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
                raise ValueError(
                    f"fusion_weights must be two finite weights >= 0 (dense, sparse), not both 0; got {fusion_weights!r}"
                )
            fusion_weights = weights  # type: ignore[assignment]
        if rrf_k is not None:
            check_positive_int(rrf_k, "rrf_k")
        if isinstance(sparse, SparseEncoder):
            self.sparse_encoder: SparseEncoder | None = sparse
        else:
            self.sparse_encoder = SparseEncoder(self.encoder.tokenizer) if sparse else None
        self.sparse_name = sparse_name
        self.fusion = fusion
        self.fusion_factor = fusion_factor
        self.fusion_weights = fusion_weights
        self.rrf_k = rrf_k
        if sparse_name in {stage.name for stage in self.stages}:
            raise ValueError(f"sparse_name {sparse_name!r} is also a dense vector name")
        self.local = is_local_client(client)
        self._collection_checked = False
        #: Seconds spent in each step of the last search (encode, coarse, rescore or query).
        self.last_timings: dict[str, float] = {}

    # configuration ---------------------------------------------------------------------------

    @property
    def coarse(self) -> DenseStage:
        return self.stages[0]

    @property
    def full(self) -> DenseStage:
        return self.stages[-1]

    def vectors_config(self) -> dict[str, models.VectorParams]:
        """The dense vectors of the collection (subclasses may add more, e.g. for hybrid search)."""
        return vectors_config(self.stages)

    def sparse_vectors_config(self) -> dict[str, models.SparseVectorParams]:
        """Sparse vectors of the collection: the BM25 vector (IDF by Qdrant) when ``sparse`` is on."""
        if self.sparse_encoder is None:
            return {}
        return {self.sparse_name: models.SparseVectorParams(modifier=models.Modifier.IDF)}

    def _check_collection_kwargs(self) -> None:
        reserved = {"collection_name", "vectors_config", "sparse_vectors_config"}
        clash = reserved & self.collection_kwargs.keys()
        if clash:
            raise ValueError(f"collection_kwargs may not set {sorted(clash)}: the index builds them")
        # A typo would otherwise travel through the client's **kwargs and be ignored silently.
        method = getattr(type(self.client), "create_collection", None) or self.client.create_collection
        parameters = inspect.signature(method).parameters
        known = {name for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
        unknown = sorted(self.collection_kwargs.keys() - known)
        if unknown and known - {"self"}:
            raise TypeError(f"create_collection() has no parameter(s) {unknown}")

    def _uses_prefetch(self) -> bool:
        if self.execution == "auto":
            return not self.local
        return self.execution == "prefetch"

    # input checks ----------------------------------------------------------------------------

    def _check_inputs(
        self, texts: Sequence[str], ids: Sequence[DocId] | None, payloads: Sequence[Mapping[str, Any] | None] | None
    ) -> tuple[list[str], list[DocId], list[Mapping[str, Any] | None] | None]:
        texts = as_text_list(texts, hint="wrap it: add_texts([text])")
        if ids is None:
            doc_ids: list[DocId] = [str(uuid.uuid4()) for _ in texts]
        else:
            if isinstance(ids, (str, bytes)):
                raise TypeError("ids must be a list, got a bare string")
            # numpy ints (ids from an array) would not serialise into the payload.
            doc_ids = [int(i) if isinstance(i, np.integer) else i for i in ids]
            if len(doc_ids) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(doc_ids)} ids")
            seen: dict[int | str, int] = {}
            for index, doc_id in enumerate(doc_ids):
                try:
                    point_id = to_point_id(doc_id, self.id_namespace)
                except (TypeError, ValueError) as error:
                    raise type(error)(f"ids[{index}]: {error}") from None
                if point_id in seen:
                    raise ValueError(f"ids[{index}] repeats ids[{seen[point_id]}] ({doc_id!r}): one text per id")
                seen[point_id] = index
        if payloads is not None:
            payloads = list(payloads)
            if len(payloads) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(payloads)} payloads")
            for index, payload in enumerate(payloads):
                if payload is None:
                    continue
                if not isinstance(payload, Mapping):
                    raise TypeError(f"payloads[{index}] must be a mapping or None, got {type(payload).__name__}")
                for key in (self.text_key, self.id_key):
                    if key in payload:
                        raise ValueError(f"payloads[{index}] sets {key!r}, which the index fills itself")
        return texts, doc_ids, payloads

    def _query_texts(self, queries: Sequence[str]) -> list[str]:
        return as_text_list(queries, name="queries", hint="use search(query)")

    # plans: generators that yield client calls -------------------------------------------

    def _ensure_collection_plan(self, create: bool, texts: Sequence[str] = ()) -> Generator[_Call, Any, None]:
        """Create the collection, or check an existing one; ``texts`` fit a new sparse encoder."""
        if self._collection_checked:
            return
        name = self.collection_name
        exists = yield ("collection_exists", {"collection_name": name})
        if not exists:
            if not create:
                raise ValueError(f"collection {name!r} does not exist: add texts first")
            sparse_settings = {}
            if self.sparse_encoder is not None:
                if self.sparse_encoder.avg_doc_length is None:
                    self.sparse_encoder.fit(texts)
                sparse_settings = {
                    "sparse_vectors_config": self.sparse_vectors_config(),
                    "metadata": {SPARSE_METADATA_KEY: self.sparse_encoder.get_config()},
                }
            yield ("create_collection", {
                "collection_name": name,
                "vectors_config": self.vectors_config(),
                **sparse_settings,
                **self.collection_kwargs,
            })
        else:
            info = yield ("get_collection", {"collection_name": name})
            problems = layout_differences(info, self.vectors_config(), self.sparse_vectors_config())
            if problems:
                raise CollectionMismatchError(
                    f"collection {name!r} does not match this index: " + "; ".join(problems)
                )
            if self.sparse_encoder is not None:
                stored = (getattr(info.config, "metadata", None) or {}).get(SPARSE_METADATA_KEY)
                if stored is None:
                    raise CollectionMismatchError(
                        f"collection {name!r} has no {SPARSE_METADATA_KEY!r} metadata: it was not made by a sparse index"
                    )
                self.sparse_encoder = SparseEncoder.from_config(stored, tokenizer=self.encoder.tokenizer)
        self._collection_checked = True

    def _point_ids(self, ids: Iterable[DocId]) -> list[int | str]:
        return [to_point_id(doc_id, self.id_namespace) for doc_id in ids]

    def _make_points(self, texts, doc_ids, payloads) -> list[models.PointStruct]:
        vectors = encode_stages(self.encoder, texts, self.stages)
        points = build_points(
            doc_ids, texts, vectors, payloads, text_key=self.text_key, id_key=self.id_key,
            namespace=self.id_namespace,
        )
        if self.sparse_encoder is not None:
            for point, sparse in zip(points, self.sparse_encoder.encode_documents(texts)):
                point.vector[self.sparse_name] = models.SparseVector(indices=sparse.indices, values=sparse.values)
        return points

    def _add_plan(self, texts, ids, payloads, batch_size, show_progress) -> Generator[_Call, Any, list[DocId]]:
        texts, doc_ids, payloads = self._check_inputs(texts, ids, payloads)
        batch_size = batch_size or self.batch_size
        check_positive_int(batch_size, "batch_size")
        if not texts:
            return []
        yield from self._ensure_collection_plan(create=True, texts=texts)
        starts = range(0, len(texts), batch_size)
        if show_progress is None:
            show_progress = self.show_progress
        if show_progress is None:
            show_progress = len(starts) > 4 and sys.stderr.isatty()
        bar = None
        if show_progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(texts), desc=f"Indexing {self.collection_name}", unit="doc")
        written: list[DocId] = []
        try:
            for start in starts:
                stop = start + batch_size
                batch_ids = doc_ids[start:stop]
                try:
                    points = yield (self._make_points, {
                        "texts": texts[start:stop], "doc_ids": batch_ids,
                        "payloads": payloads[start:stop] if payloads is not None else None,
                    })
                    yield ("upsert", {"collection_name": self.collection_name, "points": points, "wait": True})
                except Exception as error:
                    raise IndexingError(
                        f"adding texts to {self.collection_name!r} failed at documents {start}..{start + len(batch_ids) - 1} "
                        f"({type(error).__name__}: {error}); {len(written)} documents were written before it "
                        "(error.written_ids), this batch and later ones were not",
                        written_ids=list(written),
                        failed_ids=list(batch_ids),
                    ) from error
                written.extend(batch_ids)
                if bar is not None:
                    bar.update(len(batch_ids))
        finally:
            if bar is not None:
                bar.close()
        return doc_ids

    def _delete_plan(self, ids: Sequence[DocId]) -> Generator[_Call, Any, None]:
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a list, got a bare string")
        point_ids = self._point_ids(ids)
        if point_ids:
            yield ("delete", {
                "collection_name": self.collection_name,
                "points_selector": models.PointIdsList(points=point_ids),
                "wait": True,
            })

    def _count_plan(self, filter: models.Filter | None) -> Generator[_Call, Any, int]:
        result = yield ("count", {"collection_name": self.collection_name, "count_filter": filter, "exact": True})
        return result.count

    def _encode_queries(self, queries: list[str]) -> dict[str, np.ndarray]:
        return encode_stages(self.encoder, queries, self.stages)

    def _prefetch_limit_for(self, limit: int, prefetch_limit: int | Sequence[int] | None) -> int | Sequence[int]:
        """The call's prefetch limit, else the index's, else ``prefetch_factor * limit``."""
        if prefetch_limit is None:
            prefetch_limit = self.prefetch_limit
        return self.prefetch_factor * limit if prefetch_limit is None else prefetch_limit

    def _search_plan(
        self,
        queries: list[str],
        limit: int,
        prefetch_limit: int | Sequence[int] | None,
        filter: models.Filter | None,
        with_payload: bool | Sequence[str],
        with_vectors: bool | Sequence[str],
        search_params: models.SearchParams | None,
        two_stage: bool,
        mode: SearchMode = "dense",
    ) -> Generator[_Call, Any, list[list[models.ScoredPoint]]]:
        check_positive_int(limit, "limit")
        if mode not in ("dense", "sparse", "hybrid"):
            raise ValueError(f"mode must be 'dense', 'sparse' or 'hybrid', got {mode!r}")
        if mode != "dense" and self.sparse_encoder is None:
            raise ValueError(
                f"mode={mode!r} needs the sparse vector, but this index was made without sparse=True "
                f"(collection {self.collection_name!r} has dense vectors only)"
            )
        if mode == "sparse":
            yield from self._ensure_collection_plan(create=False)
            self.last_timings = {}
            return (yield from self._sparse_plan(queries, limit, filter, with_payload, with_vectors))
        if mode == "hybrid":
            return (yield from self._hybrid_plan(queries, limit, prefetch_limit, filter, with_payload,
                                                 with_vectors, search_params))
        prefetch_limit = self._prefetch_limit_for(limit, prefetch_limit)
        limits = prefetch_limits(len(self.stages), limit, prefetch_limit)
        yield from self._ensure_collection_plan(create=False)
        timings: dict[str, float] = {}
        self.last_timings = timings
        if not queries:
            return []
        started = time.perf_counter()
        vectors = self._encode_queries(queries)
        timings["encode"] = time.perf_counter() - started
        common = {"with_payload": with_payload, "with_vector": with_vectors}
        if not two_stage:
            requests = [
                models.QueryRequest(query=vectors[self.full.name][row].tolist(), using=self.full.name, limit=limit,
                                    filter=filter, params=search_params, **common)
                for row in range(len(queries))
            ]
            started = time.perf_counter()
            responses = yield ("query_batch_points", {"collection_name": self.collection_name, "requests": requests})
            timings["query"] = time.perf_counter() - started
            return [response.points for response in responses]
        if self._uses_prefetch():
            requests = [
                models.QueryRequest(
                    **two_stage_query({name: matrix[row] for name, matrix in vectors.items()}, self.stages,
                                      limit=limit, prefetch_limit=limits, filter=filter, search_params=search_params),
                    **common,
                )
                for row in range(len(queries))
            ]
            started = time.perf_counter()
            responses = yield ("query_batch_points", {"collection_name": self.collection_name, "requests": requests})
            timings["query"] = time.perf_counter() - started
            return [response.points for response in responses]
        return (yield from self._client_rescore_plan(queries, vectors, limit, limits, filter, with_payload,
                                                     with_vectors, search_params, timings))

    def _sparse_plan(
        self, queries, limit, filter, with_payload, with_vectors,
    ) -> Generator[_Call, Any, list[list[models.ScoredPoint]]]:
        if not queries:
            return []
        started = time.perf_counter()
        requests = [
            models.QueryRequest(query=models.SparseVector(indices=vector.indices, values=vector.values),
                                using=self.sparse_name, limit=limit, filter=filter,
                                with_payload=with_payload, with_vector=with_vectors)
            for vector in self.sparse_encoder.encode_queries(queries)
        ]
        responses = yield ("query_batch_points", {"collection_name": self.collection_name, "requests": requests})
        self.last_timings["sparse"] = time.perf_counter() - started
        return [response.points for response in responses]

    def _hybrid_plan(
        self, queries, limit, prefetch_limit, filter, with_payload, with_vectors, search_params,
    ) -> Generator[_Call, Any, list[list[models.ScoredPoint]]]:
        """Fuse the two-stage dense list and the sparse list, each ``fusion_factor * limit`` long."""
        candidates = self.fusion_factor * limit
        prefetch_limit = self._prefetch_limit_for(limit, prefetch_limit)
        if isinstance(prefetch_limit, int):
            prefetch_limit = max(prefetch_limit, candidates)
        if not self._uses_prefetch():
            # Local mode: run each branch the fast way, then fuse with qdrant-client's own fusion
            # code (the one its Query API applies to a FusionQuery).
            from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

            dense = yield from self._search_plan(queries, candidates, prefetch_limit, filter, with_payload,
                                                 with_vectors, search_params, True)
            timings = dict(self.last_timings)
            sparse = yield from self._sparse_plan(queries, candidates, filter, with_payload, with_vectors)
            timings.update(self.last_timings)
            self.last_timings = timings
            if self.fusion == "rrf":
                weights = list(self.fusion_weights) if self.fusion_weights is not None else None
                return [reciprocal_rank_fusion([d, sp], limit=limit, ranking_constant_k=self.rrf_k, weights=weights)
                        for d, sp in zip(dense, sparse)]
            return [distribution_based_score_fusion([d, sp], limit=limit) for d, sp in zip(dense, sparse)]
        yield from self._ensure_collection_plan(create=False)
        self.last_timings = timings = {}
        if not queries:
            return []
        started = time.perf_counter()
        vectors = self._encode_queries(queries)
        sparse_vectors = self.sparse_encoder.encode_queries(queries)
        timings["encode"] = time.perf_counter() - started
        limits = prefetch_limits(len(self.stages), candidates, prefetch_limit)
        fusion_query = self._fusion_query()
        requests = []
        for row, sparse in enumerate(sparse_vectors):
            dense_query = two_stage_query({name: matrix[row] for name, matrix in vectors.items()}, self.stages,
                                          limit=candidates, prefetch_limit=limits, filter=filter,
                                          search_params=search_params)
            requests.append(models.QueryRequest(
                prefetch=[
                    models.Prefetch(**dense_query),
                    models.Prefetch(query=models.SparseVector(indices=sparse.indices, values=sparse.values),
                                    using=self.sparse_name, limit=candidates, filter=filter),
                ],
                query=fusion_query,
                limit=limit,
                with_payload=with_payload,
                with_vector=with_vectors,
            ))
        started = time.perf_counter()
        responses = yield ("query_batch_points", {"collection_name": self.collection_name, "requests": requests})
        timings["query"] = time.perf_counter() - started
        return [response.points for response in responses]

    def _fusion_query(self) -> models.FusionQuery | models.RrfQuery:
        if self.fusion == "dbsf":
            return models.FusionQuery(fusion=models.Fusion.DBSF)
        if self.fusion_weights is None and self.rrf_k is None:
            # The plain form also works on servers older than parameterised RRF.
            return models.FusionQuery(fusion=models.Fusion.RRF)
        weights = list(self.fusion_weights) if self.fusion_weights is not None else None
        return models.RrfQuery(rrf=models.Rrf(k=self.rrf_k, weights=weights))

    def _client_rescore_plan(
        self, queries, vectors, limit, limits, filter, with_payload, with_vectors, search_params, timings,
    ) -> Generator[_Call, Any, list[list[models.ScoredPoint]]]:
        coarse = self.coarse.name
        requests = [
            models.QueryRequest(query=vectors[coarse][row].tolist(), using=coarse, limit=limits[0], filter=filter,
                                params=search_params, with_payload=False, with_vector=False)
            for row in range(len(queries))
        ]
        started = time.perf_counter()
        responses = yield ("query_batch_points", {"collection_name": self.collection_name, "requests": requests})
        timings["coarse"] = time.perf_counter() - started
        candidate_lists = [[point.id for point in response.points] for response in responses]
        unique_ids = list(dict.fromkeys(point_id for ids in candidate_lists for point_id in ids))
        later = [stage.name for stage in self.stages[1:]]
        if with_vectors is True:
            fetch_vectors: bool | list[str] = True
        else:
            fetch_vectors = list(dict.fromkeys([*later, *(with_vectors or [])]))
        started = time.perf_counter()
        stage_matrices = None
        if self.local and self.local_fast_path and not with_vectors:
            stage_matrices = yield (_local_vectors, {
                "client": self.client, "collection_name": self.collection_name,
                "point_ids": unique_ids, "names": later,
            })
        if stage_matrices is not None:
            timings["vectors"] = time.perf_counter() - started
            by_id: dict[Any, Any] = {}
            present = unique_ids
        else:
            records = []
            if unique_ids:
                # Vectors only: payloads are fetched for the final hits alone, not for every candidate.
                records = yield ("retrieve", {
                    "collection_name": self.collection_name, "ids": unique_ids,
                    "with_payload": False, "with_vectors": fetch_vectors,
                })
            timings["retrieve"] = time.perf_counter() - started
            by_id = {record.id: record for record in records}
            # A point deleted between the two calls is simply not a candidate any more.
            present = [point_id for point_id in unique_ids if point_id in by_id]
            stage_matrices = {
                name: _stack([by_id[point_id].vector[name] for point_id in present], stage.dim)
                for name, stage in zip(later, self.stages[1:])
            }
        started = time.perf_counter()
        row_of = {point_id: row for row, point_id in enumerate(present)}
        ranked = []
        for row, candidates in enumerate(candidate_lists):
            rows = np.array([row_of[point_id] for point_id in candidates if point_id in row_of], dtype=np.int64)
            scores = np.zeros(0, dtype=np.float32)
            for name, keep in zip(later, [*limits[1:], limit]):
                order, scores = _rescore(vectors[name][row], stage_matrices[name][rows], keep)
                rows = rows[order]
            ranked.append([(present[position], float(score)) for position, score in zip(rows, scores)])
        timings["rescore"] = time.perf_counter() - started
        payloads: dict[Any, Any] = {}
        if with_payload is not False:
            started = time.perf_counter()
            final_ids = list(dict.fromkeys(point_id for hits in ranked for point_id, _ in hits))
            if final_ids:
                payload_records = yield ("retrieve", {
                    "collection_name": self.collection_name, "ids": final_ids,
                    "with_payload": with_payload, "with_vectors": False,
                })
                payloads = {record.id: record.payload for record in payload_records}
            timings["payload"] = time.perf_counter() - started
        return [
            [
                models.ScoredPoint(
                    id=point_id, version=0, score=score, payload=payloads.get(point_id),
                    vector=self._select_vectors(by_id[point_id].vector, with_vectors) if with_vectors else None,
                )
                for point_id, score in hits
            ]
            for hits in ranked
        ]

    @staticmethod
    def _select_vectors(vector: Any, with_vectors: bool | Sequence[str]) -> Any:
        if with_vectors is False or with_vectors is None:
            return None
        if with_vectors is True:
            return vector
        return {name: vector[name] for name in with_vectors if name in vector}


def _run_sync(client: Any, plan: Generator[_Call, Any, Any]) -> Any:
    """Execute a plan's calls on a sync client, sending results (or exceptions) back in."""
    try:
        call = next(plan)
        while True:
            target, kwargs = call
            try:
                result = target(**kwargs) if callable(target) else getattr(client, target)(**kwargs)
            except Exception as error:  # handed to the plan, which decides what to raise
                call = plan.throw(error)
            else:
                call = plan.send(result)
    except StopIteration as stop:
        return stop.value


async def _run_async(client: Any, plan: Generator[_Call, Any, Any]) -> Any:
    """Execute a plan on an async client; CPU work (encoding) runs in a worker thread."""
    try:
        call = next(plan)
        while True:
            target, kwargs = call
            try:
                if callable(target):
                    result = await asyncio.to_thread(target, **kwargs)
                else:
                    result = await getattr(client, target)(**kwargs)
            except Exception as error:
                call = plan.throw(error)
            else:
                call = plan.send(result)
    except StopIteration as stop:
        return stop.value


class MatryoshkaIndex(_IndexCore):
    """SSE documents in a Qdrant collection with Matryoshka named vectors, searched two-stage.

    Example:
        >>> from qdrant_client import QdrantClient
        >>> index = MatryoshkaIndex(QdrantClient(":memory:"), "docs")
        >>> index.add_texts(["猫が窓のそばで眠っている。"], ids=["cat"])
        >>> index.search("窓際の猫", limit=3)[0].payload["doc_id"]
        'cat'
    """

    __init__ = _IndexCore.__init__

    def add_texts(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> list[DocId]:
        """Encode and upsert texts (creating the collection if needed); returns the document ids.

        Args:
            texts: documents.
            ids: caller ids (str, non-negative int or UUID); re-adding an id replaces that
                point. None gives random UUID strings.
            payloads: extra payload per document (may not use the text/id keys).
            batch_size: documents per encode + upsert (default: the index's).
            show_progress: progress bar (default: the index's setting).

        Raises:
            IndexingError: a batch failed; ``written_ids`` lists the documents stored before it.
        """
        return _run_sync(self.client, self._add_plan(texts, ids, payloads, batch_size, show_progress))

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
        mode: SearchMode = "dense",
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
        """
        check_text(query, "query")
        return self.search_batch([query], limit, prefetch_limit=prefetch_limit, filter=filter,
                                 with_payload=with_payload, with_vectors=with_vectors,
                                 search_params=search_params, two_stage=two_stage, mode=mode)[0]

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
        mode: SearchMode = "dense",
    ) -> list[list[models.ScoredPoint]]:
        """:meth:`search` for many queries: one encode, one batched request per stage."""
        plan = self._search_plan(self._query_texts(queries), limit, prefetch_limit, filter, with_payload,
                                 with_vectors, search_params, two_stage, mode)
        return _run_sync(self.client, plan)

    def delete(self, ids: Sequence[DocId]) -> None:
        """Delete documents by caller id (unknown ids are ignored)."""
        _run_sync(self.client, self._delete_plan(ids))

    def count(self, filter: models.Filter | None = None) -> int:
        """Exact number of points in the collection (matching ``filter``)."""
        return _run_sync(self.client, self._count_plan(filter))


class AsyncMatryoshkaIndex(_IndexCore):
    """:class:`MatryoshkaIndex` on an ``AsyncQdrantClient``: the same options, awaitable methods."""

    __init__ = _IndexCore.__init__
    _is_async = True

    async def add_texts(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None = None,
        payloads: Sequence[Mapping[str, Any] | None] | None = None,
        *,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> list[DocId]:
        """See :meth:`MatryoshkaIndex.add_texts`."""
        return await _run_async(self.client, self._add_plan(texts, ids, payloads, batch_size, show_progress))

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
        mode: SearchMode = "dense",
    ) -> list[models.ScoredPoint]:
        """See :meth:`MatryoshkaIndex.search`."""
        check_text(query, "query")
        results = await self.search_batch([query], limit, prefetch_limit=prefetch_limit, filter=filter,
                                          with_payload=with_payload, with_vectors=with_vectors,
                                          search_params=search_params, two_stage=two_stage, mode=mode)
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
        mode: SearchMode = "dense",
    ) -> list[list[models.ScoredPoint]]:
        """See :meth:`MatryoshkaIndex.search_batch`."""
        plan = self._search_plan(self._query_texts(queries), limit, prefetch_limit, filter, with_payload,
                                 with_vectors, search_params, two_stage, mode)
        return await _run_async(self.client, plan)

    async def delete(self, ids: Sequence[DocId]) -> None:
        """See :meth:`MatryoshkaIndex.delete`."""
        await _run_async(self.client, self._delete_plan(ids))

    async def count(self, filter: models.Filter | None = None) -> int:
        """See :meth:`MatryoshkaIndex.count`."""
        return await _run_async(self.client, self._count_plan(filter))


# --- reading an existing layout ---------------------------------------


def stages_from_collection(info: models.CollectionInfo) -> tuple[DenseStage, ...]:
    """The dense stages of an existing collection, narrowest first (to search it without repeating options)."""
    vectors = info.config.params.vectors
    if not isinstance(vectors, Mapping) or len(vectors) < 2:
        raise CollectionMismatchError(
            "the collection has no Matryoshka layout (at least two named dense vectors of different sizes)"
        )
    return tuple(DenseStage(name, params.size) for name, params in sorted(vectors.items(), key=lambda kv: kv[1].size))
