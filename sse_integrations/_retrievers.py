"""What the LangChain and LlamaIndex retrievers share: index checks, sync/async dispatch, stored hits.

Both wrap a :class:`sse_integrations.qdrant.MatryoshkaIndex` (sync) or ``AsyncMatryoshkaIndex``
and only translate its hits into their framework's documents, so neither adapter imports the
other. Nothing here imports a framework or Qdrant.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._payload import read_point

SEARCH_MODES = ("dense", "sparse", "hybrid")


def check_index(index: Any) -> None:
    """Refuse anything that is not a Matryoshka index (the retrievers read these attributes)."""
    for attribute in ("search", "text_key", "id_key"):
        if not hasattr(index, attribute):
            raise TypeError(
                f"index must be a sse_integrations.qdrant.MatryoshkaIndex or AsyncMatryoshkaIndex, "
                f"got {type(index).__name__} (no {attribute!r})"
            )


def check_search_kwargs(search_kwargs: Mapping[str, Any], count_option: str) -> None:
    """Refuse ``search_kwargs`` that set what the retriever's own options set."""
    reserved = {"query", "limit", "mode"} & search_kwargs.keys()
    if reserved:
        raise ValueError(f"search_kwargs may not set {sorted(reserved)}: use the query, {count_option} and mode")


def check_mode(mode: Any) -> None:
    if mode not in SEARCH_MODES:
        raise ValueError(f"mode must be 'dense', 'sparse' or 'hybrid', got {mode!r}")


def is_async_index(index: Any) -> bool:
    return inspect.iscoroutinefunction(index.search)


def search(index: Any, query: str, arguments: Mapping[str, Any], async_calls: str) -> Sequence[Any]:
    """``index.search`` on a sync index; an async index names ``async_calls``, the methods to use instead."""
    if is_async_index(index):
        raise TypeError(
            f"this retriever wraps an AsyncMatryoshkaIndex: call {async_calls}, or build it on a sync MatryoshkaIndex"
        )
    return index.search(query, **arguments)


async def asearch(index: Any, query: str, arguments: Mapping[str, Any]) -> Sequence[Any]:
    """``index.search`` awaited on an async index, in a worker thread on a sync one."""
    if is_async_index(index):
        return await index.search(query, **arguments)
    # A sync client blocks on I/O and on the encoder: keep it off the event loop.
    return await asyncio.to_thread(index.search, query, **arguments)


@dataclass(frozen=True)
class StoredHit:
    """One search hit as the retrievers hand it on: the caller's id, the text, the rest of the payload."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float
    node: dict[str, Any] | None = None


def stored_hits(index: Any, points: Sequence[Any]) -> list[StoredHit]:
    """The index's ``ScoredPoint``s read by the shared payload convention (:mod:`._payload`).

    The retrievers predate the vector stores and keep the document id in the metadata too.
    """
    hits = []
    for point in points:
        stored = read_point(index, point)
        metadata = {**stored.metadata, index.id_key: (point.payload or {}).get(index.id_key, point.id)}
        hits.append(StoredHit(stored.id, stored.text, metadata, point.score, stored.node))
    return hits
