"""A LangChain ``VectorStore`` over a Matryoshka index: :class:`MatryoshkaQdrantVectorStore`.

Re-exported by :mod:`sse_integrations.langchain` (loaded on first use, so the embeddings and
the retriever keep working without qdrant-client). Documents are written by the shared
payload convention (:mod:`sse_integrations._payload`): a collection written here is searchable by
``MatryoshkaIndex``, the retrievers and the LlamaIndex store, and the other way round.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from qdrant_client import QdrantClient, models
except ImportError as error:  # pragma: no cover - exercised only without the extras
    raise ImportError(
        'MatryoshkaQdrantVectorStore needs langchain-core and qdrant-client: pip install "sse-integrations[langchain,qdrant]"'
    ) from error

from .. import _adapters, _stores
from .._payload import StoredPoint, check_metadata
from ..encoder import SSEEncoder
from ..search_mode import SearchMode, search_mode
from .embeddings import SSEEmbeddings
from .filters import dict_filter_to_qdrant

if TYPE_CHECKING:
    from ..qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
    from ..qdrant.backends import AnyClient

__all__ = ["MatryoshkaQdrantVectorStore", "RetrievalMode"]

DEFAULT_COLLECTION = "langchain"


# langchain-qdrant's name for the search modes.
RetrievalMode = SearchMode


class MatryoshkaQdrantVectorStore(VectorStore):
    """LangChain vector store over a :class:`sse_integrations.qdrant.MatryoshkaIndex`.

    Texts are embedded by the index's SSE encoder into its Matryoshka named vectors (no
    separate ``Embeddings`` needed); searches run the index's plans, so hits, order and scores
    equal ``index.search``. Metadata are top-level payload keys; ``filter`` takes LangChain's
    dict form (see :func:`dict_filter_to_qdrant`) or a Qdrant ``models.Filter``.

    Args:
        index: a ``MatryoshkaIndex`` (sync and async methods; async ones run in a worker
            thread) or an ``AsyncMatryoshkaIndex`` (async methods only).
        retrieval_mode: ``RetrievalMode.DENSE`` (two-stage), ``SPARSE`` or ``HYBRID`` (both
            need an index made with ``sparse=True``); a search's ``retrieval_mode`` overrides it.
        search_kwargs: further keyword arguments for every ``index.search`` (e.g. ``prefetch_limit``).
        tenant: serve one tenant of a multi-tenant index (``tenant_field``): every add, search and
            delete is for it alone (docs/tenancy.md). ``from_texts(..., tenant_field=..., tenant=...)``
            binds the index it builds instead.

    Example:
        >>> store = MatryoshkaQdrantVectorStore.from_documents(docs, collection_name="docs")
        >>> store.as_retriever(search_kwargs={"k": 3, "filter": {"topic": "food"}}).invoke("ラーメン")
    """

    def __init__(
        self,
        index: MatryoshkaIndex | AsyncMatryoshkaIndex,
        *,
        retrieval_mode: RetrievalMode | str = RetrievalMode.DENSE,
        search_kwargs: Mapping[str, Any] | None = None,
        tenant: str | None = None,
    ) -> None:
        _adapters.check_index(index)
        # Every call of the store (and of its retrievers) goes through the tenant's handle.
        self.index = index.for_tenant(tenant) if tenant is not None else index
        self.retrieval_mode = search_mode(retrieval_mode)
        self.search_kwargs = dict(search_kwargs or {})
        self._embeddings: Embeddings | None = None

    @property
    def embeddings(self) -> Embeddings:
        """``SSEEmbeddings`` on the index's encoder (full width), for code that embeds queries itself."""
        if self._embeddings is None:
            self._embeddings = SSEEmbeddings(encoder=self.index.encoder)
        return self._embeddings

    # construction ----------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        client: AnyClient | None = None,
        location: str | None = None,
        path: str | os.PathLike | None = None,
        collection_name: str = DEFAULT_COLLECTION,
        encoder: SSEEncoder | str | os.PathLike | None = None,
        retrieval_mode: RetrievalMode | str = RetrievalMode.DENSE,
        **index_settings: Any,
    ) -> MatryoshkaQdrantVectorStore:
        """A new store (and its index) holding ``texts``; see :meth:`from_existing_collection` for the arguments."""
        store = cls._on_new_index(
            collection_name,
            embedding,
            client=client,
            location=location,
            path=path,
            encoder=encoder,
            retrieval_mode=retrieval_mode,
            **index_settings,
        )
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    def from_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> MatryoshkaQdrantVectorStore:
        """A new store holding ``documents`` (their ids when they have some); arguments as :meth:`from_texts`."""
        # VectorStore.from_documents makes `embedding` required, which from_texts here does not.
        return super().from_documents(documents, embedding, **kwargs)  # type: ignore[arg-type]

    @classmethod
    async def afrom_documents(
        cls, documents: list[Document], embedding: Embeddings | None = None, **kwargs: Any
    ) -> MatryoshkaQdrantVectorStore:
        return await super().afrom_documents(documents, embedding, **kwargs)  # type: ignore[arg-type]

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> MatryoshkaQdrantVectorStore:
        return await super().afrom_texts(texts, embedding, metadatas, ids=ids, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_existing_collection(
        cls,
        collection_name: str = DEFAULT_COLLECTION,
        embedding: Embeddings | None = None,
        *,
        client: AnyClient | None = None,
        location: str | None = None,
        path: str | os.PathLike | None = None,
        encoder: SSEEncoder | str | os.PathLike | None = None,
        retrieval_mode: RetrievalMode | str = RetrievalMode.DENSE,
        **index_settings: Any,
    ) -> MatryoshkaQdrantVectorStore:
        """A store on an existing collection; one that does not exist is a ``ValueError`` (``from_texts`` creates one).

        Args:
            collection_name: the Qdrant collection.
            embedding: an ``SSEEmbeddings`` whose encoder the index shares (other embeddings
                cannot drive two-stage search: the index embeds every Matryoshka stage itself).
            client: a ``QdrantClient`` / ``AsyncQdrantClient``; else one from ``location``
                (":memory:", a URL); ``path`` is a folder for the embedded engine (Qdrant Edge, as
                ``MatryoshkaIndex(path, ...)``; for qdrant-client's local mode pass
                ``client=QdrantClient(path=...)``); none of them gives ``":memory:"``.
            encoder: an ``SSEEncoder`` or model folder / hub id (default: the embedding's, else bundled).
            retrieval_mode: see the class.
            index_settings: ``IndexOptions`` fields (``coarse_dim``, ``sparse``, ``fusion``, ...).
        """
        store = cls._on_new_index(
            collection_name,
            embedding,
            client=client,
            location=location,
            path=path,
            encoder=encoder,
            retrieval_mode=retrieval_mode,
            **index_settings,
        )
        # An async client's check would need awaiting: its searches name a missing collection instead.
        if not _stores.is_async_index(store.index) and not store.index.exists():
            where = store.index.client
            if store.index.owns_client:
                store.index.close()
            # Else every search would quietly answer nothing, forever.
            raise ValueError(
                f"collection {collection_name!r} does not exist at {where!r}: "
                "create it with from_texts or from_documents"
            )
        return store

    @classmethod
    def _on_new_index(
        cls,
        collection_name: str,
        embedding: Embeddings | None,
        *,
        client: AnyClient | None,
        location: str | None,
        path: str | os.PathLike | None,
        encoder: SSEEncoder | str | os.PathLike | None,
        retrieval_mode: RetrievalMode | str,
        **index_settings: Any,
    ) -> MatryoshkaQdrantVectorStore:
        """A store on a ``MatryoshkaIndex`` built from :meth:`from_existing_collection`'s arguments (the collection may not exist yet)."""
        from ..qdrant import MatryoshkaIndex

        encoder = _encoder_of(embedding, encoder)
        if sum(given is not None for given in (client, location, path)) > 1:
            raise ValueError("pass one of client, location or path, not several")
        # A folder opens (or creates) an embedded shard there.
        engine = (
            os.fspath(path)
            if path is not None
            else client
            if client is not None
            else QdrantClient(location or ":memory:")
        )
        return cls(MatryoshkaIndex(engine, collection_name, encoder, **index_settings), retrieval_mode=retrieval_mode)

    # writes ----------------------------------------------------------------------------------

    def _add_plan(
        self, texts: Iterable[str], metadatas: list[dict] | None, ids: list[str] | None, **kwargs: Any
    ) -> Any:
        texts = list(texts)
        metadatas = [dict(m or {}) for m in metadatas] if metadatas is not None else [{} for _ in texts]
        if len(metadatas) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(metadatas)} metadatas")
        check_metadata(self.index, metadatas)
        given: list[str | None] = list(ids) if ids is not None else [None] * len(texts)
        if len(given) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(given)} ids")
        # LangChain's add_documents passes Document.id, None where a document has none.
        doc_ids = [str(uuid.uuid4()) if doc_id is None else doc_id for doc_id in given]
        written = yield from _stores.add_plan(self.index, texts, doc_ids, metadatas, kwargs.get("batch_size"))
        return [str(doc_id) for doc_id in written]

    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str] | None = None, **kwargs: Any
    ) -> list[str]:
        """Embed and store texts (an id already stored is replaced); returns their ids."""
        return _stores.run(self.index, self._add_plan(texts, metadatas, ids, **kwargs), "aadd_texts()")

    async def aadd_texts(
        self, texts: Iterable[str], metadatas: list[dict] | None = None, *, ids: list[str] | None = None, **kwargs: Any
    ) -> list[str]:
        return await _stores.arun(self.index, self._add_plan(texts, metadatas, ids, **kwargs))

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete by id (unknown ids are ignored); ``filter=`` deletes every match, neither deletes all."""
        return _stores.run(self.index, self._delete_plan(ids, kwargs), "adelete()")

    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        return await _stores.arun(self.index, self._delete_plan(ids, kwargs))

    def _delete_plan(self, ids: list[str] | None, kwargs: Mapping[str, Any]) -> Any:
        query_filter = dict_filter_to_qdrant(kwargs.get("filter"))
        if ids is not None and query_filter is not None:
            raise ValueError("delete() takes ids or filter=, not both")
        if ids is None:
            # VectorStore.delete documents None as "delete all"; the collection and its layout stay.
            yield from _stores.delete_by_filter_plan(self.index, query_filter or models.Filter())
        else:
            yield from _stores.delete_plan(self.index, list(ids or []))
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Stored documents by id, in the order asked; unknown ids are left out."""
        return self._documents(_stores.run(self.index, _stores.get_plan(self.index, list(ids)), "aget_by_ids()"))

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return self._documents(await _stores.arun(self.index, _stores.get_plan(self.index, list(ids))))

    # searches --------------------------------------------------------------------------------

    def _search_plan(self, query: str, k: int, filter: Any, kwargs: dict[str, Any]) -> Any:
        mode = search_mode(kwargs.pop("retrieval_mode", self.retrieval_mode)).value
        arguments = {**self.search_kwargs, **kwargs, "filter": dict_filter_to_qdrant(filter), "mode": mode}
        return _stores.search_plan(self.index, query, k, **arguments)

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Top ``k`` documents with the index's scores (cosine for dense, BM25 or fused otherwise)."""
        points = _stores.run(self.index, self._search_plan(query, k, filter, kwargs), "asimilarity_search_with_score()")
        return self._scored(points)

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return self._scored(await _stores.arun(self.index, self._search_plan(query, k, filter, kwargs)))

    def similarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        return [document for document, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        return [document for document, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """Exact search by a full-width SSE vector (e.g. ``store.embeddings.embed_query``), single stage."""
        plan = _stores.vector_search_plan(self.index, embedding, k, dict_filter_to_qdrant(filter))
        return self._documents(_stores.run(self.index, plan, "asimilarity_search_by_vector()"))

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        plan = _stores.vector_search_plan(self.index, embedding, k, dict_filter_to_qdrant(filter))
        return self._documents(await _stores.arun(self.index, plan))

    def _mmr_plan(self, query: str, k: int, fetch_k: int, lambda_mult: float, filter: Any, kwargs: dict) -> Any:
        mode = search_mode(kwargs.pop("retrieval_mode", self.retrieval_mode)).value
        arguments = {**self.search_kwargs, **kwargs, "filter": dict_filter_to_qdrant(filter), "mode": mode}
        return _stores.mmr_plan(self.index, query, k, fetch_k, lambda_mult, **arguments)

    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        """``k`` documents among the ``fetch_k`` best hits, picked for relevance and diversity (full vectors)."""
        plan = self._mmr_plan(query, k, fetch_k, lambda_mult, filter, kwargs)
        return self._documents(_stores.run(self.index, plan, "amax_marginal_relevance_search()"))

    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: Any = None, **kwargs: Any
    ) -> list[Document]:
        plan = self._mmr_plan(query, k, fetch_k, lambda_mult, filter, kwargs)
        return self._documents(await _stores.arun(self.index, plan))

    def _select_relevance_score_fn(self) -> Any:
        if self.retrieval_mode != RetrievalMode.DENSE:
            raise NotImplementedError("relevance scores in [0, 1] exist for dense (cosine) retrieval only")
        return lambda score: (1.0 + score) / 2.0

    # reading points back ---------------------------------------------------------------------

    @staticmethod
    def _document(point: StoredPoint) -> Document:
        return Document(page_content=point.text, metadata=point.metadata, id=point.id)

    def _documents(self, points: Sequence[StoredPoint]) -> list[Document]:
        return [self._document(point) for point in points]

    def _scored(self, points: Sequence[StoredPoint]) -> list[tuple[Document, float]]:
        return [(self._document(point), float(point.score or 0.0)) for point in points]


def _encoder_of(embedding: Embeddings | None, encoder: SSEEncoder | str | os.PathLike | None) -> Any:
    """The index's encoder: ``encoder``, else the ``SSEEmbeddings``' one, else None (the bundled model)."""
    if embedding is None:
        return encoder
    shared = getattr(embedding, "encoder", None)
    if not isinstance(shared, SSEEncoder):
        raise TypeError(
            f"embedding must be SSEEmbeddings (the index embeds every Matryoshka stage with its encoder), "
            f"got {type(embedding).__name__}"
        )
    if encoder is not None and encoder is not shared:
        raise ValueError("got both an embedding and an encoder; pass one")
    return shared
