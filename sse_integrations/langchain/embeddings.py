"""LangChain embeddings from an SSE model: :class:`SSEEmbeddings`."""

from __future__ import annotations

import asyncio
import os
from typing import Any

try:
    from langchain_core.embeddings import Embeddings
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.langchain needs langchain-core: pip install "sse-integrations[langchain]"'
    ) from error
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .._checks import check_text
from ..encoder import DEFAULT_BATCH_SIZE, SSEEncoder, model_reference, resolve_encoder
from ..matryoshka import validate_dim

__all__ = ["SSEEmbeddings"]


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
        encoder = resolve_encoder(self.encoder, self.model_name_or_path)
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
