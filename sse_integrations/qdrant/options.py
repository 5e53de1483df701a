"""Every setting of a Matryoshka index but its client, collection and encoder, checked on creation."""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from qdrant_client import models

from .._checks import check_positive_int
from ..documents import ID_KEY, TEXT_KEY
from ..sparse import SparseEncoder
from .layout import COARSE_NAME, FULL_NAME, SPARSE_NAME, DenseStage, QuantizationOption
from .passages import PassageStage
from .points import ID_NAMESPACE
from .tenancy import check_tenant, declared_schemas

# Candidates kept by the first stage per requested hit: prefetch_limit = factor * limit.
# On the embedded engine with two-sentence documents (benchmarks/scale.py, docs/scale.md), the
# default 64-dim coarse stage at 500 candidates gave recall@10 against exact 512 of 0.968 / 0.946
# at 100k / 1M documents and needed 3,000 for 0.99 at 1M; coarse_dim=128 (int8 graph search)
# gave 0.993 / 0.987 at 500 (1,000: 0.996 / 0.993). The latency grows with the limit
# (the coarse HNSW search runs with ef >= the limit), so a larger default would slow every small
# collection to serve big ones, which can pass prefetch_limit (or hnsw_ef).
DEFAULT_PREFETCH_FACTOR = 50
# Candidates each branch of a hybrid search contributes to the fusion, per requested hit.
DEFAULT_FUSION_FACTOR = 5
DEFAULT_BATCH_SIZE = 256
# From this many texts an add_texts encodes in a helper process: its start (~0.3 s) is then
# small against the GIL contention it removes (100k documents: add 8.75 s -> 8.03 s, medians of
# 5 pairs, benchmarks/encode_process.py; 1M: 114 s -> 84 s, issue 14).
DEFAULT_ENCODE_PROCESS_FROM = 20_000
# How the coarse stage searches its quantized copies in a two-stage search: its candidates are
# not rescored with its own float vectors, since the next stage rescores them with wider ones.
COARSE_QUANTIZATION_SEARCH = models.QuantizationSearchParams(rescore=False)

Execution = Literal["auto", "prefetch", "client"]
Fusion = Literal["rrf", "dbsf"]


