"""Translation between qdrant-client's models and Qdrant Edge's (``qdrant_edge``) types.

The index builds its requests, filters and points once, as qdrant-client models; the Edge
backend (:mod:`.edge`) turns them into Edge's own classes here and turns Edge's results back
into ``models.ScoredPoint`` / ``models.Record``, so callers see one result type everywhere.
Anything without an Edge counterpart raises ``TypeError`` naming it, never a silent drop.
"""

from __future__ import annotations

import array
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import qdrant_edge as edge
from qdrant_client import models

from .points import MultiVectors

# Qdrant's own default rank constant for RRF (the Query API uses it when k is not given).
DEFAULT_RRF_K = 2


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def point_id(value: Any) -> int | str:
    """An Edge point id as qdrant-client reports it: int, or the UUID as a string."""
    return str(value) if isinstance(value, uuid.UUID) else value


def edge_filter(flt: models.Filter | None) -> edge.Filter | None:
    if flt is None:
        return None
    min_should = None
    if flt.min_should is not None:
        min_should = edge.MinShould(
            conditions=[_condition(c) for c in flt.min_should.conditions], min_count=flt.min_should.min_count
        )
    return edge.Filter(
        must=[_condition(c) for c in _as_list(flt.must)] or None,
        should=[_condition(c) for c in _as_list(flt.should)] or None,
        must_not=[_condition(c) for c in _as_list(flt.must_not)] or None,
        min_should=min_should,
    )


def _match(match: Any) -> Any:
    if match is None:
        return None
    if isinstance(match, models.MatchValue):
        return edge.MatchValue(match.value)
    if isinstance(match, models.MatchText):
        return edge.MatchText(match.text)
    if isinstance(match, models.MatchAny):
        values: Any = list(match.any)
        return edge.MatchAny(values)
    if isinstance(match, models.MatchExcept):
        excluded: Any = list(match.except_)
        return edge.MatchExcept(excluded)
    if isinstance(match, models.MatchPhrase):
        return edge.MatchPhrase(match.phrase)
    if isinstance(match, models.MatchTextAny):
        return edge.MatchTextAny(match.text_any)
    raise TypeError(f"the embedded engine has no counterpart for filter match {type(match).__name__}")


def _range(rng: Any) -> Any:
    if rng is None:
        return None
    if isinstance(rng, models.DatetimeRange):
        parts = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in rng.model_dump().items()}
        return edge.RangeDateTime(**parts)
    return edge.RangeFloat(gte=rng.gte, gt=rng.gt, lte=rng.lte, lt=rng.lt)


def _condition(cond: Any) -> Any:
    if isinstance(cond, models.Filter):
        return edge_filter(cond)
    if isinstance(cond, models.FieldCondition):
        unsupported = [name for name in ("geo_bounding_box", "geo_radius", "geo_polygon") if getattr(cond, name)]
        if unsupported:
            raise TypeError(f"the embedded engine index does not translate {unsupported} filter conditions")
        values_count = None
        if cond.values_count is not None:
            values_count = edge.ValuesCount(**cond.values_count.model_dump())
        return edge.FieldCondition(
            key=cond.key,
            match=_match(cond.match),
            range=_range(cond.range),
            values_count=values_count,
            is_empty=cond.is_empty,
            is_null=cond.is_null,
        )
    if isinstance(cond, models.HasIdCondition):
        return edge.HasIdCondition({edge_id(i) for i in cond.has_id})
    if isinstance(cond, models.IsEmptyCondition):
        return edge.IsEmptyCondition(cond.is_empty.key)
    if isinstance(cond, models.IsNullCondition):
        return edge.IsNullCondition(cond.is_null.key)
    if isinstance(cond, models.HasVectorCondition):
        return edge.HasVectorCondition(cond.has_vector)
    if isinstance(cond, models.NestedCondition):
        nested = edge_filter(cond.nested.filter)
        assert nested is not None
        return edge.NestedCondition(cond.nested.key, nested)
    raise TypeError(f"the embedded engine has no counterpart for filter condition {type(cond).__name__}")


def edge_id(value: Any) -> Any:
    return uuid.UUID(value) if isinstance(value, str) else value


