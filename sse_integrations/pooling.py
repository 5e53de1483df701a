"""EmbeddingBag(mode="mean") in numpy: token ids of many texts -> mean of their embedding rows.

No Python step per text: texts are grouped by token count, and each group is one gather of an
(n, length, dim) block summed over its middle axis. That keeps the per-text float32 summation
order of a row-by-row loop (results are bit-identical to it) while numpy does the work in a
few large calls that release the GIL.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# Bags longer than this are summed in float64: float32 row-by-row sums drift on very long
# texts (~1e-4 over 20,000 tokens), float64 keeps them within ~1e-7.
LONG_BAG = 512
# Rows one gather materialises (1 MB at 512 float32 dims): the block is summed while it is
# still in cache.
_GATHER_ROWS = 512
# Means handed out per block: the caller's element-wise steps (DyT, normalisation) then run on
# data in cache instead of streaming the whole batch through memory once per step.
BLOCK_ROWS = 128


def flatten_ids(encodings: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(flat ids, length per text) of tokenizer encodings."""
    # len(encoding) is the id count without building the id list; the lists are then built one
    # at a time and dropped as they are read (~0.5 us less per short text than keeping them).
    lengths = np.fromiter(map(len, encodings), dtype=np.int64, count=len(encodings))
    ids = itertools.chain.from_iterable(encoding.ids for encoding in encodings)
    flat = np.fromiter(ids, dtype=np.int64, count=int(lengths.sum()))
    return flat, lengths


def mean_blocks(
    embedding: np.ndarray,
    flat: np.ndarray,
    lengths: np.ndarray,
    *,
    long_bag: int = LONG_BAG,
    block_rows: int = BLOCK_ROWS,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Mean of ``embedding`` rows per bag, as (bag indices, float32 means) blocks; empty bags give zeros.

    Blocks come in order of bag length, not input order; each block's array is the caller's to
    modify in place.

    Args:
        embedding: (vocab, dim) float32 rows.
        flat: every bag's ids, one bag after another.
        lengths: ids per bag.
        long_bag: bags longer than this are summed in float64.
        block_rows: bags per yielded block.
    """
    count = len(lengths)
    if count == 0:
        return
    starts = np.zeros(count, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    sums = np.empty((count, embedding.shape[1]), dtype=np.float32)
    edges = (np.flatnonzero(np.diff(sorted_lengths)) + 1).tolist()
    for first, stop in zip([0, *edges], [*edges, count]):
        _sum_equal_bags(
            embedding, flat, starts[order[first:stop]], int(sorted_lengths[first]), sums[first:stop], long_bag
        )
    divisors = np.maximum(sorted_lengths, 1).astype(np.float32)[:, None]
    for first in range(0, count, block_rows):
        block = sums[first : first + block_rows]
        block /= divisors[first : first + block_rows]
        yield order[first : first + block_rows], block


def _sum_equal_bags(embedding, flat, starts, length, out, long_bag) -> None:
    """Sum the rows of bags that all hold ``length`` ids (starting at ``starts``) into ``out``."""
    if length == 0:
        out[:] = 0.0
    elif length > long_bag:
        for row, start in enumerate(starts.tolist()):
            out[row] = _long_bag_sum(embedding, flat[start : start + length])
    elif length == 1:
        embedding.take(flat.take(starts), axis=0, out=out)
    else:
        offsets = np.arange(length, dtype=np.int64)
        step = max(1, _GATHER_ROWS // length)
        for first in range(0, len(starts), step):
            ids = flat.take(starts[first : first + step, None] + offsets)
            # Summing axis 1 of (n, length, dim) adds row after row, as a per-text loop does.
            np.add.reduce(embedding.take(ids, axis=0), axis=1, out=out[first : first + step])


def _long_bag_sum(embedding: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """float64 sum of the rows of one long bag, gathered ``_GATHER_ROWS`` at a time.

    Gathering every row at once cost 4 bytes x dim per token (2 GB for a 4 MB text, issue 31).
    Each block is reduced with the running sum as its first row, so the rows are still added
    one after another in float64: the result is bit-identical to one sum over all of them.
    """
    step = _GATHER_ROWS
    total = np.add.reduce(embedding.take(ids[:step], axis=0), axis=0, dtype=np.float64)
    block = np.empty((step + 1, embedding.shape[1]), dtype=np.float64)
    for first in range(step, len(ids), step):
        part = ids[first : first + step]
        block[0] = total
        block[1 : len(part) + 1] = embedding.take(part, axis=0)
        np.add.reduce(block[: len(part) + 1], axis=0, out=total)
    return total


def mean_pool(embedding: np.ndarray, flat: np.ndarray, lengths: np.ndarray, *, long_bag: int = LONG_BAG) -> np.ndarray:
    """Mean of ``embedding`` rows per bag in input order, float32 (len(lengths), dim); see :func:`mean_blocks`."""
    pooled = np.empty((len(lengths), embedding.shape[1]), dtype=np.float32)
    for indices, means in mean_blocks(embedding, flat, lengths, long_bag=long_bag):
        pooled[indices] = means
    return pooled
