"""Passages of a document: windows over its token ids, cut without tokenising it again.

A static model averages every token of a text into one vector, so in a long document the few
pieces that match a query are drowned by everything else. Scoring each document's best
passage beside the whole document lifts retrieval on long documents (docs/passages.md). The
passages are windows over the document's own token ids: they cost a second pooling of rows
already tokenised, never a second tokenisation.

The rule (:meth:`PassageCut.spans`): a document of ``n`` tokens gets windows of ``tokens``
ids starting every ``stride`` ids, the last one ending at the document's end. A document of
at most ``tokens`` ids is one passage, the whole document, so it scores exactly as without
passages. A document that would need more than ``max_passages`` windows gets ``max_passages``
equal windows that cover it without overlap instead: a point never grows without bound (a
1 MB text still makes ``max_passages`` vectors, each the mean of a longer stretch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._checks import check_positive_int

# Chosen on the dev halves of the document and keyword sets (benchmarks/passage_quality.py,
# docs/passages.md): 16-token windows (about 29 characters of Japanese) every 8 tokens rank near
# the top on both at once, where longer windows lose on both and 8-token ones double the
# passages; a trial that moved window ends to sentence ends (。！？) gained nothing beyond noise
# and was not kept.
DEFAULT_PASSAGE_TOKENS = 16
DEFAULT_PASSAGE_STRIDE = 8
# A point of 64 passages at 512 dims is 128 KB of vectors, far below what an engine refuses.
DEFAULT_MAX_PASSAGES = 64


@dataclass(frozen=True)
class PassageSpans:
    """Passages of a batch: passage i belongs to ``document[i]`` and holds ids ``flat[starts[i]:starts[i] + lengths[i]]``."""

    document: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    def counts(self, documents: int) -> np.ndarray:
        """Passages per document (every document has at least one)."""
        return np.bincount(self.document, minlength=documents)

    def gather(self, flat: np.ndarray) -> np.ndarray:
        """The passages' ids one passage after another (overlapping windows repeat their shared ids)."""
        total = int(self.lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64)
        firsts = np.zeros(len(self.lengths), dtype=np.int64)
        np.cumsum(self.lengths[:-1], out=firsts[1:])
        return flat[np.arange(total, dtype=np.int64) + np.repeat(self.starts - firsts, self.lengths)]


@dataclass(frozen=True)
class PassageCut:
    """How documents are cut into passages: ``tokens``-id windows every ``stride`` ids, at most ``max_passages``."""

    tokens: int = DEFAULT_PASSAGE_TOKENS
    stride: int = DEFAULT_PASSAGE_STRIDE
    max_passages: int = DEFAULT_MAX_PASSAGES

    def __post_init__(self) -> None:
        check_positive_int(self.tokens, "passage tokens")
        check_positive_int(self.stride, "passage stride")
        check_positive_int(self.max_passages, "max_passages")
        if self.stride > self.tokens:
            raise ValueError(
                f"the passage stride ({self.stride}) must not exceed the passage length ({self.tokens} tokens): "
                "ids between windows would belong to no passage"
            )

    def spans(self, lengths: np.ndarray) -> PassageSpans:
        """The passages of documents of ``lengths`` tokens whose ids lie one document after another."""
        lengths = np.asarray(lengths, dtype=np.int64)
        doc_starts = np.zeros(len(lengths), dtype=np.int64)
        if len(lengths):
            np.cumsum(lengths[:-1], out=doc_starts[1:])
        counts = np.where(
            lengths <= self.tokens, 1, np.ceil((lengths - self.tokens) / self.stride).astype(np.int64) + 1
        )
        capped = counts > self.max_passages
        counts = np.where(capped, self.max_passages, counts)
        document = np.repeat(np.arange(len(lengths), dtype=np.int64), counts)
        # Position of each passage within its document.
        first_of_doc = np.zeros(len(lengths), dtype=np.int64)
        if len(lengths):
            np.cumsum(counts[:-1], out=first_of_doc[1:])
        position = np.arange(len(document), dtype=np.int64) - first_of_doc[document]
        doc_lengths = lengths[document]
        window = np.minimum(doc_lengths, self.tokens)
        starts = np.minimum(position * self.stride, doc_lengths - window)
        sizes = window.copy()
        if capped.any():
            # Equal windows without overlap: bounds at round(n * i / max_passages).
            in_capped = capped[document]
            n = doc_lengths[in_capped]
            i = position[in_capped]
            lower = _rounded_share(n, i, self.max_passages)
            upper = _rounded_share(n, i + 1, self.max_passages)
            starts[in_capped] = lower
            sizes[in_capped] = upper - lower
        return PassageSpans(document, starts + doc_starts[document], sizes)

    def describe(self) -> str:
        return f"{self.tokens}-token passages every {self.stride} tokens, at most {self.max_passages} per document"


def _rounded_share(length: np.ndarray, part: np.ndarray, parts: int) -> np.ndarray:
    """``floor(length * part / parts + 1/2)`` in integers (no float rounding on long documents)."""
    return (2 * length * part + parts) // (2 * parts)
