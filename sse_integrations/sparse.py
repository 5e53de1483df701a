"""BM25-style sparse lexical vectors for hybrid search, from the SSE tokenizer and character n-grams.

Documents get the BM25 term-frequency part, ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``;
queries get one unit weight per distinct term. The IDF part is left to the vector store (Qdrant's
``Modifier.IDF``), which knows the collection, so adding documents never rewrites old vectors.

Terms are SSE token ids (indices below the vocabulary size) and/or hashed character bigrams of
the NFKC-normalised, lower-cased text (indices from ``BIGRAM_OFFSET`` up), so both kinds can
share one sparse vector without colliding.

Some characters carry no lexical meaning and are never terms: control characters (category
Cc, e.g. ``"\x00"``) split words like a space, format characters (Cf, e.g. zero-width spaces)
are dropped, and a token the tokenizer could not map (its unknown piece, ``<unk>``) is left
out, since every unknown character would otherwise share that one term and match any other;
so is a piece that is only the word-boundary mark ``▁``.
A text with no terms left gets an empty vector (a query of one matches nothing).
"""

from __future__ import annotations

import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, filterfalse
from typing import Any

import numpy as np

from ._checks import as_text_list

FEATURES = ("tokens", "bigrams", "tokens+bigrams")
BIGRAM_OFFSET = 1 << 24  # above any tokenizer vocabulary
_BIGRAM_SPACE = (1 << 31) - BIGRAM_OFFSET  # Qdrant sparse indices are uint32; stay in int32 range


class _LexicalMap(dict):
    """``str.translate`` table built on demand: control characters -> space, format characters
    removed, anything else kept (each code point's category is looked up once)."""

    def __missing__(self, code: int) -> str | int:
        category = unicodedata.category(chr(code))
        value: str | int = " " if category == "Cc" else "" if category == "Cf" else code
        self[code] = value
        return value


_LEXICAL = _LexicalMap()


def lexical_text(text: str) -> str:
    """``text`` without the characters that are never terms (see the module docstring)."""
    return text if text.isprintable() else text.translate(_LEXICAL)


def ignored_token_ids(tokenizer: Any) -> frozenset[int]:
    """Ids that are never terms: the unknown piece, which stands for any unmapped character, and
    pieces that are only a word-boundary mark (``▁``) or whitespace, which carry no word."""
    names = {getattr(tokenizer.model, "unk_token", None), "<unk>", "[UNK]"}
    ids = {tokenizer.token_to_id(name) for name in names if isinstance(name, str)}
    ids.update(i for piece, i in tokenizer.get_vocab(with_added_tokens=True).items() if not piece.strip("▁ \t\n"))
    return frozenset(i for i in ids if i is not None)


@dataclass(frozen=True)
class SparseVector:
    """Sorted unique term indices and their weights."""

    indices: list[int]
    values: list[float]


