"""What the framework adapters share: the index check, the retrievers' option checks and their deprecations.

Nothing here imports a framework or Qdrant.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from ._checks import is_async_index

# What a store reads of an index (MatryoshkaIndex and AsyncMatryoshkaIndex have all of them).
INDEX_ATTRIBUTES = ("search", "add_texts", "delete", "encoder", "text_key", "id_key", "client")


def check_index(index: object, attributes: Iterable[str] = INDEX_ATTRIBUTES) -> None:
    """Refuse anything that is not a Matryoshka index, naming the first attribute it lacks."""
    for attribute in attributes:
        if not hasattr(index, attribute):
            raise TypeError(
                f"index must be a sse_integrations.qdrant.MatryoshkaIndex or AsyncMatryoshkaIndex, "
                f"got {type(index).__name__} (no {attribute!r})"
            )


def refuse_async_index(index: object, retriever: str, async_calls: str) -> None:
    """A sync call on a retriever over an async index names the calls to use instead."""
    if is_async_index(index):
        raise TypeError(
            f"this {retriever} wraps an AsyncMatryoshkaIndex: call {async_calls}, or build it on a sync MatryoshkaIndex"
        )


def check_search_kwargs(search_kwargs: Mapping[str, Any], count_option: str) -> None:
    """Refuse a retriever's ``search_kwargs`` that set what its own options set."""
    reserved = {"query", "limit", "mode", "retrieval_mode", "filter", "qdrant_filters", "prefetch_limit", count_option}
    reserved &= search_kwargs.keys()
    if reserved:
        raise ValueError(
            f"search_kwargs may not set {sorted(reserved)}: use the query and the {count_option}, mode, filter and "
            "prefetch_limit options"
        )


def warn_legacy_metadata(retriever: str, id_attribute: str) -> None:
    """The retrievers' pre-store metadata keys go away in the next release.

    A ``FutureWarning``: Python shows it to a script's user, where a ``DeprecationWarning`` raised
    inside the frameworks' constructors would be hidden (it is shown only for ``__main__``'s own code).
    """
    warnings.warn(
        f"{retriever} puts the document id and the score into each hit's metadata for one more release; "
        f"the id is {id_attribute} and the score is the hit's score. Pass legacy_metadata=False to get "
        "the vector store's as_retriever() results exactly (the next release's only behaviour).",
        FutureWarning,
        stacklevel=4,
    )
