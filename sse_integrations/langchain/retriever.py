"""A LangChain retriever over a Matryoshka index: :class:`MatryoshkaQdrantRetriever`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.langchain needs langchain-core: pip install "sse-integrations[langchain]"'
    ) from error
from pydantic import ConfigDict, Field, model_validator

from .. import _retrievers

__all__ = ["MatryoshkaQdrantRetriever"]


class MatryoshkaQdrantRetriever(BaseRetriever):
    """Two-stage Matryoshka search over a Qdrant collection, as a LangChain retriever.

    Wraps a :class:`sse_integrations.qdrant.MatryoshkaIndex` (sync) or
    ``AsyncMatryoshkaIndex`` (async only): hits come back in the index's order, as
    ``Document``s whose ``page_content`` is the stored text, ``id`` the caller's document
    id, and ``metadata`` the rest of the payload plus the score.

    Args:
        index: the index to search.
        k: documents to return (``invoke(query, k=3)`` overrides it per call).
        prefetch_limit: first-stage candidates (None = the index's default).
        filter: a ``qdrant_client.models.Filter``; only matching points are candidates.
        mode: "dense" (two-stage Matryoshka), "sparse" (BM25) or "hybrid" (fused); sparse and
            hybrid need an index made with ``sparse=True`` (``invoke(query, mode=...)`` overrides it).
        search_kwargs: further keyword arguments for ``index.search`` (e.g. ``search_params``,
            ``two_stage``).
        score_key: metadata key for the score (None leaves the score out).

    Example:
        >>> retriever = MatryoshkaQdrantRetriever(index=index, k=3)
        >>> chain = retriever | (lambda docs: "\\n".join(d.page_content for d in docs))
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    index: Any
    k: int = Field(default=4, gt=0)
    prefetch_limit: int | list[int] | None = None
    filter: Any | None = None
    mode: Literal["dense", "sparse", "hybrid"] = "dense"
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    score_key: str | None = "score"

    @model_validator(mode="after")
    def _check_index(self) -> MatryoshkaQdrantRetriever:
        _retrievers.check_index(self.index)
        _retrievers.check_search_kwargs(self.search_kwargs, "k")
        return self

    def _search_arguments(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        arguments = {
            **self.search_kwargs,
            "limit": self.k,
            "mode": self.mode,
            "prefetch_limit": self.prefetch_limit,
            "filter": self.filter,
        }
        overrides = dict(overrides)
        if "k" in overrides:
            arguments["limit"] = overrides.pop("k")
        arguments.update(overrides)
        return arguments

    def _to_documents(self, points: Sequence[Any]) -> list[Document]:
        documents = []
        for hit in _retrievers.stored_hits(self.index, points):
            if self.score_key is not None:
                hit.metadata[self.score_key] = hit.score
            documents.append(Document(page_content=hit.text, metadata=hit.metadata, id=hit.id))
        return documents

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        points = _retrievers.search(self.index, query, self._search_arguments(kwargs), "ainvoke()/abatch()")
        return self._to_documents(points)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[Document]:
        return self._to_documents(await _retrievers.asearch(self.index, query, self._search_arguments(kwargs)))