class _BigramIndices(dict):
    """Bigram -> term index, computed on first use; ``indices[bigram]`` runs the lookup in C.

    Keeps at most ``limit`` bigrams; beyond that, new ones are hashed on every use (same index).
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        super().__init__()
        self.limit = limit

    def __missing__(self, bigram: str) -> int:
        index = BIGRAM_OFFSET + zlib.crc32(bigram.encode("utf-8")) % _BIGRAM_SPACE
        if len(self) < self.limit:
            self[bigram] = index
        return index


@dataclass
class SparseEncoder:
    """BM25 document weights and unit query weights over token ids and/or character bigrams.

    Args:
        tokenizer: a ``tokenizers.Tokenizer`` (the SSE model's); needed unless ``features="bigrams"``.
        features: "tokens", "bigrams" or "tokens+bigrams".
        k1: term-frequency saturation.
        b: document-length normalisation strength.
        avg_doc_length: average number of terms per document; ``fit`` sets it from a corpus.
    """

    tokenizer: Any = None
    features: str = "tokens+bigrams"
    k1: float = 1.2
    b: float = 0.75
    avg_doc_length: float | None = None
    _bigram_indices: _BigramIndices = field(default_factory=_BigramIndices, init=False, repr=False, compare=False)
    _unknown_ids: frozenset[int] = field(default=frozenset(), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {', '.join(FEATURES)}; got {self.features!r}")
        if "tokens" in self.features and self.tokenizer is None:
            raise ValueError(f"features={self.features!r} needs the SSE tokenizer")
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ValueError(f"BM25 needs k1 >= 0 and 0 <= b <= 1; got k1={self.k1}, b={self.b}")
        if self.avg_doc_length is not None and self.avg_doc_length <= 0:
            raise ValueError(f"avg_doc_length must be positive, got {self.avg_doc_length}")
        if self.tokenizer is not None:
            self._unknown_ids = ignored_token_ids(self.tokenizer)

    # --- terms ---------------------------------------------------------------------------

    @staticmethod
    def _runs(text: str) -> list[str]:
        # Whitespace splits runs: Japanese has none between words, so bigrams span word edges there.
        return unicodedata.normalize("NFKC", text).lower().split()

    def _bigrams(self, text: str) -> list[int]:
        index = self._bigram_indices.__getitem__
        terms: list[int] = []
        for run in self._runs(text):
            if len(run) == 1:
                terms.append(index(run))
            else:
                # Each pair of neighbouring characters, joined and looked up without a Python-level loop.
                terms.extend(map(index, map(str.__add__, run[:-1], run[1:])))
        return terms

    def _bigram_count(self, text: str) -> int:
        """How many bigram terms :meth:`_bigrams` gives ``text``, without hashing them."""
        return sum(len(run) - 1 or 1 for run in self._runs(text))

    def _token_ids(self, cleaned: list[str]) -> Iterator[list[int]]:
        """The SSE tokenizer's ids of each (already cleaned) text, the ignored ones included."""
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return (encoding.ids for encoding in encode(cleaned, add_special_tokens=False))

    def terms(self, texts: Sequence[str]) -> list[list[int]]:
        """Term indices of each text, with repeats (their counts are the term frequencies)."""
        cleaned = [lexical_text(text) for text in as_text_list(texts)]
        per_text: list[list[int]] = [[] for _ in cleaned]
        if "tokens" in self.features:
            ignored = self._unknown_ids.__contains__
            for terms, ids in zip(per_text, self._token_ids(cleaned)):
                terms.extend(filterfalse(ignored, ids))
        if "bigrams" in self.features:
            for terms, text in zip(per_text, cleaned):
                terms.extend(self._bigrams(text))
        return per_text

    def term_counts(self, texts: Sequence[str]) -> list[int]:
        """``len(terms)`` of each text (the BM25 document length), without building the terms."""
        cleaned = [lexical_text(text) for text in as_text_list(texts)]
        counts = [0] * len(cleaned)
        if "tokens" in self.features:
            ignored = self._unknown_ids.__contains__
            counts = [len(ids) - sum(map(ignored, ids)) for ids in self._token_ids(cleaned)]
        if "bigrams" in self.features:
            counts = [count + self._bigram_count(text) for count, text in zip(counts, cleaned)]
        return counts

    # --- weights -------------------------------------------------------------------------

    def fit(self, texts: Sequence[str]) -> SparseEncoder:
        """Set ``avg_doc_length`` from a corpus; returns self."""
        lengths = self.term_counts(texts)
        self.avg_doc_length = float(np.mean(lengths)) if lengths and sum(lengths) else 1.0
        return self

    def encode_documents(self, texts: Sequence[str]) -> list[SparseVector]:
        """BM25 term-frequency weights; needs ``avg_doc_length`` (set it or call ``fit``)."""
        if self.avg_doc_length is None:
            raise ValueError("avg_doc_length is unknown: call fit(corpus) or pass avg_doc_length=")
        return self.weigh_terms(self.terms(texts))

    def weigh_terms(self, per_text: list[list[int]]) -> list[SparseVector]:
        """BM25 term-frequency weights of documents already cut into :meth:`terms`."""
        if self.avg_doc_length is None:
            raise ValueError("avg_doc_length is unknown: call fit(corpus) or pass avg_doc_length=")
        lengths = np.fromiter(map(len, per_text), dtype=np.int64, count=len(per_text))
        # Every (text, term) pair of the batch as one sorted key: np.unique gives each text's
        # distinct terms in ascending order with their counts, in C rather than a Counter per text.
        # Term indices stay below 2**31 (BIGRAM_OFFSET + _BIGRAM_SPACE), so 32 bits hold them.
        texts_of_terms = np.repeat(np.arange(len(per_text), dtype=np.int64), lengths)
        flat_terms = np.fromiter(chain.from_iterable(per_text), dtype=np.int64, count=int(lengths.sum()))
        keys, tf = np.unique((texts_of_terms << 32) | flat_terms, return_counts=True)
        # The same float64 operations, in the same order, as tf * (k1 + 1) / (tf + norm) in Python.
        norms = self.k1 * (1 - self.b + self.b * lengths.astype(np.float64) / self.avg_doc_length)
        owners = keys >> 32
        values = tf * (self.k1 + 1) / (tf + norms[owners])
        bounds = np.searchsorted(owners, np.arange(len(per_text) + 1)).tolist()
        indices = (keys & 0xFFFFFFFF).tolist()
        weights = values.tolist()
        return [SparseVector(indices[lo:hi], weights[lo:hi]) for lo, hi in zip(bounds[:-1], bounds[1:])]

    def encode_queries(self, texts: Sequence[str]) -> list[SparseVector]:
        """One unit weight per distinct query term (the store multiplies in IDF)."""
        return [SparseVector(sorted(set(terms)), [1.0] * len(set(terms))) for terms in self.terms(texts)]

    # --- config --------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """JSON-safe settings (the tokenizer is the SSE model's and is not repeated here)."""
        return {"features": self.features, "k1": self.k1, "b": self.b, "avg_doc_length": self.avg_doc_length}

    @classmethod
    def from_config(cls, config: dict[str, Any], tokenizer: Any = None) -> SparseEncoder:
        return cls(
            tokenizer=tokenizer,
            **{key: config[key] for key in ("features", "k1", "b", "avg_doc_length") if key in config},
        )