def _vector(value: Any) -> Any:
    """An Edge vector from a dense one (list, array, sequence) or a sparse one (``indices`` + ``values``)."""
    if isinstance(value, (list, array.array)):
        return value  # already dense floats, e.g. one row of dense_rows()
    if isinstance(value, np.ndarray):
        return value.astype(np.float32).tolist()
    if hasattr(value, "indices"):  # models.SparseVector, or sparse.SparseVector straight from the encoder
        # The engine reads numbers from lists as they are (ints as floats); copy other sequences.
        indices, values = value.indices, value.values
        return edge.SparseVector(
            indices if isinstance(indices, list) else list(indices),
            values if isinstance(values, list) else [float(v) for v in values],
        )
    return list(value)


def _scoring(query: Any, using: str | None) -> Any:
    """The scoring part of a request: nearest on a named vector, or RRF / DBSF of the prefetches."""
    if query is None:
        return None
    if isinstance(query, models.NearestQuery):
        query = query.nearest
    if isinstance(query, models.FusionQuery):
        if query.fusion == models.Fusion.DBSF:
            return edge.Fusion.Dbsf()
        return edge.Fusion.Rrf(k=DEFAULT_RRF_K)
    if isinstance(query, models.RrfQuery):
        rrf = query.rrf
        weights = [float(w) for w in rrf.weights] if rrf.weights is not None else None
        return edge.Fusion.Rrf(k=rrf.k if rrf.k is not None else DEFAULT_RRF_K, weights=weights)
    if isinstance(query, models.FormulaQuery):
        if query.defaults:
            raise TypeError("the embedded engine index does not translate formula defaults")
        return edge.Formula(_expression(query.formula))
    if isinstance(query, (models.SparseVector, np.ndarray, list, tuple)):
        return edge.Query.Nearest(_vector(query), using=using)
    raise TypeError(f"the embedded engine index does not translate query {type(query).__name__}")


def _expression(expression: Any) -> Any:
    """A score formula's expression tree: sums and products of constants and variables (``$score[i]``)."""
    if isinstance(expression, bool):
        raise TypeError("a formula constant must be a number, got a bool")
    if isinstance(expression, (int, float)):
        return edge.Expression.Constant(float(expression))
    if isinstance(expression, str):
        return edge.Expression.Variable(expression)
    if isinstance(expression, models.SumExpression):
        return edge.Expression.Sum([_expression(part) for part in expression.sum])
    if isinstance(expression, models.MultExpression):
        return edge.Expression.Mult([_expression(part) for part in expression.mult])
    raise TypeError(f"the embedded engine index does not translate formula expression {type(expression).__name__}")


def _params(params: models.SearchParams | None) -> edge.SearchParams | None:
    if params is None:
        return None
    quantization = None
    if params.quantization is not None:
        q = params.quantization
        quantization = edge.QuantizationSearchParams(
            ignore=bool(q.ignore), rescore=q.rescore, oversampling=q.oversampling
        )
    return edge.SearchParams(
        hnsw_ef=params.hnsw_ef,
        exact=bool(params.exact),
        quantization=quantization,
        indexed_only=bool(params.indexed_only),
    )


def _prefetches(prefetch: Any) -> list[edge.Prefetch] | None:
    if prefetch is None:
        return None
    return [
        edge.Prefetch(
            limit=p.limit if p.limit is not None else 10,
            query=_scoring(p.query, p.using),
            prefetches=_prefetches(p.prefetch),
            params=_params(p.params),
            filter=edge_filter(p.filter),
            score_threshold=p.score_threshold,
        )
        for p in _as_list(prefetch)
    ]


