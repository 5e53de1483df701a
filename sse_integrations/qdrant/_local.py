"""qdrant-client's local mode (``":memory:"`` or ``path=``), the one file that touches its internals.

qdrant-client offers no public flag for local mode, no public accessor for the vectors that
local mode keeps in numpy arrays, and its fusion functions are not part of its public API;
everything that depends on those details is here, imported only when a function runs, so a
qdrant-client release that changes them breaks this file alone (and the readers fall back to
the public API where they can).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def is_local_client(client: Any) -> bool:
    """True for qdrant-client's local mode (``":memory:"`` or ``path=``), sync or async."""
    from qdrant_client.local.async_qdrant_local import AsyncQdrantLocal
    from qdrant_client.local.qdrant_local import QdrantLocal

    # The local engine is the client's wrapped `_client`.
    inner = getattr(client, "_client", client)
    return isinstance(inner, (QdrantLocal, AsyncQdrantLocal))


def local_vectors(
    client: Any, collection_name: str, point_ids: Sequence[Any], names: Sequence[str]
) -> dict[str, np.ndarray] | None:
    """The points' vectors read straight from qdrant-client's local-mode storage, or None.

    ``retrieve`` copies every vector into a Python list and a pydantic model (tens of
    microseconds per point), which dominated two-stage latency at a few hundred candidates;
    local mode keeps the same vectors in one numpy array per name. This reads that storage
    defensively and returns None (the caller then uses ``retrieve``) whenever anything is not
    as expected.
    """
    try:
        collection = client._client.collections[collection_name]
        index_of, matrices = collection.ids, collection.vectors
        deleted, deleted_per_vector = collection.deleted, collection.deleted_per_vector
        rows = [index_of[point_id] for point_id in point_ids]
        if rows and (np.asarray(deleted)[rows] != 0).any():
            return None
        found = {}
        for name in names:
            matrix = matrices[name]
            if not isinstance(matrix, np.ndarray) or matrix.ndim != 2:
                return None
            if rows and (np.asarray(deleted_per_vector[name])[rows] != 0).any():
                return None
            found[name] = matrix[rows]  # fancy indexing copies: later writes cannot change it
        return found
    except (AttributeError, KeyError, IndexError, TypeError):
        return None


def fuse(
    ranked_lists: list[list[Any]],
    limit: int,
    fusion: str,
    rrf_k: int | None = None,
    weights: tuple[float, float] | None = None,
) -> list[Any]:
    """Fuse ``ScoredPoint`` lists with the code qdrant-client's Query API applies to a ``FusionQuery``."""
    from qdrant_client.hybrid.fusion import distribution_based_score_fusion, reciprocal_rank_fusion

    if fusion == "rrf":
        return reciprocal_rank_fusion(
            ranked_lists, limit=limit, ranking_constant_k=rrf_k, weights=list(weights) if weights is not None else None
        )
    return distribution_based_score_fusion(ranked_lists, limit=limit)
