"""The embedded backend: Qdrant's own engine in-process (``qdrant-edge-py``), one Edge shard per collection.

:class:`EdgeClient` answers the few qdrant-client calls an index makes (``collection_exists``,
``create_collection``, ``get_collection``, ``upsert``, ``delete``, ``count``, ``retrieve``,
``query_batch_points``, ...) on Edge shards under one folder: collection ``NAME`` lives in
``FOLDER/NAME``. The query plans stay qdrant-client models; :mod:`.edge_models` translates them,
so Edge and a Qdrant server execute the same plan natively.

Beside the shard, ``FOLDER/NAME/sse_collection.json`` records the layout (named vectors, sparse
vectors) and the collection metadata (the BM25 settings), which Edge itself does not keep in a
form one can read back; a folder without it was not made here and is refused.

Durability: every write goes through Edge's write-ahead log, so a killed process loses no
acknowledged upsert; :meth:`EdgeClient.flush` also persists the segments (reopening is then
faster) and :meth:`EdgeClient.close` flushes. One process at a time: the shard folder is locked
(``fcntl.flock``) while open, and a second opener gets :class:`FolderInUseError`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import os
import shutil
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

try:
    import qdrant_edge as edge
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'the embedded Qdrant engine needs qdrant-edge-py: pip install "sse-integrations[qdrant]"'
    ) from error
from qdrant_client import models
from qdrant_client.http.models import QueryResponse

from . import edge_models as convert
from .layout import CorruptCollectionError

P = ParamSpec("P")
R = TypeVar("R")

MANIFEST = "sse_collection.json"
MANIFEST_FORMAT = "sse-integrations edge collection 1"
LOCK_FILE = ".sse.lock"


class FolderInUseError(RuntimeError):
    """Another process (or another open index) holds the collection folder."""


def _lock(path: Path) -> Any:
    """An exclusive, non-blocking lock on ``path/LOCK_FILE``; the open file holds it until closed."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock on this platform: one opener is the caller's duty
        return None
    handle = open(path / LOCK_FILE, "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise FolderInUseError(
            f"{path} is open in another process (or another index in this one): Qdrant Edge allows one "
            "writer per shard; close the other index first, or use a Qdrant server for shared access"
        ) from None
    return handle


def describe_foreign_folder(path: Path) -> str | None:
    """What ``path`` is when it is not a folder of Edge collections made here (None when it may be one)."""
    meta = path / "meta.json"
    if meta.is_file() or (path / "collection").is_dir() and (path / ".lock").exists():
        return (
            f"{path} is a qdrant-client local-mode folder (meta.json, collection/): open it with "
            "QdrantClient(path=...) and pass that client, or re-index into a new folder for the embedded engine"
        )
    return None


