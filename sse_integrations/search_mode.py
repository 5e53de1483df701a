"""The three ways to search an index, named once for the index, the stores, the retrievers and the CLI."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = ["SearchMode", "search_mode"]


class SearchMode(StrEnum):
    """How an index searches (langchain-qdrant names its retrieval modes the same way)."""

    DENSE = "dense"  # two-stage Matryoshka: coarse prefix, rescored with the full vector
    SPARSE = "sparse"  # BM25 (an index made with sparse=True)
    HYBRID = "hybrid"  # both, fused by the index's fusion (RRF or DBSF)


def search_mode(mode: Any) -> SearchMode:
    """``mode`` as a :class:`SearchMode`; anything else is a ``ValueError`` naming the three."""
    try:
        return SearchMode(mode)
    except ValueError:
        raise ValueError(f"mode must be 'dense', 'sparse' or 'hybrid', got {mode!r}") from None
