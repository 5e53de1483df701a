"""A LangChain retriever over a Matryoshka index: :class:`MatryoshkaQdrantRetriever`.

A thin view of :class:`MatryoshkaQdrantVectorStore`: it searches as
``MatryoshkaQdrantVectorStore(index).as_retriever(search_kwargs={"k": k, "filter": filter})``
does and returns the same ``Document``s, for code that holds an index rather than a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.langchain needs langchain-core: pip install "sse-integrations[langchain]"'
    ) from error
from pydantic import ConfigDict, Field, PrivateAttr, model_validator

from .. import _adapters
from ..search_mode import SearchMode, search_mode

if TYPE_CHECKING:
    from .vectorstore import MatryoshkaQdrantVectorStore

__all__ = ["MatryoshkaQdrantRetriever"]


class MatryoshkaQdrantRetriever(BaseRetriever):
    """Two-stage Matryoshka search over a Qdrant collection, as a LangChain retriever.

    Wraps a :class:`sse_integrations.qdrant.MatryoshkaIndex` (sync) or ``AsyncMatryoshkaIndex``
    (async only) and returns exactly what the vector store's ``as_retriever()`` returns for the
    same search: ``Document``s whose ``page_content`` is the stored text, ``id`` the caller's
    document id and ``metadata`` the rest of the payload.

    Args:
        index: the index to search.
        k: documents to return (``invoke(query, k=3)`` overrides it per call).
        prefetch_limit: first-stage candidates (None = the index's default).
        filter: LangChain's dict filter or a ``qdrant_client.models.Filter`` (as the store takes).
        mode: "dense" (two-stage Matryoshka), "sparse" (BM25) or "hybrid" (fused); sparse and
            hybrid need an index made with ``sparse=True`` (``invoke(query, mode=...)`` overrides it).
        search_kwargs: further keyword arguments for ``index.search`` (e.g. ``search_params``,
            ``two_stage``).
        legacy_metadata: deprecated, True for one release: also put the document id (under the
            index's ``id_key``) and the score (under ``score_key``) into each document's metadata,
            as this retriever did before it became a view of the store. Pass False to get the
            store's documents exactly (the next release's only behaviour).
        score_key: metadata key for the score under ``legacy_metadata`` (None leaves it out).

    Example:
        >>> retriever = MatryoshkaQdrantRetriever(index=index, k=3, legacy_metadata=False)
        >>> chain = retriever | (lambda docs: "\\n".join(d.page_content for d in docs))
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = Field(default=4, gt=0)
    prefetch_limit: int | list[int] | None = None
    filter: Any | None = None
    mode: SearchMode = SearchMode.DENSE
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    legacy_metadata: bool = True
    score_key: str | None = "score"

    _store: MatryoshkaQdrantVectorStore = PrivateAttr()

    @model_validator(mode="after")
    def _build_store(self) -> MatryoshkaQdrantRetriever:
        from .vectorstore import MatryoshkaQdrantVectorStore

        _adapters.check_search_kwargs(self.search_kwargs, "k")
        self._store = MatryoshkaQdrantVectorStore(self.index, retrieval_mode=self.mode)
        if self.legacy_metadata:
            _adapters.warn_legacy_metadata(type(self).__name__, "Document.id")
        return self

    def _search_arguments(self, overrides: dict[str, Any]) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            **self.search_kwargs,
            "k": self.k,
            "filter": self.filter,
            "retrieval_mode": self.mode,
            "prefetch_limit": self.prefetch_limit,
        }
        if "limit" in overrides:  # index.search's name for k, which the old retriever passed on
            overrides["k"] = overrides.pop("limit")
        if "mode" in overrides:
            overrides["retrieval_mode"] = search_mode(overrides.pop("mode"))
        return {**arguments, **overrides}

    def _current_store(self) -> MatryoshkaQdrantVectorStore:
        # The index is a public field: a copy or an assignment may point the retriever at another one.
        if self._store.index is not self.index:
            from .vectorstore import MatryoshkaQdrantVectorStore

            self._store = MatryoshkaQdrantVectorStore(self.index, retrieval_mode=self.mode)
        return self._store

    def _documents(self, scored: list[tuple[Document, float]]) -> list[Document]:
        if not self.legacy_metadata:
            return [document for document, _ in scored]
        for document, score in scored:
            document.metadata[self.index.id_key] = document.id
            if self.score_key is not None:
                document.metadata[self.score_key] = score
        return [document for document, _ in scored]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        _adapters.refuse_async_index(self.index, "retriever", "ainvoke()/abatch()")
        return self._documents(
            self._current_store().similarity_search_with_score(query, **self._search_arguments(kwargs))
        )

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        scored = await self._current_store().asimilarity_search_with_score(query, **self._search_arguments(kwargs))
        return self._documents(scored)