def _with(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    raise TypeError(f"the embedded engine takes True/False or a list of names, got {type(value).__name__}")


def edge_request(request: models.QueryRequest) -> edge.QueryRequest:
    """An Edge ``QueryRequest`` that runs the same plan (prefetch -> rescore, fusion) as the Query API."""
    return edge.QueryRequest(
        limit=request.limit if request.limit is not None else 10,
        offset=request.offset,
        query=_scoring(request.query, request.using),
        prefetches=_prefetches(request.prefetch),
        with_vector=_with(request.with_vector),
        with_payload=_with(request.with_payload),
        filter=edge_filter(request.filter),
        score_threshold=request.score_threshold,
        params=_params(request.params),
    )


def edge_point(point: models.PointStruct) -> edge.Point:
    vectors = point.vector
    if not isinstance(vectors, Mapping):
        raise TypeError("the embedded engine index stores named vectors only")
    return edge.Point(
        edge_id(point.id), {name: _vector(value) for name, value in vectors.items()}, dict(point.payload or {})
    )


def dense_rows(matrix: np.ndarray) -> list[array.array]:
    """The rows of a dense matrix as float32 ``array.array``s, for :func:`edge_points`.

    The engine reads a vector from any sequence of floats. Slicing rows out of one array.array
    of the whole matrix keeps the float32 values as they are and cost less than half of
    ``tolist()`` into Python float lists that the engine then reads (100,000 vectors of
    64 + 512 dims: 3.0 s against 7.0 s, issue 14).
    """
    rows = np.ascontiguousarray(matrix, dtype=np.float32)
    flat = array.array("f")
    flat.frombytes(rows.tobytes())
    width = rows.shape[1]
    return [flat[start : start + width] for start in range(0, len(flat), width)]


def edge_points(
    point_ids: Sequence[int | str],
    vectors: Mapping[str, np.ndarray | Sequence[Any]],
    payloads: Sequence[dict[str, Any]],
) -> list[edge.Point]:
    """Edge points straight from the index's per-document vectors, without a ``PointStruct`` in between.

    ``vectors`` maps each name to a dense (points, dim) matrix or to one entry per point: a
    float list (dense) or anything with ``indices`` and ``values`` (sparse). Building
    ``PointStruct``s first and translating them cost more than the engine's own upsert in a
    profile of ``add_texts`` (issue 14).
    """
    vectors = {name: _per_point(rows) for name, rows in vectors.items()}
    return [
        edge.Point(
            edge_id(point_id),
            {name: _vector(rows[row]) for name, rows in vectors.items()},
            payloads[row],
        )
        for row, point_id in enumerate(point_ids)
    ]


def _per_point(rows: Any) -> Any:
    """One named vector's entries per point: rows of a dense matrix, each point's passage rows, or as given."""
    if isinstance(rows, np.ndarray):
        return dense_rows(rows)
    if isinstance(rows, MultiVectors):
        return rows.split(dense_rows(rows.matrix))
    return rows


def _vectors_out(vector: Any) -> Any:
    if vector is None:
        return None
    if isinstance(vector, Mapping):
        return {name: _vectors_out(value) for name, value in vector.items()}
    if isinstance(vector, edge.SparseVector):
        return models.SparseVector(indices=list(vector.indices), values=list(vector.values))
    if len(vector) and not isinstance(vector[0], (int, float)):
        return [list(row) for row in vector]  # a multivector
    return list(vector)


def scored_point(point: edge.ScoredPoint) -> models.ScoredPoint:
    return models.ScoredPoint(
        id=point_id(point.id),
        version=point.version,
        score=point.score,
        payload=point.payload,
        vector=_vectors_out(point.vector),
    )


def record(point: edge.Record) -> models.Record:
    return models.Record(id=point_id(point.id), payload=point.payload, vector=_vectors_out(point.vector))


def _quantization(config: Any) -> Any:
    if config is None:
        return None
    if isinstance(config, models.ScalarQuantization):
        scalar = config.scalar
        return edge.ScalarQuantizationConfig(
            edge.ScalarType.Int8, quantile=scalar.quantile, always_ram=scalar.always_ram
        )
    if isinstance(config, models.BinaryQuantization):
        return edge.BinaryQuantizationConfig(always_ram=config.binary.always_ram)
    if isinstance(config, models.ProductQuantization):
        ratio = getattr(edge.CompressionRatio, str(config.product.compression.value).upper())
        return edge.ProductQuantizationConfig(ratio, always_ram=config.product.always_ram)
    raise TypeError(f"the embedded engine index does not translate quantization {type(config).__name__}")


def hnsw(config: models.HnswConfigDiff | None) -> edge.HnswIndexConfig | None:
    """Qdrant's HNSW defaults with the caller's overrides (m=0 leaves a vector without a graph)."""
    if config is None:
        return None
    return edge.HnswIndexConfig(
        m=config.m if config.m is not None else 16,
        ef_construct=config.ef_construct if config.ef_construct is not None else 100,
        full_scan_threshold=config.full_scan_threshold if config.full_scan_threshold is not None else 10_000,
        max_indexing_threads=config.max_indexing_threads or 0,
        on_disk=config.on_disk,
        payload_m=config.payload_m,
    )


# OptimizersConfigDiff fields the embedded engine has no setting for.
_SERVER_ONLY_OPTIMIZER_FIELDS = ("memmap_threshold", "flush_interval_sec", "max_optimization_threads")


def optimizers(config: models.OptimizersConfigDiff | Mapping[str, Any] | None) -> edge.EdgeOptimizersConfig | None:
    """The engine's optimizer settings from a ``create_collection(optimizers_config=...)`` value."""
    if config is None:
        return None
    config = models.OptimizersConfigDiff.model_validate(config)
    unsupported = [name for name in _SERVER_ONLY_OPTIMIZER_FIELDS if getattr(config, name) is not None]
    if unsupported:
        raise ValueError(
            f"the embedded engine has no optimizer setting {', '.join(unsupported)} "
            "(it optimizes when optimize() is called); leave it unset"
        )
    return edge.EdgeOptimizersConfig(
        deleted_threshold=config.deleted_threshold,
        vacuum_min_vector_number=config.vacuum_min_vector_number,
        default_segment_number=config.default_segment_number,
        max_segment_size=config.max_segment_size,
        indexing_threshold=config.indexing_threshold,
        prevent_unoptimized=config.prevent_unoptimized,
    )


def vector_params(params: models.VectorParams) -> edge.EdgeVectorParams:
    if params.distance != models.Distance.COSINE:
        raise ValueError(f"the embedded engine index uses cosine vectors, got {params.distance}")
    return edge.EdgeVectorParams(
        size=params.size,
        distance=edge.Distance.Cosine,
        on_disk=params.on_disk,
        quantization_config=_quantization(params.quantization_config),
        hnsw_config=hnsw(params.hnsw_config),
        multivector_config=_multivector(params.multivector_config),
    )


def _multivector(config: models.MultiVectorConfig | None) -> edge.MultiVectorConfig | None:
    if config is None:
        return None
    if config.comparator != models.MultiVectorComparator.MAX_SIM:
        raise ValueError(f"the embedded engine compares multivectors by MAX_SIM only, got {config.comparator}")
    return edge.MultiVectorConfig(edge.MultiVectorComparator.MaxSim)


def sparse_params(params: models.SparseVectorParams) -> edge.EdgeSparseVectorParams:
    modifier = edge.Modifier.Idf if params.modifier == models.Modifier.IDF else None
    return edge.EdgeSparseVectorParams(modifier=modifier)


# Each qdrant-client index type's Edge counterpart, and the parameters both sides have.
_SCHEMA_TYPES = {
    "keyword": ("Keyword", "KeywordIndexParams", ("is_tenant", "on_disk")),
    "integer": ("Integer", "IntegerIndexParams", ("lookup", "range", "is_principal", "on_disk")),
    "float": ("Float", "FloatIndexParams", ("is_principal", "on_disk")),
    "geo": ("Geo", "GeoIndexParams", ("on_disk",)),
    "text": ("Text", "TextIndexParams", ("min_token_len", "max_token_len", "lowercase", "on_disk")),
    "bool": ("Bool", "BoolIndexParams", ("on_disk",)),
    "datetime": ("Datetime", "DatetimeIndexParams", ("is_principal", "on_disk")),
    "uuid": ("Uuid", "UuidIndexParams", ("is_tenant", "on_disk")),
}


def field_schema(schema: Any) -> Any:
    """An Edge field-index schema from a qdrant-client ``PayloadSchemaType`` or ``*IndexParams``."""
    if isinstance(schema, models.PayloadSchemaType):
        return getattr(edge.PayloadSchemaType, _SCHEMA_TYPES[schema.value][0])
    kind = str(getattr(getattr(schema, "type", None), "value", getattr(schema, "type", None)))
    if kind not in _SCHEMA_TYPES:
        raise TypeError(f"the embedded engine has no payload index for {type(schema).__name__}")
    _, params_class, names = _SCHEMA_TYPES[kind]
    given = schema.model_dump(exclude_none=True, exclude={"type"})
    unsupported = sorted(set(given) - set(names))
    if unsupported:
        raise TypeError(f"the embedded engine index does not translate {kind} index parameters {unsupported}")
    return getattr(edge, params_class)(**given)


def payload_index_info(info: Any) -> models.PayloadIndexInfo:
    """An Edge field index as qdrant-client reports one (``is_tenant`` kept, other parameters left out)."""
    kind = next(
        k
        for k, (edge_name, _, _) in _SCHEMA_TYPES.items()
        if info.data_type == getattr(edge.PayloadSchemaType, edge_name)
    )
    params = None
    if kind in ("keyword", "uuid") and info.params is not None and info.params.is_tenant:
        params_class = models.KeywordIndexParams if kind == "keyword" else models.UuidIndexParams
        params = params_class(type=kind, is_tenant=True)
    return models.PayloadIndexInfo(data_type=models.PayloadSchemaType(kind), params=params, points=info.points)
