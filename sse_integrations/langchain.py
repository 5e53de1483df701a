"""LangChain adapters: :class:`SSEEmbeddings`, a two-stage Qdrant retriever and vector store.

``SSEEmbeddings`` is a ``langchain_core`` ``Embeddings`` backed by an :class:`SSEEncoder`;
``MatryoshkaQdrantRetriever`` is a ``BaseRetriever`` over a
:class:`sse_integrations.qdrant.MatryoshkaIndex` (coarse Matryoshka prefix, then full-width
rescoring), usable as is in an LCEL chain; ``MatryoshkaQdrantVectorStore`` (from
:mod:`.langchain_vectorstore`) is a ``VectorStore`` over the same index, for the framework's
``from_documents`` -> ``as_retriever()`` flow.

Example:
    >>> from sse_integrations import SSEEncoder
    >>> from sse_integrations.langchain import SSEEmbeddings
    >>> encoder = SSEEncoder.from_pretrained()
    >>> embeddings = SSEEmbeddings(encoder=encoder, truncate_dim=256)
    >>> len(embeddings.embed_query("窓際の猫"))
    256
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

try:
    from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.retrievers import BaseRetriever
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.langchain needs langchain-core: pip install "sse-integrations[langchain]"'
    ) from error
from pydantic import BaseModel, ConfigDict, Field, model_validator

from . import _retrievers
from ._checks import check_text
from .encoder import DEFAULT_BATCH_SIZE, SSEEncoder, model_reference
from .matryoshka import validate_dim

if TYPE_CHECKING:
    from .langchain_vectorstore import MatryoshkaQdrantVectorStore, RetrievalMode, dict_filter_to_qdrant

__all__ = [
    "MatryoshkaQdrantRetriever",
    "MatryoshkaQdrantVectorStore",
    "RetrievalMode",
    "SSEEmbeddings",
    "dict_filter_to_qdrant",
]

# The vector store needs qdrant-client as well: loaded on first use, so the embeddings and the
# retriever work with the langchain extra alone.
_VECTORSTORE_NAMES = ("MatryoshkaQdrantVectorStore", "RetrievalMode", "dict_filter_to_qdrant")


def __getattr__(name: str) -> Any:
    if name in _VECTORSTORE_NAMES:
        from . import langchain_vectorstore

        return getattr(langchain_vectorstore, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _resolve_encoder(encoder: SSEEncoder | None, name_or_path: str | os.PathLike | None) -> SSEEncoder:
    """The shared encoder, or one loaded from ``name_or_path`` (None = the bundled default)."""
    if encoder is None:
        return SSEEncoder.from_pretrained(name_or_path)
    if not isinstance(encoder, SSEEncoder):
        raise TypeError(f"encoder must be an SSEEncoder, got {type(encoder).__name__}")
    if name_or_path is not None and model_reference(name_or_path) != model_reference(encoder.source):
        # Two different models named at once: refuse rather than guess which one embeds.
        raise ValueError(
            f"got both a model ({str(name_or_path)!r}) and an encoder loaded from {encoder.source!r}; pass one"
        )
    return encoder


class SSEEmbeddings(BaseModel, Embeddings):
    """LangChain embeddings from a Stable Static Embedding model.

    Queries and documents are embedded the same way (the model is symmetric) and texts are
    passed to the tokenizer unchanged.

    Args:
        model_name_or_path: model folder or hub id; None loads the bundled default model.
            After loading it names the model as ``model_dump()`` should: None for the bundled
            model, an absolute folder path, or the hub id.
        encoder: an already loaded :class:`SSEEncoder` to share between adapters (instead of
            ``model_name_or_path``). An encoder built in memory (``source`` None) cannot be
            named, so ``model_dump()`` then refers to the bundled model.
        truncate_dim: Matryoshka prefix to return (None = the encoder's default width).
        normalize: L2-normalise after truncation (cosine = dot product).
        batch_size: texts tokenised per step.
        show_progress: show a progress bar while embedding documents.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), arbitrary_types_allowed=True)

    model_name_or_path: str | None = None
    encoder: SSEEncoder | None = Field(default=None, exclude=True, repr=False)
    truncate_dim: int | None = None
    normalize: bool = True
    batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0)
    show_progress: bool = False

    @model_validator(mode="before")
    @classmethod
    def _path_to_str(cls, values: Any) -> Any:
        # Accept pathlib paths for the model, as SSEEncoder.from_pretrained does.
        if isinstance(values, dict) and isinstance(values.get("model_name_or_path"), os.PathLike):
            values = {**values, "model_name_or_path": os.fspath(values["model_name_or_path"])}
        return values

    @model_validator(mode="after")
    def _load(self) -> SSEEmbeddings:
        encoder = _resolve_encoder(self.encoder, self.model_name_or_path)
        if self.truncate_dim is not None:
            validate_dim(self.truncate_dim, encoder.full_dim)
        # Plain attribute writes: validate_assignment is off, so validators do not re-run.
        self.encoder = encoder
        # Name the model (also a shared one) so model_dump() can rebuild these embeddings.
        self.model_name_or_path = model_reference(encoder.source)
        return self

    @property
    def dim(self) -> int:
        """Width of the returned vectors."""
        return self.truncate_dim or self._loaded_encoder.dim

    @property
    def _loaded_encoder(self) -> SSEEncoder:
        # Optional only as a constructor argument: _load always sets it.
        assert self.encoder is not None
        return self.encoder

    def _encode(self, texts: Any, show_progress: bool) -> list[list[float]]:
        vectors = self._loaded_encoder.encode(
            texts,
            truncate_dim=self.truncate_dim,
            normalize=self.normalize,
            batch_size=self.batch_size,
            show_progress=show_progress,
        )
        return vectors.tolist()  # plain Python floats, as LangChain vector stores expect

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents; an empty list gives an empty list, a non-str item raises TypeError."""
        return self._encode(texts, self.show_progress)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self._encode([check_text(text)], False)[0]

    # Encoding is CPU-bound numpy + tokenizers work: run it in a worker thread so the event
    # loop keeps serving other tasks (the default base implementation does the same via an
    # executor; these say so explicitly and validate before leaving the loop).
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents` (runs in a worker thread)."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (runs in a worker thread)."""
        check_text(text)
        return await asyncio.to_thread(self.embed_query, text)


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