class OptionSetting:
    """An index attribute that reads the option of the same name: the options hold each value once."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, index: Any, owner: type | None = None) -> Any:
        if index is None:
            return self
        return getattr(index.options, self.name)


@dataclass(frozen=True)
class IndexOptions:
    """Settings of :class:`MatryoshkaIndex` / :class:`AsyncMatryoshkaIndex` (each also a keyword of theirs).

    Args:
        coarse_dim: width of the first-stage vector (a Matryoshka dim). None: an existing
            collection's own (so one made with another width opens without repeating it), else
            ``DEFAULT_COARSE_DIM`` (64). Beyond ~100k documents 128 keeps recall@10 >= 0.99
            with far fewer candidates; at 1M documents, with a denser graph
            (``collection_kwargs={"hnsw_config": HnswConfigDiff(m=48, ef_construct=200)}``) 150-200
            candidates kept 0.99 in 2-5 ms p50 (docs/scale.md).
        stages: all stages, coarsest first, as dims or ``DenseStage``s (overrides ``coarse_dim``).
        coarse_name, full_name: vector names of the first and last stage.
        quantization: "scalar" (the default: int8 copies of the coarse vector, searched by its
            graph; the next stage rescores the candidates, so the coarse float vectors are not
            read by a search), "binary", a Qdrant config, or None (float only). On the embedded
            engine int8 built the graph about 3x faster and searched it faster at the same
            recall (issue 14); qdrant-client's local mode stores the setting but searches the
            float vectors.
        prefetch_limit: default first-stage candidates (int, or one per stage but the last).
        prefetch_factor: with no ``prefetch_limit``, candidates = factor * limit.
        hnsw_ef: how many nodes the coarse stage's graph search keeps exploring (Qdrant's
            ``hnsw_ef``; the engine uses at least the prefetch limit). None leaves it to Qdrant. A
            call's ``search_params`` replace it.
        execution: "auto" or "prefetch" (one Query API request, every stage run by the engine:
            Qdrant Edge, a server, or qdrant-client's local mode), or "client" (the coarse query on
            the engine, later stages rescored here from ``retrieve``d vectors; for comparison).
        text_key, id_key: payload keys of the text and of the caller's document id.
        id_namespace: uuid5 namespace that maps string ids to point ids.
        batch_size: documents per encode + upsert in ``add_texts``.
        encode_process_from: ``add_texts`` calls with at least this many texts encode them in
            a helper process (started per call, about 0.3 s) while this one stores them; the
            vectors are the same. None: always in this process, in a worker thread.
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
        passages: True (or a configured :class:`PassageStage`) adds a multivector of each
            document's passages (MAX_SIM, no graph, on disk); every dense and hybrid search then
            rescores its candidates by ``(1 - weight) * whole-document cosine + weight * best
            passage cosine`` in the engine. False: an existing collection's own setting
            (a collection made with passages keeps them).
        allow_model_change: accept a collection another model wrote (its recorded fingerprint
            differs); the first add then records this model. Default: refused (``ModelMismatchError``).
        payload_indexes: payload fields to index, ``{"field": "keyword" | "integer" | "float" |
            "bool" | "datetime" | "uuid" | "geo" | "text"}`` or a qdrant ``*IndexParams``; created
            with the collection, and added when an index opens a collection that lacks them (Qdrant
            Cloud's strict mode refuses filters on fields without one). Recorded in the collection
            metadata (qdrant-client's local mode keeps no payload indexes: only the record).
        tenant_field: the payload field that names each point's tenant: a keyword index with
            ``is_tenant=True``; every write must carry it, and every read and delete takes
            ``tenant=`` and sees that tenant's points only (docs/tenancy.md). None: the
            collection's own, once opened (a collection made with one stays scoped).
        tenant: bind the index to one tenant: each call is for it, and a call for another is
            refused (``TenantError``). None: each call names its ``tenant=``.
        shard_key_selector: the custom shard key (or keys) of every request, for a Qdrant
            cluster made with ``sharding_method=CUSTOM``; a call's ``shard_key_selector=``
            replaces it. The embedded engine is one shard and refuses it.
    """

    coarse_dim: int | None = None
    stages: Sequence[int | DenseStage] | None = None
    coarse_name: str = COARSE_NAME
    full_name: str = FULL_NAME
    quantization: QuantizationOption = "scalar"
    prefetch_limit: int | Sequence[int] | None = None
    prefetch_factor: int = DEFAULT_PREFETCH_FACTOR
    hnsw_ef: int | None = None
    execution: Execution = "auto"
    text_key: str = TEXT_KEY
    id_key: str = ID_KEY
    id_namespace: uuid.UUID = ID_NAMESPACE
    batch_size: int = DEFAULT_BATCH_SIZE
    encode_process_from: int | None = DEFAULT_ENCODE_PROCESS_FROM
    show_progress: bool | None = None
    collection_kwargs: Mapping[str, Any] = field(default_factory=dict)
    sparse: bool | SparseEncoder = False
    sparse_name: str = SPARSE_NAME
    fusion: Fusion = "rrf"
    fusion_factor: int = DEFAULT_FUSION_FACTOR
    fusion_weights: tuple[float, float] | None = None
    rrf_k: int | None = None
    passages: bool | PassageStage = False
    allow_model_change: bool = False
    payload_indexes: Mapping[str, Any] = field(default_factory=dict)
    tenant_field: str | None = None
    tenant: str | None = None
    shard_key_selector: Any = None

    def __post_init__(self) -> None:
        if self.execution not in ("auto", "prefetch", "client"):
            raise ValueError(f"execution must be 'auto', 'prefetch' or 'client', got {self.execution!r}")
        if self.text_key == self.id_key:
            raise ValueError(f"text_key and id_key must differ, both are {self.text_key!r}")
        check_positive_int(self.batch_size, "batch_size")
        if self.encode_process_from is not None:
            check_positive_int(self.encode_process_from, "encode_process_from")
        check_positive_int(self.prefetch_factor, "prefetch_factor")
        if self.hnsw_ef is not None:
            check_positive_int(self.hnsw_ef, "hnsw_ef")
        # Normalised in place (the dataclass is frozen to everyone else): a copy the caller cannot change.
        object.__setattr__(self, "collection_kwargs", dict(self.collection_kwargs or {}))
        reserved = {"collection_name", "vectors_config", "sparse_vectors_config"} & self.collection_kwargs.keys()
        if reserved:
            raise ValueError(f"collection_kwargs may not set {sorted(reserved)}: the index builds them")
        self._check_fusion()
        self._check_tenancy()
        if not isinstance(self.passages, (bool, PassageStage)):
            raise TypeError(f"passages must be True, False or a PassageStage, got {type(self.passages).__name__}")
        if self.passages and self.execution == "client":
            raise ValueError(
                "passages are scored by the engine: use execution='auto' or 'prefetch' (execution='client' "
                "rescores here with the whole-document vectors alone)"
            )

    def _check_tenancy(self) -> None:
        object.__setattr__(self, "payload_indexes", dict(self.payload_indexes or {}))
        declared_schemas(self.payload_indexes, self.tenant_field)  # bad names or types fail now
        if self.tenant_field is not None and self.tenant_field in (self.text_key, self.id_key):
            raise ValueError(f"tenant_field {self.tenant_field!r} is a key the index fills itself")
        if self.tenant is not None:
            check_tenant(self.tenant)  # without tenant_field: the collection's own (refused where it has none)

    def _check_fusion(self) -> None:
        if self.fusion not in ("rrf", "dbsf"):
            raise ValueError(f"fusion must be 'rrf' or 'dbsf', got {self.fusion!r}")
        check_positive_int(self.fusion_factor, "fusion_factor")
        if self.fusion == "dbsf" and (self.fusion_weights is not None or self.rrf_k is not None):
            raise ValueError("fusion_weights and rrf_k apply to fusion='rrf' only (Qdrant's DBSF takes neither)")
        if self.fusion_weights is not None:
            try:
                weights = tuple(float(weight) for weight in self.fusion_weights)
            except (TypeError, ValueError):
                weights = ()
            if len(weights) != 2 or not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
                raise ValueError(
                    "fusion_weights must be two finite weights >= 0 (dense, sparse), not both 0; "
                    f"got {self.fusion_weights!r}"
                )
            object.__setattr__(self, "fusion_weights", weights)
        if self.rrf_k is not None:
            check_positive_int(self.rrf_k, "rrf_k")
