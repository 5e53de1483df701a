"""LlamaIndex embeddings from an SSE model: :class:`SSEEmbedding`."""

from __future__ import annotations

import asyncio
import os
from typing import Any

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
    from llama_index.core.callbacks import CallbackManager
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.llama_index needs llama-index-core: pip install "sse-integrations[llamaindex]"'
    ) from error
from pydantic import Field, PrivateAttr

from .._checks import as_text_list, check_text
from ..encoder import DEFAULT_BATCH_SIZE, SSEEncoder, model_reference, resolve_encoder
from ..matryoshka import validate_dim

__all__ = ["SSEEmbedding"]


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
        encoder = resolve_encoder(encoder, model_name)
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
