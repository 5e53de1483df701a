"""The client surface an index calls, declared once, and the one way to tell the backends apart.

An index talks to its engine through the qdrant-client methods below and nothing else.
``QdrantClient`` (server, cluster, local mode) and the embedded :class:`.edge.EdgeClient` both
satisfy :class:`Client`; ``AsyncQdrantClient`` and :class:`.edge.AsyncEdgeClient` satisfy
:class:`AsyncClient`. mypy holds all four to it (the ``TYPE_CHECKING`` block at the end), so a
method the Edge client answers differently from qdrant-client is a type error, not a surprise.

Parameters are keyword-only: plans call every method by keyword, and qdrant-client's positional
order (``scroll``'s ``order_by`` before ``offset``) is not part of the contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from qdrant_client import models

from .edge import AsyncEdgeClient, EdgeClient

PointId = int | str
#: ``with_payload`` / ``with_vectors``: everything, nothing, or the named fields/vectors.
Selection = bool | list[str]

#: The methods a plan may name; ``flush`` and ``optimize`` exist on the embedded engine alone
#: (a server persists and optimizes on its own), so plans name them only there.
ClientMethod = Literal[
    "collection_exists",
    "create_collection",
    "get_collection",
    "update_collection",
    "create_payload_index",
    "delete_collection",
    "upsert",
    "delete",
    "count",
    "retrieve",
    "scroll",
    "query_batch_points",
    "query_points",
    "close",
    "flush",
    "optimize",
]
EMBEDDED_ONLY = ("flush", "optimize")

Backend = Literal["embedded", "local", "server"]


class Client(Protocol):
    """The sync client calls of an index (qdrant-client's names and keywords)."""

    def collection_exists(self, *, collection_name: str) -> bool: ...
    def create_collection(
        self,
        *,
        collection_name: str,
        vectors_config: Mapping[str, models.VectorParams],
        sparse_vectors_config: Mapping[str, models.SparseVectorParams] | None = ...,
        metadata: dict[str, Any] | None = ...,
    ) -> bool: ...
    def get_collection(self, *, collection_name: str) -> models.CollectionInfo: ...
    def update_collection(self, *, collection_name: str, metadata: dict[str, Any] | None = ...) -> bool: ...
    def create_payload_index(self, *, collection_name: str, field_name: str, field_schema: Any = ...) -> object: ...
    def delete_collection(self, *, collection_name: str) -> bool: ...
    def upsert(self, *, collection_name: str, points: Sequence[models.PointStruct], wait: bool = ...) -> object: ...
    def delete(
        self, *, collection_name: str, points_selector: models.PointIdsList | models.FilterSelector, wait: bool = ...
    ) -> object: ...
    def count(
        self, *, collection_name: str, count_filter: models.Filter | None = ..., exact: bool = ...
    ) -> models.CountResult: ...
    def retrieve(
        self,
        *,
        collection_name: str,
        ids: Sequence[PointId],
        with_payload: Selection = ...,
        with_vectors: Selection = ...,
    ) -> list[models.Record]: ...
    def scroll(
        self,
        *,
        collection_name: str,
        scroll_filter: models.Filter | None = ...,
        limit: int = ...,
        offset: PointId | None = ...,
        with_payload: Selection = ...,
        with_vectors: Selection = ...,
    ) -> tuple[list[models.Record], object]: ...
    def query_batch_points(
        self, *, collection_name: str, requests: Sequence[models.QueryRequest]
    ) -> list[models.QueryResponse]: ...
    def query_points(
        self,
        *,
        collection_name: str,
        query: list[float] | None = ...,
        using: str | None = ...,
        query_filter: models.Filter | None = ...,
        limit: int = ...,
        with_payload: Selection = ...,
        with_vectors: Selection = ...,
    ) -> models.QueryResponse: ...
    def close(self) -> None: ...


class AsyncClient(Protocol):
    """:class:`Client` with awaitable methods (``AsyncQdrantClient``, :class:`.edge.AsyncEdgeClient`)."""

    async def collection_exists(self, *, collection_name: str) -> bool: ...
    async def create_collection(
        self,
        *,
        collection_name: str,
        vectors_config: Mapping[str, models.VectorParams],
        sparse_vectors_config: Mapping[str, models.SparseVectorParams] | None = ...,
        metadata: dict[str, Any] | None = ...,
    ) -> bool: ...
    async def get_collection(self, *, collection_name: str) -> models.CollectionInfo: ...
    async def update_collection(self, *, collection_name: str, metadata: dict[str, Any] | None = ...) -> bool: ...
    async def create_payload_index(
        self, *, collection_name: str, field_name: str, field_schema: Any = ...
    ) -> object: ...
    async def delete_collection(self, *, collection_name: str) -> bool: ...
    async def upsert(
        self, *, collection_name: str, points: Sequence[models.PointStruct], wait: bool = ...
    ) -> object: ...
    async def delete(
        self, *, collection_name: str, points_selector: models.PointIdsList | models.FilterSelector, wait: bool = ...
    ) -> object: ...
    async def count(
        self, *, collection_name: str, count_filter: models.Filter | None = ..., exact: bool = ...
    ) -> models.CountResult: ...
    async def retrieve(
        self,
        *,
        collection_name: str,
        ids: Sequence[PointId],
        with_payload: Selection = ...,
        with_vectors: Selection = ...,
    ) -> list[models.Record]: ...
    async def scroll(
        self,
        *,
        collection_name: str,
        scroll_filter: models.Filter | None = ...,
        limit: int = ...,
        offset: PointId | None = ...,
        with_payload: Selection = ...,
        with_vectors: Selection = ...,
    ) -> tuple[list[models.Record], object]: ...
    async def query_batch_points(
        self, *, collection_name: str, requests: Sequence[models.QueryRequest]
    ) -> list[models.QueryResponse]: ...
    async def query_points(
        self,
        *,
        collection_name: str,
        query: list[float] | None = ...,
        using: str | None = ...,
        query_filter: models.Filter | None = ...,
        limit: int = ...,
        with_payload: Selection = ...,
        with_vectors: Selection = ...,
    ) -> models.QueryResponse: ...
    async def close(self) -> None: ...


AnyClient = Client | AsyncClient


def backend_of(client: AnyClient) -> Backend:
    """``"embedded"`` (Qdrant Edge), ``"local"`` (qdrant-client's local mode) or ``"server"`` (anything else).

    Local mode is read from qdrant-client's public ``init_options`` (``":memory:"`` or ``path=``).
    """
    if isinstance(client, (EdgeClient, AsyncEdgeClient)):
        return "embedded"
    options = getattr(client, "init_options", None)
    if isinstance(options, Mapping) and (options.get("path") is not None or options.get("location") == ":memory:"):
        return "local"
    return "server"


if TYPE_CHECKING:
    from qdrant_client import AsyncQdrantClient, QdrantClient

    def _both_backends_satisfy_the_protocols(
        server: QdrantClient, edge: EdgeClient, async_server: AsyncQdrantClient, async_edge: AsyncEdgeClient
    ) -> tuple[Client, Client, AsyncClient, AsyncClient]:
        return server, edge, async_server, async_edge
