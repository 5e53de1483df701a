"""BM25 sparse vectors for a vector store that keeps no statistics of ours (langchain-qdrant's and
LlamaIndex's Qdrant stores), weighted as :class:`sse_integrations.qdrant.MatryoshkaIndex` weighs them.

BM25's document weights need the corpus's average document length. ``MatryoshkaIndex`` keeps it
in the collection, as a running average over every document added; a store we do not own has no
place for it, so :class:`StreamingSparseEncoder` keeps the same running average in memory: each
batch of documents is counted first, then weighed with the average of everything counted so far
(the index does the same per ``add_texts`` call). ``fit(corpus)`` or ``avg_doc_length=`` fixes the
average instead, so the weights no longer depend on the order and batching of the writes, and
equal the index's for a corpus it adds in one call. The IDF part stays with the engine
(``Modifier.IDF`` on the sparse vector), and queries get unit weights, as everywhere.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from typing import Any, Self

from ._checks import as_text_list, check_text
from .encoder import SSEEncoder, resolve_encoder
from .sparse import SparseEncoder, SparseVector


class StreamingSparseEncoder:
    """Our BM25 sparse encoder (SSE token ids + character bigrams) with its own length statistics.

    Args:
        model_name_or_path: model folder or hub id whose tokenizer makes the terms; None = the
            bundled default model.
        encoder: an already loaded :class:`SSEEncoder` to share (instead of ``model_name_or_path``).
        features: "tokens", "bigrams" or "tokens+bigrams" (the default, as in ``MatryoshkaIndex``).
        k1: BM25's term-frequency saturation.
        b: BM25's document-length normalisation (0 needs no average length at all).
        avg_doc_length: a fixed average document length in terms (e.g. ``avg_doc_length`` of an
            encoder fitted earlier, to add to a collection from a new process); None keeps a
            running average over the documents encoded so far, unless :meth:`fit` fixes one.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        *,
        encoder: SSEEncoder | None = None,
        features: str = "tokens+bigrams",
        k1: float = 1.2,
        b: float = 0.75,
        avg_doc_length: float | None = None,
    ) -> None:
        self.encoder = resolve_encoder(encoder, model_name_or_path)
        if avg_doc_length is not None and (
            isinstance(avg_doc_length, bool) or not isinstance(avg_doc_length, (int, float))
        ):
            raise TypeError(f"avg_doc_length must be a number of terms, got {type(avg_doc_length).__name__}")
        if avg_doc_length is not None and not math.isfinite(avg_doc_length):
            raise ValueError(f"avg_doc_length must be positive, got {avg_doc_length}")
        self.sparse = SparseEncoder(
            self.encoder.tokenizer, features=features, k1=k1, b=b, avg_doc_length=avg_doc_length
        )
        self.fixed_length = avg_doc_length is not None
        self.doc_count = 0
        self.term_count = 0
        # Stores may encode batches from several threads (async adds run in an executor).
        self._lock = threading.Lock()

    @property
    def avg_doc_length(self) -> float | None:
        """The average document length the next documents are weighed with (None before any)."""
        return self.sparse.avg_doc_length

    def fit(self, texts: Sequence[str]) -> StreamingSparseEncoder:
        """Fix the average document length to that of ``texts`` (the corpus about to be added)."""
        with self._lock:
            self.sparse.fit(as_text_list(texts))
            self.fixed_length = True
        return self

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """BM25 term-frequency weights of ``texts``; a running average first counts them."""
        texts = as_text_list(texts, hint="pass a list of documents")
        if not texts:
            return []
        # Cut once: the terms give both the batch's lengths and its weights.
        per_text = self.sparse.terms(texts)
        with self._lock:
            if not self.fixed_length:
                self.doc_count += len(texts)
                self.term_count += sum(map(len, per_text))
                # An all-empty corpus has no length to normalise by; 1.0 is what fit() takes then.
                self.sparse.avg_doc_length = self.term_count / self.doc_count if self.term_count else 1.0
            return self.sparse.weigh_terms(per_text)

    def encode_queries(self, texts: Sequence[str]) -> list[SparseVector]:
        """One unit weight per distinct query term (the engine's IDF weighs them)."""
        return self.sparse.encode_queries(as_text_list(texts, name="queries", hint="use encode_query(text)"))

    def encode_query(self, text: str) -> SparseVector:
        return self.encode_queries([check_text(text, "query")])[0]

    def get_config(self) -> dict[str, Any]:
        """The BM25 settings and the average length now in use (JSON-safe)."""
        return {**self.sparse.get_config(), "fixed_length": self.fixed_length}


class StreamingSparseAdapter:
    """What a framework's sparse adapter over :class:`StreamingSparseEncoder` shares: its settings and the average length."""

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        *,
        encoder: SSEEncoder | None = None,
        features: str = "tokens+bigrams",
        k1: float = 1.2,
        b: float = 0.75,
        avg_doc_length: float | None = None,
    ) -> None:
        self.bm25 = StreamingSparseEncoder(
            model_name_or_path, encoder=encoder, features=features, k1=k1, b=b, avg_doc_length=avg_doc_length
        )

    @property
    def avg_doc_length(self) -> float | None:
        """The average document length in use (pass it as ``avg_doc_length`` to add from a new process)."""
        return self.bm25.avg_doc_length

    def fit(self, texts: Sequence[str]) -> Self:
        """Fix BM25's average document length to that of ``texts``; returns self."""
        self.bm25.fit(texts)
        return self
