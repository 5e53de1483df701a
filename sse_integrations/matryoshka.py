"""Matryoshka prefixes: which dimensions a model supports, truncation and re-normalisation."""

from __future__ import annotations

import numpy as np

# SSE checkpoints are trained with a Matryoshka loss over these prefixes (plus the full width).
MATRYOSHKA_DIMS: tuple[int, ...] = (32, 64, 128, 256, 512)


def matryoshka_dims(dim: int) -> tuple[int, ...]:
    """Prefix sizes usable on their own for a model whose full width is ``dim``.

    Powers of two from 32 below ``dim``, then ``dim`` itself: (32, 64, 128, 256, 512) for the
    published 512-dim checkpoints, (32, ..., 512, 1024) for a 1024-dim StaticEmbedding model.
    """
    prefixes = []
    size = 32
    while size < dim:
        prefixes.append(size)
        size *= 2
    return (*prefixes, dim)


def validate_dim(truncate_dim: int | None, dim: int) -> int:
    """Return the effective width for ``truncate_dim`` (None = full), or raise ValueError."""
    if truncate_dim is None:
        return dim
    allowed = matryoshka_dims(dim)
    if isinstance(truncate_dim, bool) or not isinstance(truncate_dim, (int, np.integer)):
        raise TypeError(f"truncate_dim must be an int or None, got {type(truncate_dim).__name__}")
    if int(truncate_dim) not in allowed:
        raise ValueError(
            f"truncate_dim={truncate_dim} is not a Matryoshka prefix of this {dim}-dim model; "
            f"allowed: {', '.join(map(str, allowed))}"
        )
    return int(truncate_dim)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length in place; an all-zero row stays zero instead of NaN."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    # Dividing zero rows by 1 leaves them as they are; a plain divide runs faster than a masked one.
    vectors /= np.where(norms > 0, norms, np.float32(1.0))
    return vectors


def truncate_and_normalize(vectors: np.ndarray, dim: int, normalize: bool = True) -> np.ndarray:
    """Keep the first ``dim`` columns, then (optionally) L2-normalise: truncate first, always."""
    prefix = np.array(vectors[:, :dim], dtype=np.float32, copy=True)
    return l2_normalize(prefix) if normalize else prefix