def _read_manifest(path: Path) -> dict[str, Any]:
    """``sse_collection.json``, or a :class:`CorruptCollectionError` naming it."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CorruptCollectionError(
            f"{path} is damaged ({error}): it records the collection's layout; restore it from a copy or re-index"
        ) from None
    if not isinstance(manifest, dict):
        raise CorruptCollectionError(f"{path} is damaged (a JSON {type(manifest).__name__}, not an object)")
    return manifest


class _Collection:
    """One open shard, its manifest and its folder lock."""

    def __init__(self, path: Path, shard: Any, manifest: dict[str, Any], lock: Any) -> None:
        self.path = path
        self.shard = shard
        self.manifest = manifest
        self.lock = lock
        self.write_lock = threading.RLock()

    def save_manifest(self) -> None:
        # Written whole to a temporary file and renamed: a crash leaves the old or the new one.
        temporary = self.path / (MANIFEST + ".tmp")
        temporary.write_text(json.dumps(self.manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(temporary, self.path / MANIFEST)

    def close(self) -> None:
        try:
            self.shard.flush()
            self.shard.close()
        finally:
            if self.lock is not None:
                self.lock.close()


class EdgeClient:
    """qdrant-client's collection calls, answered by Qdrant Edge shards under ``path``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(
                f"{self.path} is a file, not a folder: the embedded engine keeps its collections in a folder"
            )
        problem = describe_foreign_folder(self.path)
        if problem:
            raise ValueError(problem)
        self._open: dict[str, _Collection] = {}
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        return f"EdgeClient({str(self.path)!r})"

    # collections -----------------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        if not name or name in {".", ".."} or "/" in name or os.sep in name:
            raise ValueError(f"collection name {name!r} must be a plain folder name")
        return self.path / name

    def collection_exists(self, collection_name: str) -> bool:
        folder = self._folder(collection_name)
        if collection_name in self._open:
            return True
        if not folder.exists():
            return False
        manifest_path = folder / MANIFEST
        if manifest_path.is_file() and not _read_manifest(manifest_path).get("complete"):
            # A creation interrupted before its shard existed: nothing was stored, start again.
            lock = _lock(folder)
            shutil.rmtree(folder)
            if lock is not None:
                lock.close()
            return False
        if not manifest_path.is_file():
            raise ValueError(
                f"{folder} exists but is not a collection made by sse-integrations (no {MANIFEST}): "
                + ("it looks like a bare Qdrant Edge shard" if (folder / "segments").is_dir() else "unknown contents")
                + "; pick another collection name or folder"
            )
        return True

    def _collection(self, name: str) -> _Collection:
        with self._guard:
            if name in self._open:
                return self._open[name]
            if not self.collection_exists(name):
                raise ValueError(f"collection {name!r} does not exist in {self.path}")
            folder = self._folder(name)
            manifest = _read_manifest(folder / MANIFEST)
            if manifest.get("format") != MANIFEST_FORMAT:
                raise ValueError(
                    f"{folder / MANIFEST} has format {manifest.get('format')!r}, expected {MANIFEST_FORMAT!r}"
                )
            lock = _lock(folder)
            try:
                shard = edge.EdgeShard.load(str(folder))
            except Exception as error:
                if lock is not None:
                    lock.close()
                # Edge raises a bare Exception for damaged WAL, config or segment files.
                said = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
                raise CorruptCollectionError(
                    f"the collection at {folder} is damaged and cannot be opened (the engine said: {said}); "
                    "restore it from a copy or re-index into a new collection"
                ) from error
            self._open[name] = _Collection(folder, shard, manifest, lock)
            return self._open[name]

    def create_collection(
        self,
        collection_name: str,
        vectors_config: Mapping[str, models.VectorParams],
        sparse_vectors_config: Mapping[str, models.SparseVectorParams] | None = None,
        metadata: Mapping[str, Any] | None = None,
        hnsw_config: models.HnswConfigDiff | None = None,
        on_disk_payload: bool | None = None,
        wal_enabled: bool | None = None,
        optimizers_config: models.OptimizersConfigDiff | None = None,
    ) -> bool:
        """Create the shard ``FOLDER/collection_name``; its manifest is written first, the shard second."""
        folder = self._folder(collection_name)
        if self.collection_exists(collection_name):
            raise ValueError(f"collection {collection_name!r} already exists in {self.path}")
        sparse_vectors_config = dict(sparse_vectors_config or {})
        config = edge.EdgeConfig(
            vectors={name: convert.vector_params(params) for name, params in vectors_config.items()},
            sparse_vectors={name: convert.sparse_params(p) for name, p in sparse_vectors_config.items()} or None,
            on_disk_payload=on_disk_payload,
            hnsw_config=convert.hnsw(hnsw_config),
            wal_enabled=wal_enabled,
            optimizers=convert.optimizers(optimizers_config),
        )
        manifest = {
            "format": MANIFEST_FORMAT,
            "vectors": {
                name: {
                    "size": p.size,
                    "distance": "Cosine",
                    **({"multivector": "max_sim"} if p.multivector_config else {}),
                }
                for name, p in vectors_config.items()
            },
            "sparse_vectors": {
                name: {"modifier": "idf" if p.modifier == models.Modifier.IDF else None}
                for name, p in sparse_vectors_config.items()
            },
            "metadata": dict(metadata or {}),
            "complete": False,
        }
        folder.mkdir(parents=True, exist_ok=True)
        with self._guard:
            lock = _lock(folder)
            collection = _Collection(folder, None, manifest, lock)
            try:
                # Manifest first, marked incomplete: a crash before the shard exists leaves a folder
                # that the next opener recognises as unfinished and starts again.
                collection.save_manifest()
                collection.shard = edge.EdgeShard.create(str(folder), config)
            except Exception:
                if lock is not None:
                    lock.close()
                raise
            manifest["complete"] = True
            collection.save_manifest()
            self._open[collection_name] = collection
        return True

    def get_collection(self, collection_name: str) -> models.CollectionInfo:
        """The collection's layout and metadata in qdrant-client's ``CollectionInfo`` shape (the parts an index reads)."""
        collection = self._collection(collection_name)
        manifest = collection.manifest
        info = collection.shard.info()
        params = models.CollectionParams(
            vectors={
                name: models.VectorParams(
                    size=v["size"],
                    distance=models.Distance.COSINE,
                    multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)
                    if v.get("multivector") == "max_sim"
                    else None,
                )
                for name, v in manifest["vectors"].items()
            },
            sparse_vectors={
                name: models.SparseVectorParams(modifier=models.Modifier.IDF if s.get("modifier") == "idf" else None)
                for name, s in manifest["sparse_vectors"].items()
            }
            or None,
        )
        # model_construct: the server-only parts of CollectionInfo (WAL, optimizer settings) have no meaning here.
        make_config: Any = models.CollectionConfig.model_construct
        make_info: Any = models.CollectionInfo.model_construct
        config = make_config(params=params, metadata=dict(manifest["metadata"]))
        return make_info(
            status=models.CollectionStatus.GREEN,
            points_count=info.points_count,
            segments_count=info.segments_count,
            indexed_vectors_count=info.indexed_vectors_count,
            config=config,
            payload_schema={field: convert.payload_index_info(i) for field, i in info.payload_schema.items()},
        )

    def update_collection(self, collection_name: str, metadata: Mapping[str, Any] | None = None) -> bool:
        """Merge ``metadata`` into the collection's (as Qdrant does); other settings are fixed at creation."""
        collection = self._collection(collection_name)
        if metadata:
            collection.manifest["metadata"].update(metadata)
            collection.save_manifest()
        return True

    def create_payload_index(
        self, collection_name: str, field_name: str, field_schema: Any = None, wait: bool = True
    ) -> None:
        """Index a payload field (Edge's own field index, ``is_tenant`` included)."""
        collection = self._collection(collection_name)
        operation = edge.UpdateOperation.create_field_index(field_name, convert.field_schema(field_schema))
        with collection.write_lock:
            collection.shard.update(operation)

    def delete_collection(self, collection_name: str) -> bool:
        folder = self._folder(collection_name)
        if not self.collection_exists(collection_name):
            return False
        collection = self._collection(collection_name)
        with self._guard:
            collection.close()
            del self._open[collection_name]
            shutil.rmtree(folder)
        return True

    # points ----------------------------------------------------------------------------------

    def upsert(
        self, collection_name: str, points: Sequence[models.PointStruct | edge.Point], wait: bool = True
    ) -> None:
        """Upsert ``PointStruct``s, or Edge points already built (the index's own ``add_texts`` path)."""
        collection = self._collection(collection_name)
        operation = edge.UpdateOperation.upsert_points(
            [point if isinstance(point, edge.Point) else convert.edge_point(point) for point in points]
        )
        with collection.write_lock:
            collection.shard.update(operation)

    def delete(
        self,
        collection_name: str,
        points_selector: models.PointIdsList | models.FilterSelector,
        wait: bool = True,
    ) -> None:
        collection = self._collection(collection_name)
        if isinstance(points_selector, models.PointIdsList):
            operation = edge.UpdateOperation.delete_points([convert.edge_id(i) for i in points_selector.points])
        elif isinstance(points_selector, models.FilterSelector):
            flt = convert.edge_filter(points_selector.filter)
            assert flt is not None
            operation = edge.UpdateOperation.delete_points_by_filter(flt)
        else:
            raise TypeError(
                f"points_selector must be a PointIdsList or FilterSelector, got {type(points_selector).__name__}"
            )
        with collection.write_lock:
            collection.shard.update(operation)

    def count(
        self, collection_name: str, count_filter: models.Filter | None = None, exact: bool = True
    ) -> models.CountResult:
        shard = self._collection(collection_name).shard
        return models.CountResult(
            count=shard.count(edge.CountRequest(exact=exact, filter=convert.edge_filter(count_filter)))
        )

    def retrieve(
        self,
        collection_name: str,
        ids: Sequence[int | str],
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> list[models.Record]:
        shard = self._collection(collection_name).shard
        wanted = [convert.edge_id(i) for i in ids]
        payload = list(with_payload) if not isinstance(with_payload, bool) else with_payload
        vectors = list(with_vectors) if not isinstance(with_vectors, bool) else with_vectors
        return [convert.record(r) for r in shard.retrieve(wanted, with_payload=payload, with_vector=vectors)]

    def scroll(
        self,
        collection_name: str,
        scroll_filter: models.Filter | None = None,
        limit: int = 10,
        offset: int | str | None = None,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> tuple[list[models.Record], int | str | None]:
        shard = self._collection(collection_name).shard
        request = edge.ScrollRequest(
            offset=convert.edge_id(offset) if offset is not None else None,
            limit=limit,
            filter=convert.edge_filter(scroll_filter),
            with_payload=list(with_payload) if not isinstance(with_payload, bool) else with_payload,
            with_vector=list(with_vectors) if not isinstance(with_vectors, bool) else with_vectors,
        )
        records, next_offset = shard.scroll(request)
        return [convert.record(r) for r in records], convert.point_id(next_offset) if next_offset is not None else None

    def query_batch_points(self, collection_name: str, requests: Sequence[models.QueryRequest]) -> list[QueryResponse]:
        shard = self._collection(collection_name).shard
        batch = shard.query_batch(edge.QueryBatchRequest([convert.edge_request(r) for r in requests]))
        return [QueryResponse(points=[convert.scored_point(p) for p in hits]) for hits in batch]

    def query_points(
        self,
        collection_name: str,
        query: list[float] | None = None,
        using: str | None = None,
        query_filter: models.Filter | None = None,
        limit: int = 10,
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool | Sequence[str] = False,
    ) -> QueryResponse:
        """One dense query, answered as ``query_batch_points`` answers a ``QueryRequest``."""
        request = models.QueryRequest(
            query=query,
            using=using,
            filter=query_filter,
            limit=limit,
            with_payload=list(with_payload) if not isinstance(with_payload, bool) else with_payload,
            with_vector=list(with_vectors) if not isinstance(with_vectors, bool) else with_vectors,
        )
        return self.query_batch_points(collection_name, [request])[0]

    # maintenance -----------------------------------------------------------------------------

    def flush(self, collection_name: str | None = None) -> None:
        """Persist every open shard's segments (the WAL already holds each write)."""
        names = [collection_name] if collection_name is not None else list(self._open)
        for name in names:
            if name not in self._open:
                continue  # never opened here: nothing pending
            collection = self._open[name]
            with collection.write_lock:
                collection.shard.flush()

    def optimize(self, collection_name: str) -> bool:
        """Build the HNSW graphs and merge segments now (blocks); True when anything changed."""
        collection = self._collection(collection_name)
        with collection.write_lock:
            changed = bool(collection.shard.optimize())
            collection.shard.flush()
        return changed

    def close(self) -> None:
        with self._guard:
            collections, self._open = list(self._open.values()), {}
        for collection in collections:
            collection.close()


def _threaded(
    method: Callable[Concatenate[EdgeClient, P], R],
) -> Callable[Concatenate[AsyncEdgeClient, P], Coroutine[Any, Any, R]]:
    """``method`` of :class:`EdgeClient` as an awaitable method of :class:`AsyncEdgeClient`, run in a worker thread."""

    @functools.wraps(method)
    async def threaded(self: AsyncEdgeClient, *args: P.args, **kwargs: P.kwargs) -> R:
        # Edge calls block (Rust, GIL released): run them off the event loop.
        return await asyncio.to_thread(method, self.sync, *args, **kwargs)

    return threaded


class AsyncEdgeClient:
    """:class:`EdgeClient` with awaitable methods, each run in a worker thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.sync = EdgeClient(path)
        self.path = self.sync.path

    def __repr__(self) -> str:
        return f"AsyncEdgeClient({str(self.path)!r})"

    create_collection = _threaded(EdgeClient.create_collection)
    collection_exists = _threaded(EdgeClient.collection_exists)
    get_collection = _threaded(EdgeClient.get_collection)
    update_collection = _threaded(EdgeClient.update_collection)
    create_payload_index = _threaded(EdgeClient.create_payload_index)
    delete_collection = _threaded(EdgeClient.delete_collection)
    upsert = _threaded(EdgeClient.upsert)
    delete = _threaded(EdgeClient.delete)
    count = _threaded(EdgeClient.count)
    retrieve = _threaded(EdgeClient.retrieve)
    scroll = _threaded(EdgeClient.scroll)
    query_batch_points = _threaded(EdgeClient.query_batch_points)
    query_points = _threaded(EdgeClient.query_points)
    flush = _threaded(EdgeClient.flush)
    optimize = _threaded(EdgeClient.optimize)
    close = _threaded(EdgeClient.close)


assert inspect.iscoroutinefunction(AsyncEdgeClient.upsert)  # the index tells sync from async clients this way
