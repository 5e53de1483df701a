"""The client-independent part of a Matryoshka index: its settings, checks and write plans.

A plan is a generator that yields client calls as ``(method name or callable, keyword
arguments)`` and receives each call's result (or its exception); :mod:`.index` runs plans on a
sync or an async client, so the logic exists once for both.
"""

from __future__ import annotations

import inspect
import os
import threading
import uuid
import weakref
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from qdrant_client import models

from .._checks import as_text_list, check_payload_text, check_positive_int
from ..encoder import SSEEncoder
from ..sparse import SparseEncoder
from . import plans, records
from .backends import AnyClient, Backend, backend_of
from .layout import (
    DEFAULT_COARSE_DIM,
    SPARSE_METADATA_KEY,
    CollectionMismatchError,
    DenseStage,
    layout_differences,
    make_stages,
    stored_coarse_dim,
    vectors_config,
)
from .lookahead import EncodeAhead, progress_bar, stage_encoder
from .model_record import MODEL_METADATA_KEY, check_model, model_record, record_model_plan
from .options import COARSE_QUANTIZATION_SEARCH, IndexOptions, OptionSetting
from .passages import (
    PASSAGES_METADATA_KEY,
    PassageStage,
    check_passage_name,
    passage_stage,
    passage_vector_params,
    stored_passage_stage,
)
from .plans import SearchRequest, prefetch_limits
from .points import DocId, build_points, encode_stages, named_point_id, point_payloads, to_point_id
from .runner import Call


class IndexingError(RuntimeError):
    """A batch failed while adding texts; ``written_ids`` were stored before it, ``failed_ids`` were not."""

    def __init__(self, message: str, written_ids: list[DocId], failed_ids: list[DocId]) -> None:
        super().__init__(message)
        self.written_ids = written_ids
        self.failed_ids = failed_ids


class PerClientLocks:
    """One ``RLock`` per client object, made on first use and dropped with the client."""

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[object, threading.RLock] = weakref.WeakKeyDictionary()
        self._guard = threading.Lock()

    def get(self, client: object) -> threading.RLock:
        with self._guard:
            try:
                return self._locks.setdefault(client, threading.RLock())
            except TypeError:  # not weak-referenceable: a lock for this index alone
                return threading.RLock()


# qdrant-client's local mode is not safe under concurrent writers: one write lock per client object.
WRITE_LOCKS = PerClientLocks()


