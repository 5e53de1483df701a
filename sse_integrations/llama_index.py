"""LlamaIndex adapters: :class:`SSEEmbedding` and a two-stage Qdrant retriever.

``SSEEmbedding`` is a ``BaseEmbedding`` backed by an :class:`SSEEncoder` (set it as
``Settings.embed_model``); ``MatryoshkaQdrantRetriever`` is a ``BaseRetriever`` over a
:class:`sse_integrations.qdrant.MatryoshkaIndex` (coarse Matryoshka prefix, then full-width
rescoring) that a ``RetrieverQueryEngine`` can use as is.

Example:
    >>> from llama_index.core import Settings
    >>> from sse_integrations.llama_index import SSEEmbedding
    >>> Settings.embed_model = SSEEmbedding(truncate_dim=256)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

try:
    from llama_index.core.base.base_retriever import BaseRetriever
    from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
    from llama_index.core.callbacks import CallbackManager
    from llama_index.core.schema import BaseNode, Document, ImageNode, IndexNode, NodeWithScore, QueryBundle, TextNode
    from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.llama_index needs llama-index-core: pip install "sse-integrations[llamaindex]"'
    ) from error
from pydantic import Field, PrivateAttr

from . import _retrievers
from ._checks import as_text_list, check_positive_int, check_text
from .encoder import DEFAULT_BATCH_SIZE, SSEEncoder, model_reference
from .matryoshka import validate_dim

if TYPE_CHECKING:
    from .llama_index_vectorstore import MatryoshkaQdrantVectorStore

__all__ = ["MatryoshkaQdrantRetriever", "MatryoshkaQdrantVectorStore", "SSEEmbedding", "metadata_filters_to_qdrant"]


def __getattr__(name: str) -> Any:
    # The vector store needs qdrant-client as well: loaded on first use, so the embedding and
    # the retriever work with the llamaindex extra alone.
    if name == "MatryoshkaQdrantVectorStore":
        from . import llama_index_vectorstore

        return llama_index_vectorstore.MatryoshkaQdrantVectorStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_NODE_CLASSES = {cls.class_name(): cls for cls in (TextNode, Document, ImageNode, IndexNode)}


def node_from_stored(node_id: str, text: str, metadata: dict[str, Any], node_data: dict[str, Any] | None) -> BaseNode:
    """A node rebuilt from a point: text, id and metadata, plus relationships etc. when the store wrote them."""
    if node_data is None:
        return TextNode(id_=node_id, text=text, metadata=metadata)
    data = dict(node_data)
    node_class = _NODE_CLASSES.get(data.pop("type", ""), TextNode)
    node = node_class.model_validate({**data, "id_": node_id, "metadata": metadata})
    node.set_content(text)
    return node


def metadata_filters_to_qdrant(filters: MetadataFilters) -> Any:
    """A LlamaIndex ``MetadataFilters`` as a Qdrant ``models.Filter`` over the payload keys.

    Follows LlamaIndex's own in-memory semantics: a missing key satisfies ``!=`` and ``nin``
    only; ``not`` matches when none of the filters do; ``contains``/``any``/``all`` test list
    values. ``text_match`` becomes Qdrant's ``MatchText`` (whole tokens, not substrings);
    ``text_match_insensitive`` has no Qdrant equivalent and raises ``ValueError``.
    """
    from qdrant_client import models

    conditions = [
        metadata_filters_to_qdrant(item) if isinstance(item, MetadataFilters) else _condition(item, models)
        for item in filters.filters
    ]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return models.Filter(must=conditions)
    if condition == FilterCondition.OR:
        return models.Filter(should=conditions)
    if condition == FilterCondition.NOT:
        return models.Filter(must_not=conditions)
    raise ValueError(f"unsupported filter condition {condition!r}")


def _condition(item: MetadataFilter, models: Any) -> Any:
    key, value, operator = item.key, item.value, item.operator

    def match(value: Any) -> Any:
        # MatchValue takes str/int/bool only; a float equality is the one-point range.
        if isinstance(value, float):
            return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))

    def values() -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"filter {key!r} {operator.value!r} needs a list value, got {value!r}")
        return value

    if operator in (FilterOperator.EQ, FilterOperator.CONTAINS):
        return match(value)
    if operator == FilterOperator.NE:
        return models.Filter(must_not=[match(value)])
    bounds = {FilterOperator.GT: "gt", FilterOperator.GTE: "gte", FilterOperator.LT: "lt", FilterOperator.LTE: "lte"}
    if operator in bounds:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"filter {key!r} {operator.value!r} needs a number, got {value!r}")
        return models.FieldCondition(key=key, range=models.Range(**{bounds[operator]: value}))
    if operator in (FilterOperator.IN, FilterOperator.ANY):
        if not values():
            # Qdrant ignores an empty `should`; "in []" must match nothing, as in LlamaIndex.
            return models.HasIdCondition(has_id=[])
        return models.Filter(should=[match(option) for option in values()])
    if operator == FilterOperator.NIN:
        return models.Filter(must_not=[match(option) for option in values()])
    if operator == FilterOperator.ALL:
        return models.Filter(must=[match(option) for option in values()])
    if operator == FilterOperator.IS_EMPTY:
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
    if operator == FilterOperator.TEXT_MATCH:
        return models.FieldCondition(key=key, match=models.MatchText(text=value))
    raise ValueError(f"filter operator {operator.value!r} has no Qdrant equivalent (filter on {key!r})")


class SSEEmbedding(BaseEmbedding):
    """LlamaIndex embeddings from a Stable Static Embedding model.

    Queries and documents are embedded the same way (the model is symmetric). Each batch of
    ``embed_batch_size`` texts is one encoder call.

    Args:
        model_name: model folder or hub id; None loads the bundled default model. Stored as
            ``to_dict()`` should name it: None for the bundled model, an absolute folder path,
            or the hub id.
        encoder: an already loaded :class:`SSEEncoder` to share between adapters (instead of
            ``model_name``). An encoder built in memory (``source`` None) cannot be named, so
            ``to_dict()`` then refers to the bundled model.
        truncate_dim: Matryoshka prefix to return (None = the encoder's default width).
        normalize: L2-normalise after truncation.
        embed_batch_size: texts per encoder call (a static model is cheap per text, so
            larger batches than LlamaIndex's default of 10 mostly save call overhead).
    """

    # None names the bundled model, which LlamaIndex's base class (typed str) has no word for.
    model_name: str | None = Field(  # type: ignore[assignment]
        default=None, description="Model folder or hub id; None = bundled default."
    )
    truncate_dim: int | None = Field(default=None, description="Matryoshka prefix (None = full width).")
    normalize: bool = Field(default=True, description="L2-normalise after truncation.")
    embed_batch_size: int = Field(default=DEFAULT_BATCH_SIZE, gt=0, le=2048)

    _encoder: SSEEncoder = PrivateAttr()

    def __init__(
        self,
        model_name: str | os.PathLike | None = None,
        *,
        encoder: SSEEncoder | None = None,
        truncate_dim: int | None = None,
        normalize: bool = True,
        embed_batch_size: int = DEFAULT_BATCH_SIZE,
        callback_manager: CallbackManager | None = None,
        **kwargs: Any,
    ) -> None:
        if encoder is None:
            encoder = SSEEncoder.from_pretrained(model_name)
        elif not isinstance(encoder, SSEEncoder):
            raise TypeError(f"encoder must be an SSEEncoder, got {type(encoder).__name__}")
        elif model_name is not None and model_reference(model_name) != model_reference(encoder.source):
            raise ValueError(
                f"got both a model ({str(model_name)!r}) and an encoder loaded from {encoder.source!r}; pass one"
            )
        # Name the model (also a shared one) so to_dict() can rebuild this embedding elsewhere.
        name = model_reference(encoder.source)
        if truncate_dim is not None:
            validate_dim(truncate_dim, encoder.full_dim)
        super().__init__(
            model_name=name,
            truncate_dim=truncate_dim,
            normalize=normalize,
            embed_batch_size=embed_batch_size,
            callback_manager=callback_manager,
            **kwargs,
        )
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "SSEEmbedding"

    @property
    def encoder(self) -> SSEEncoder:
        """The shared :class:`SSEEncoder`."""
        return self._encoder

    @property
    def dim(self) -> int:
        """Width of the returned vectors."""
        return self.truncate_dim or self._encoder.dim

    def _encode(self, texts: list[str]) -> list[Embedding]:
        vectors = self._encoder.encode(
            texts,
            truncate_dim=self.truncate_dim,
            normalize=self.normalize,
            batch_size=self.embed_batch_size,
        )
        return vectors.tolist()

    # BaseEmbedding splits the list before our code sees it, so a bad item would be reported
    # by its index within one batch: check the whole list first to name its real position.
    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        return super().get_text_embedding_batch(as_text_list(texts), show_progress=show_progress, **kwargs)

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        return await super().aget_text_embedding_batch(as_text_list(texts), show_progress=show_progress, **kwargs)

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._encode([check_text(query)])[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._encode([check_text(text)])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encode(texts)

    # Encoding is CPU-bound: run it in a worker thread so the event loop keeps serving.
    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await asyncio.to_thread(self._get_query_embedding, check_text(query))

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return await asyncio.to_thread(self._get_text_embedding, check_text(text))

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await asyncio.to_thread(self._get_text_embeddings, texts)


class MatryoshkaQdrantRetriever(BaseRetriever):
    """Two-stage Matryoshka search over a Qdrant collection, as a LlamaIndex retriever.

    Wraps a :class:`sse_integrations.qdrant.MatryoshkaIndex` (sync and async retrieval) or an
    ``AsyncMatryoshkaIndex`` (``aretrieve`` only). Hits come back in the index's order as
    ``NodeWithScore``s: the node's id is the caller's document id, its text the stored text,
    its metadata the rest of the payload.

    Args:
        index: the index to search.
        similarity_top_k: nodes to return.
        prefetch_limit: first-stage candidates (None = the index's default).
        filters: LlamaIndex ``MetadataFilters`` on the payload (see :func:`metadata_filters_to_qdrant`).
        filter: a ``qdrant_client.models.Filter``; only matching points are candidates (both
            ``filters`` and ``filter`` given: a point must match both).
        mode: "dense" (two-stage Matryoshka), "sparse" (BM25) or "hybrid" (fused); sparse and
            hybrid need an index made with ``sparse=True``.
        search_kwargs: further keyword arguments for ``index.search`` (e.g. ``search_params``,
            ``two_stage``).
    """

    def __init__(
        self,
        index: Any,
        similarity_top_k: int = 4,
        *,
        prefetch_limit: int | Sequence[int] | None = None,
        filters: MetadataFilters | None = None,
        filter: Any = None,
        mode: str = "dense",
        search_kwargs: dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
    ) -> None:
        _retrievers.check_index(index)
        check_positive_int(similarity_top_k, "similarity_top_k")
        search_kwargs = dict(search_kwargs or {})
        _retrievers.check_search_kwargs(search_kwargs, "similarity_top_k")
        _retrievers.check_mode(mode)
        self.mode = mode
        self.index = index
        self.similarity_top_k = similarity_top_k
        self.prefetch_limit = prefetch_limit
        self.filters = filters
        self.filter = filter
        if filters is not None:
            converted = metadata_filters_to_qdrant(filters)  # converted once; bad operators fail here
            filter = converted if filter is None else type(converted)(must=[converted, filter])
        self._qdrant_filter = filter
        self.search_kwargs = search_kwargs
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _search_arguments(self) -> dict[str, Any]:
        return {
            **self.search_kwargs,
            "limit": self.similarity_top_k,
            "mode": self.mode,
            "prefetch_limit": self.prefetch_limit,
            "filter": self._qdrant_filter,
        }

    def _to_nodes(self, points: Sequence[Any]) -> list[NodeWithScore]:
        return [
            NodeWithScore(node=node_from_stored(hit.id, hit.text, hit.metadata, hit.node), score=hit.score)
            for hit in _retrievers.stored_hits(self.index, points)
        ]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        async_calls = "aretrieve() (or an async query engine)"
        return self._to_nodes(
            _retrievers.search(self.index, query_bundle.query_str, self._search_arguments(), async_calls)
        )

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        return self._to_nodes(await _retrievers.asearch(self.index, query_bundle.query_str, self._search_arguments()))
