"""Evaluating embeddings, an encoder at every Matryoshka dim, and the Qdrant search pipeline.

The only module of the package that uses Qdrant, imported inside :func:`evaluate_two_stage`, so
the rest of the evaluation needs numpy alone.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..search_mode import SearchMode
from .beir import BEIRDataset
from .metrics import MAX_K, EvalResult, evaluate_rankings, rank_by_cosine, rankings_from_scores

if TYPE_CHECKING:
    from ..encoder import SSEEncoder
    from ..qdrant import MatryoshkaIndex
    from ..qdrant.backends import Client


def _eval_queries(dataset: BEIRDataset) -> tuple[list[str], list[str], dict[str, set[str]]]:
    qids, texts = dataset.evaluated_queries()
    return qids, texts, dataset.relevant_docs


def evaluate_embeddings(
    dataset: BEIRDataset,
    query_vectors: np.ndarray,
    corpus_vectors: np.ndarray,
    *,
    variant: str = "",
    corpus_chunk_size: int = 50_000,
) -> EvalResult:
    """Rank by exact cosine and score.

    Args:
        query_vectors: one row per evaluated query, in the order of
            :meth:`BEIRDataset.evaluated_queries`.
        corpus_vectors: one row per ``dataset.corpus_ids`` entry.
    """
    start = time.perf_counter()
    qids, _, relevant = _eval_queries(dataset)
    if len(query_vectors) != len(qids):
        raise ValueError(f"{len(query_vectors)} query vectors for {len(qids)} evaluated queries")
    ranked = rank_by_cosine(query_vectors, corpus_vectors, dataset.corpus_ids, corpus_chunk_size=corpus_chunk_size)
    rankings = {qid: [cid for cid, _ in hits] for qid, hits in zip(qids, ranked)}
    return EvalResult(
        dataset=dataset.name,
        variant=variant,
        metrics=evaluate_rankings(rankings, relevant),
        n_queries=len(qids),
        n_corpus=len(dataset.corpus_ids),
        problems=dataset.problems(),
        seconds=time.perf_counter() - start,
    )


def _full_dim(encoder: Any) -> int:
    return int(getattr(encoder, "full_dim", encoder.dim))


def evaluate_encoder(
    encoder: SSEEncoder,
    dataset: BEIRDataset,
    dims: Sequence[int] | None = None,
    *,
    batch_size: int = 1024,
    show_progress: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> dict[int, EvalResult]:
    """Evaluate ``encoder`` at every Matryoshka prefix in ``dims`` (default: all of them).

    Corpus and queries are encoded once at full width; each prefix is then the first ``dim``
    columns re-normalised, exactly what ``encode(truncate_dim=dim)`` returns.

    Args:
        on_step: called with a label after encoding and after each dim (progress reporting).
    """
    from ..matryoshka import truncate_and_normalize, validate_dim

    full = _full_dim(encoder)
    dims = list(dims) if dims is not None else list(encoder.matryoshka_dims)
    for dim in dims:
        validate_dim(dim, full)
    _, query_texts, _ = _eval_queries(dataset)
    t0 = time.perf_counter()
    corpus_full = encoder.encode(
        dataset.corpus_texts, truncate_dim=full, batch_size=batch_size, show_progress=show_progress
    )
    query_full = encoder.encode(query_texts, truncate_dim=full, batch_size=batch_size)
    encode_seconds = time.perf_counter() - t0
    if on_step:
        on_step("encode")
    results = {}
    for dim in dims:
        result = evaluate_embeddings(
            dataset,
            truncate_and_normalize(query_full, dim),
            truncate_and_normalize(corpus_full, dim),
            variant=f"dim={dim}",
        )
        result.seconds += encode_seconds
        results[dim] = result
        if on_step:
            on_step(result.variant)
    return results


#: Final hits of a default ``MatryoshkaIndex.search``: the two-stage evaluation's default
#: candidate count is what such a search rescans (the index's prefetch factor x 10).
DEFAULT_SEARCH_LIMIT = 10


def _fusion_label(index: MatryoshkaIndex) -> str:
    label = index.fusion.upper()
    if index.fusion_weights is not None:
        label += " weights " + "/".join(f"{weight:g}" for weight in index.fusion_weights)
    if index.rrf_k is not None:
        label += f" k={index.rrf_k}"
    return label


def evaluate_two_stage(
    encoder: SSEEncoder,
    dataset: BEIRDataset,
    *,
    coarse_dim: int = 64,
    prefetch_limit: int | None = None,
    client: Client | str | None = None,
    collection_name: str | None = None,
    batch_size: int = 1024,
    mode: SearchMode | str = SearchMode.DENSE,
    index_options: dict[str, Any] | None = None,
) -> EvalResult:
    """Evaluate the two-stage Qdrant pipeline of :class:`sse_integrations.qdrant.MatryoshkaIndex`.

    The ``coarse_dim`` prefix retrieves ``prefetch_limit`` candidates per query and the full
    vector rescores them; the top :data:`MAX_K` are scored like the exact path. The default
    candidate count is what a default ``search(limit=10)`` rescans, so the top 10 (every
    @1..@10 metric) are exactly what that search returns; a ``prefetch_limit`` below
    :data:`MAX_K` also caps the ranked list.
    Without ``client`` the embedded engine (Qdrant Edge) runs in a temporary folder (needs
    ``sse-integrations[qdrant]``); ``client`` may also be a qdrant-client client or a folder path.
    ``mode`` "sparse" or "hybrid" evaluates the BM25 sparse vector alone or fused with the
    two-stage dense result (``MatryoshkaIndex(sparse=True)``); ``index_options`` go to the
    index (``fusion``, ``fusion_weights``, ``rrf_k``, ``fusion_factor``, ...).
    """
    from ..qdrant import DEFAULT_PREFETCH_FACTOR  # ImportError names the extra

    if prefetch_limit is None:
        prefetch_limit = DEFAULT_PREFETCH_FACTOR * DEFAULT_SEARCH_LIMIT

    start = time.perf_counter()
    name = collection_name or f"sse-eval-{dataset.name}-{coarse_dim}-{mode}"
    with contextlib.ExitStack() as cleanup:
        if client is None:
            # The embedded engine (Qdrant Edge) in a temporary folder, removed afterwards.
            client = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="sse-eval-"))
        return _evaluate_index(
            encoder, dataset, client, name, coarse_dim, prefetch_limit, batch_size, mode, index_options, start
        )


def _evaluate_index(
    encoder: SSEEncoder,
    dataset: BEIRDataset,
    client: Client | str,
    name: str,
    coarse_dim: int,
    prefetch_limit: int,
    batch_size: int,
    mode: SearchMode | str,
    index_options: dict[str, Any] | None,
    start: float,
) -> EvalResult:
    from ..qdrant import MatryoshkaIndex

    index = MatryoshkaIndex(
        client,
        name,
        encoder,
        coarse_dim=coarse_dim,
        batch_size=batch_size,
        show_progress=False,
        sparse=mode != "dense",
        **(index_options or {}),
    )
    try:
        index.add_texts(dataset.corpus_texts, ids=dataset.corpus_ids)
        index.optimize()
        qids, query_texts, relevant = _eval_queries(dataset)
        # The pipeline cannot return more than its candidates: a prefetch below MAX_K caps the list.
        hits_per_query = index.search_batch(
            query_texts,
            limit=min(MAX_K, prefetch_limit),
            prefetch_limit=prefetch_limit,
            with_payload=[index.id_key],
            mode=mode,
        )
    finally:
        index.close()
    rankings = {}
    for qid, hits in zip(qids, hits_per_query):
        # Qdrant orders equal scores by point id (a uuid of the document id); re-sorting the
        # returned hits applies the exact path's tie rule (ascending document id) instead.
        scored = {str((hit.payload or {})[index.id_key]): float(hit.score) for hit in hits}
        rankings[qid] = rankings_from_scores({qid: scored})[qid]
    variant = {
        "dense": f"two-stage {coarse_dim}->{_full_dim(encoder)} (prefetch {prefetch_limit})",
        "sparse": "sparse BM25 (Qdrant IDF)",
        "hybrid": f"hybrid: two-stage {coarse_dim}->{_full_dim(encoder)} + BM25, {_fusion_label(index)}",
    }[mode]
    if index.passages is not None and mode != "sparse":
        stage = index.passages
        variant += f" + best {stage.tokens}-token passage at {stage.dim} (weight {stage.weight:g})"
    return EvalResult(
        dataset=dataset.name,
        variant=variant,
        metrics=evaluate_rankings(rankings, relevant),
        n_queries=len(qids),
        n_corpus=len(dataset.corpus_ids),
        problems=dataset.problems(),
        seconds=time.perf_counter() - start,
    )