class IndexCore:
    """Settings, checks and plans shared by :class:`MatryoshkaIndex` and :class:`AsyncMatryoshkaIndex`."""

    is_async = False
    client: AnyClient  # a backends.Client, or a backends.AsyncClient for the async index

    prefetch_limit = OptionSetting()
    prefetch_factor = OptionSetting()
    hnsw_ef = OptionSetting()
    execution = OptionSetting()
    text_key = OptionSetting()
    id_key = OptionSetting()
    id_namespace = OptionSetting()
    batch_size = OptionSetting()
    encode_process_from = OptionSetting()
    show_progress = OptionSetting()
    collection_kwargs = OptionSetting()
    sparse_name = OptionSetting()
    fusion = OptionSetting()
    fusion_factor = OptionSetting()
    fusion_weights = OptionSetting()
    rrf_k = OptionSetting()

    def __init__(
        self,
        client: AnyClient | str | os.PathLike[str],
        collection_name: str,
        encoder: SSEEncoder | str | os.PathLike | None = None,
        *,
        options: IndexOptions | None = None,
        **settings: Any,
    ) -> None:
        """
        Args:
            client: a ``QdrantClient`` or ``AsyncQdrantClient`` (local mode, server or cloud), or
                a folder path: the collection is then an embedded Qdrant Edge shard at
                ``PATH/collection_name`` (created or reopened; ``close()`` releases it).
            collection_name: created on the first ``add_texts`` if missing.
            encoder: an ``SSEEncoder``, a model folder / hub id, or None for the bundled model.
            options: an :class:`IndexOptions` (defaults when None).
            settings: any field of :class:`IndexOptions` (``coarse_dim``, ``stages``,
                ``prefetch_limit``, ``sparse``, ``fusion``, ...); each overrides ``options``.
        """
        if not isinstance(collection_name, str) or not collection_name:
            raise ValueError(f"collection_name must be a non-empty str, got {collection_name!r}")
        self.options = replace(options, **settings) if options is not None else IndexOptions(**settings)
        #: True when the index opened the engine itself (a folder path): then ``close()`` closes it.
        self.owns_client = isinstance(client, (str, os.PathLike))
        if isinstance(client, (str, os.PathLike)):
            from .edge import AsyncEdgeClient, EdgeClient

            client = AsyncEdgeClient(client) if self.is_async else EdgeClient(client)
        if inspect.iscoroutinefunction(getattr(client, "upsert", None)) != self.is_async:
            wanted, other = ("AsyncMatryoshkaIndex", "an async") if not self.is_async else ("MatryoshkaIndex", "a sync")
            raise TypeError(f"{type(client).__name__} is {other} client: use {wanted} with it")
        self.client = client
        self.collection_name = collection_name
        self.encoder = encoder if isinstance(encoder, SSEEncoder) else SSEEncoder.from_pretrained(encoder)
        self.stages = self._make_stages(self.options.coarse_dim or DEFAULT_COARSE_DIM)
        o = self.options
        if o.prefetch_limit is not None:
            prefetch_limits(len(self.stages), 1, o.prefetch_limit)  # validate early
        self._check_collection_kwargs()
        if isinstance(o.sparse, SparseEncoder):
            self.sparse_encoder: SparseEncoder | None = o.sparse
        else:
            self.sparse_encoder = SparseEncoder(self.encoder.tokenizer) if o.sparse else None
        if o.sparse_name in {stage.name for stage in self.stages}:
            raise ValueError(f"sparse_name {o.sparse_name!r} is also a dense vector name")
        #: The passage multivector, or None (a collection made with passages sets it when opened).
        self.passages: PassageStage | None = passage_stage(o.passages, self.encoder.full_dim)
        if self.passages is not None:
            check_passage_name(self.passages, [*(stage.name for stage in self.stages), self.sparse_name])
        #: "embedded" (Qdrant Edge: flush/optimize are the caller's to run), "local" (qdrant-client's
        #: local mode: exact float scans, warns about search parameters, so the index sends none) or "server".
        self.backend: Backend = backend_of(client)
        self.embedded = self.backend == "embedded"
        self.local_mode = self.backend == "local"
        #: Serialises this index's writes with every other index's on the same client object.
        self.write_lock = WRITE_LOCKS.get(client)
        self._collection_checked = False
        self._model_record_stale = False
        #: Documents and BM25 terms added so far (the average document length's running sums).
        self.sparse_stats: dict[str, float] | None = None
        #: Seconds spent in each step of the last search (encode, coarse, rescore or query).
        self.last_timings: dict[str, float] = {}

    # configuration ---------------------------------------------------------------------------

    def _make_stages(self, coarse_dim: int) -> tuple[DenseStage, ...]:
        o = self.options
        return make_stages(
            self.encoder.full_dim,
            coarse_dim,
            stages=o.stages,
            coarse_name=o.coarse_name,
            full_name=o.full_name,
            quantization=o.quantization,
        )

    def _follow_stored_coarse_dim(self, info: models.CollectionInfo) -> None:
        """Without an explicit ``coarse_dim`` or ``stages``, take the coarse width the collection was made with."""
        if self.options.coarse_dim is None and self.options.stages is None:
            stored = stored_coarse_dim(info, self.coarse, self.full)
            if stored is not None:
                self.stages = self._make_stages(stored)

    @property
    def coarse(self) -> DenseStage:
        return self.stages[0]

    @property
    def full(self) -> DenseStage:
        return self.stages[-1]

    def vectors_config(self) -> dict[str, models.VectorParams]:
        """The dense vectors of the collection: the stages, and the passage multivector if any."""
        config = vectors_config(self.stages)
        if self.passages is not None:
            config[self.passages.name] = passage_vector_params(self.passages)
        return config

    def sparse_vectors_config(self) -> dict[str, models.SparseVectorParams]:
        """Sparse vectors of the collection: the BM25 vector (IDF by Qdrant) when ``sparse`` is on."""
        if self.sparse_encoder is None:
            return {}
        return {self.sparse_name: models.SparseVectorParams(modifier=models.Modifier.IDF)}

    def _check_collection_kwargs(self) -> None:
        # A typo would otherwise travel through the client's **kwargs and be ignored silently.
        method = getattr(type(self.client), "create_collection", None) or self.client.create_collection
        parameters = inspect.signature(method).parameters
        known = {name for name, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
        unknown = sorted(self.collection_kwargs.keys() - known)
        if unknown and known - {"self"}:
            raise TypeError(f"create_collection() has no parameter(s) {unknown}")

    def uses_prefetch(self) -> bool:
        """True when searches send one nested-prefetch request, False when they rescore here."""
        return self.execution != "client"

    _uses_prefetch = uses_prefetch  # the name before the split, kept for callers that used it

    def prefetch_limit_for(self, limit: int, prefetch_limit: int | Sequence[int] | None) -> int | Sequence[int]:
        """The call's prefetch limit, else the index's, else ``prefetch_factor * limit``."""
        if prefetch_limit is None:
            prefetch_limit = self.prefetch_limit
        return self.prefetch_factor * limit if prefetch_limit is None else prefetch_limit

    def coarse_search_params(self, search_params: models.SearchParams | None) -> models.SearchParams | None:
        """The coarse stage's search parameters: the caller's, else the index's ``hnsw_ef`` (None: Qdrant's).

        Unless they set ``quantization``, the coarse candidates found on the quantized copies are
        not rescored with the coarse float vectors (``rescore=False``): the next stage rescores
        them with wider vectors anyway, and reading the coarse floats more than doubled a
        two-stage search at 1M documents (300 candidates: 13.9 vs 5.9 ms p50, same recall).
        Vectors without quantization ignore it; on qdrant-client's local mode (exact float
        scans) only the caller's parameters are sent.
        """
        params = search_params
        if params is None and self.hnsw_ef is not None:
            params = models.SearchParams(hnsw_ef=self.hnsw_ef)
        if self.local_mode or (params is not None and params.quantization is not None):
            return params
        return (params or models.SearchParams()).model_copy(update={"quantization": COARSE_QUANTIZATION_SEARCH})

    def encode_queries(self, queries: list[str]) -> dict[str, np.ndarray]:
        return encode_stages(self.encoder, queries, self.stages, passages=self.passages)

    # input checks ----------------------------------------------------------------------------

    def _check_inputs(
        self, texts: Sequence[str], ids: Sequence[DocId] | None, payloads: Sequence[Mapping[str, Any] | None] | None
    ) -> tuple[list[str], list[DocId], list[Mapping[str, Any] | None] | None]:
        texts = as_text_list(texts, hint="wrap it: add_texts([text])")
        doc_ids: list[DocId] = [str(uuid.uuid4()) for _ in texts] if ids is None else self._check_ids(ids, len(texts))
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
                check_payload_text(payload, f"payloads[{index}]")
        return texts, doc_ids, payloads

    def _check_ids(self, ids: Sequence[DocId], text_count: int) -> list[DocId]:
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a list, got a bare string")
        # numpy ints (ids from an array) would not serialise into the payload.
        doc_ids: list[DocId] = [int(i) if isinstance(i, np.integer) else i for i in ids]
        if len(doc_ids) != text_count:
            raise ValueError(f"got {text_count} texts but {len(doc_ids)} ids")
        seen: dict[int | str, int] = {}
        for index, doc_id in enumerate(doc_ids):
            point_id = named_point_id(doc_id, self.id_namespace, f"ids[{index}]")
            if point_id in seen:
                raise ValueError(f"ids[{index}] repeats ids[{seen[point_id]}] ({doc_id!r}): one text per id")
            seen[point_id] = index
        return doc_ids

    def _query_texts(self, queries: Sequence[str]) -> list[str]:
        return as_text_list(queries, name="queries", hint="use search(query)")

    # plans -----------------------------------------------------------------------------------

    def ensure_collection_plan(self, create: bool, texts: Sequence[str] = ()) -> Generator[Call, Any, None]:
        """Create the collection, or check an existing one; ``texts`` fit a new sparse encoder."""
        name = self.collection_name
        if not self._collection_checked:
            exists = yield ("collection_exists", {"collection_name": name})
            if not exists:
                if not create:
                    raise ValueError(f"collection {name!r} does not exist: add texts first")
                yield ("create_collection", {"collection_name": name, **self._new_collection_settings(texts)})
            else:
                info = yield ("get_collection", {"collection_name": name})
                self._adopt_collection(info)
            self._collection_checked = True
        if create and self._model_record_stale:  # a deliberate migration: the first write records the new model
            self._model_record_stale = yield from record_model_plan(name, self.encoder)

    def _new_collection_settings(self, texts: Sequence[str]) -> dict[str, Any]:
        sparse_settings: dict[str, Any] = {}
        if self.sparse_encoder is not None:
            if self.sparse_encoder.avg_doc_length is None:
                self.sparse_encoder.fit(texts)
            # The running statistics start empty: the add plan counts every document it writes.
            self.sparse_stats = {"doc_count": 0, "term_count": 0}
            sparse_settings = {
                "sparse_vectors_config": self.sparse_vectors_config(),
                "metadata": {SPARSE_METADATA_KEY: {**self.sparse_encoder.get_config(), **self.sparse_stats}},
            }
        metadata = {**self.collection_kwargs.get("metadata", {}), MODEL_METADATA_KEY: model_record(self.encoder)}
        metadata.update(sparse_settings.pop("metadata", {}))
        if self.passages is not None:
            metadata[PASSAGES_METADATA_KEY] = self.passages.layout()
        return {
            "vectors_config": self.vectors_config(),
            **sparse_settings,
            **self.collection_kwargs,
            "metadata": metadata,
        }

    def _adopt_collection(self, info: models.CollectionInfo) -> None:
        """Refuse a collection of another layout; a sparse index takes the stored BM25 settings."""
        name = self.collection_name
        metadata = getattr(info.config, "metadata", None) or {}
        self._model_record_stale = check_model(metadata, self.encoder, name, self.options.allow_model_change)
        stored = metadata.get(SPARSE_METADATA_KEY)
        existing_sparse = info.config.params.sparse_vectors or {}
        if self.sparse_encoder is None and stored is not None and self.sparse_name in existing_sparse:
            # The collection was made with sparse=True: follow its layout, as the CLI's search does.
            self.sparse_encoder = SparseEncoder.from_config(stored, tokenizer=self.encoder.tokenizer)
        self._follow_stored_coarse_dim(info)
        self._adopt_passages(info)
        problems = layout_differences(info, self.vectors_config(), self.sparse_vectors_config())
        if problems:
            raise CollectionMismatchError(f"collection {name!r} does not match this index: " + "; ".join(problems))
        if self.sparse_encoder is not None:
            if stored is None:
                raise CollectionMismatchError(
                    f"collection {name!r} has no {SPARSE_METADATA_KEY!r} metadata: it was not made by a sparse index"
                )
            self.sparse_encoder = SparseEncoder.from_config(stored, tokenizer=self.encoder.tokenizer)
            counts = {key: stored[key] for key in ("doc_count", "term_count") if key in stored}
            self.sparse_stats = counts if len(counts) == 2 else None

    def _adopt_passages(self, info: models.CollectionInfo) -> None:
        stored = stored_passage_stage(
            info, self.options.passages, self.passages, self.encoder.full_dim, self.collection_name
        )
        if stored is not None:
            check_passage_name(stored, [*(stage.name for stage in self.stages), self.sparse_name])
            self.passages = stored

    def term_lengths(self, texts: Sequence[str]) -> list[int]:
        """BM25 term counts of ``texts`` (the lengths its average document length is made of)."""
        assert self.sparse_encoder is not None
        return self.sparse_encoder.term_counts(texts)

    def _sparse_stats_plan(self, texts: Sequence[str]) -> Generator[Call, Any, None]:
        """Keep BM25's average document length that of every document added so far, stored in the collection.

        Documents keep the weights they were written with; re-added ids count again (the average
        is a running one, not a scan of the collection).
        """
        encoder = self.sparse_encoder
        if encoder is None or not texts:
            return
        lengths = yield (self.term_lengths, {"texts": texts})
        stats = self.sparse_stats
        if stats is None:  # made before the running statistics: start from its points and stored average
            counted = yield ("count", {"collection_name": self.collection_name, "exact": True})
            stats = {"doc_count": counted.count, "term_count": (encoder.avg_doc_length or 1.0) * counted.count}
        stats = {"doc_count": stats["doc_count"] + len(lengths), "term_count": stats["term_count"] + sum(lengths)}
        encoder.avg_doc_length = stats["term_count"] / stats["doc_count"] if stats["term_count"] else 1.0
        self.sparse_stats = stats
        metadata = {SPARSE_METADATA_KEY: {**encoder.get_config(), **stats}}
        yield ("update_collection", {"collection_name": self.collection_name, "metadata": metadata})

    def point_ids(self, ids: Iterable[DocId]) -> list[int | str]:
        """Point ids of caller ids given as a list (a bare string would read as one id per character)."""
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a list, got a bare string")
        return [named_point_id(doc_id, self.id_namespace, f"ids[{index}]") for index, doc_id in enumerate(ids)]

    def _make_points(
        self,
        texts: list[str],
        doc_ids: list[DocId],
        payloads: list[Mapping[str, Any] | None] | None,
        vectors: dict[str, Any],
    ) -> list[Any]:
        """One batch's points: ``PointStruct``s for a qdrant-client, Edge points for the embedded engine."""
        if not self.embedded:
            keys = {"text_key": self.text_key, "id_key": self.id_key}
            return build_points(doc_ids, texts, vectors, payloads, namespace=self.id_namespace, **keys)
        from .edge_models import edge_points  # built for the engine directly: no PointStruct in between

        stored = point_payloads(doc_ids, texts, payloads, text_key=self.text_key, id_key=self.id_key)
        return edge_points([to_point_id(doc_id, self.id_namespace) for doc_id in doc_ids], vectors, stored)

    def _add_plan(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None,
        payloads: Sequence[Mapping[str, Any] | None] | None,
        batch_size: int | None,
        show_progress: bool | None,
    ) -> Generator[Call, Any, list[DocId]]:
        texts, doc_ids, payloads = self._check_inputs(texts, ids, payloads)
        batch_size = batch_size or self.batch_size
        check_positive_int(batch_size, "batch_size")
        if not texts:
            return []
        yield from self.ensure_collection_plan(create=True, texts=texts)
        yield from self._sparse_stats_plan(texts)
        starts = range(0, len(texts), batch_size)
        written: list[DocId] = []
        batches = [texts[start : start + batch_size] for start in starts]
        show = self.show_progress if show_progress is None else show_progress
        bar_context = progress_bar(f"Indexing {self.collection_name}", len(texts), len(starts), show)
        sparse = (self.sparse_encoder, self.sparse_name) if self.sparse_encoder is not None else None
        with (
            stage_encoder(
                self.encoder,
                self.stages,
                sparse,
                passages=self.passages,
                texts=len(texts),
                process_from=self.encode_process_from,
            ) as encode_batch,
            EncodeAhead(encode_batch, batches) as encoded,
            bar_context as bar,
        ):
            for start in starts:
                stop = start + batch_size
                batch_ids = doc_ids[start:stop]
                try:
                    vectors = yield (encoded.next, {})
                    points = yield (
                        self._make_points,
                        {
                            "texts": texts[start:stop],
                            "doc_ids": batch_ids,
                            "payloads": payloads[start:stop] if payloads is not None else None,
                            "vectors": vectors,
                        },
                    )
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
        return doc_ids

    def _maintenance_plan(self, method: Literal["flush", "optimize"]) -> Generator[Call, Any, bool]:
        """``flush`` or ``optimize`` on the embedded engine; a server persists and optimizes on its own."""
        if not self.embedded:
            return False
        return bool((yield (method, {"collection_name": self.collection_name})))

    def _close_plan(self) -> Generator[Call, Any, None]:
        if self.owns_client:
            yield ("close", {})

    def _delete_plan(self, ids: Sequence[DocId]) -> Generator[Call, Any, None]:
        point_ids = self.point_ids(ids)
        if point_ids:
            yield from records.forget_terms_plan(self, point_ids=point_ids)
            yield (
                "delete",
                {
                    "collection_name": self.collection_name,
                    "points_selector": models.PointIdsList(points=point_ids),
                    "wait": True,
                },
            )

    def _count_plan(self, filter: models.Filter | None) -> Generator[Call, Any, int]:
        result = yield ("count", {"collection_name": self.collection_name, "count_filter": filter, "exact": True})
        return result.count

    def _search_plan(
        self, queries: Sequence[str], **request: Any
    ) -> Generator[Call, Any, list[list[models.ScoredPoint]]]:
        return plans.search_plan(self, SearchRequest(self._query_texts(queries), **request))
