"""The metrics of the SSE model cards, their exact cosine ranking, and tables of results.

The metric definitions are those of sentence-transformers' ``InformationRetrievalEvaluator``
(the evaluator the model cards' NanoBEIR tables come from), re-implemented on numpy:

* ranking: cosine similarity, descending, ties broken by ascending corpus id (string order);
* relevance is binary: a qrels row with score > 0 makes the document relevant, its grade is
  ignored (rows with score <= 0 are read and kept, but mark nothing relevant);
* a query is evaluated when it has text and at least one relevant document; every metric is
  the unweighted mean over those queries;
* ``accuracy@k``: a relevant document is in the top k; ``precision@k``: relevant hits in the
  top k divided by k; ``recall@k``: hits divided by the number of relevant documents;
  ``mrr@10``: 1 / rank of the first relevant hit within the top 10; ``ndcg@10``: binary DCG
  over the top 10 divided by the DCG of ``min(n_relevant, 10)`` hits;
  ``map@100``: sum of precision at each relevant hit within the top 100, divided by
  ``min(100, n_relevant)``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ACCURACY_AT_K: tuple[int, ...] = (1, 3, 5, 10)
PRECISION_RECALL_AT_K: tuple[int, ...] = (1, 3, 5, 10)
NDCG_AT_K = 10
MRR_AT_K = 10
MAP_AT_K = 100
#: How deep a ranking has to be for every metric above.
MAX_K = max(*ACCURACY_AT_K, *PRECISION_RECALL_AT_K, NDCG_AT_K, MRR_AT_K, MAP_AT_K)

#: Metric names, in the order (and with the names) of the model cards' tables.
METRIC_NAMES: tuple[str, ...] = (
    *(f"cosine_accuracy@{k}" for k in ACCURACY_AT_K),
    *(f"cosine_precision@{k}" for k in PRECISION_RECALL_AT_K),
    *(f"cosine_recall@{k}" for k in PRECISION_RECALL_AT_K),
    f"cosine_ndcg@{NDCG_AT_K}",
    f"cosine_mrr@{MRR_AT_K}",
    f"cosine_map@{MAP_AT_K}",
)


def _id_ranks(corpus_ids: Sequence[str]) -> np.ndarray:
    """Position of each id in ascending string order: the tie-break key of the ranking."""
    order = sorted(range(len(corpus_ids)), key=corpus_ids.__getitem__)
    ranks = np.empty(len(corpus_ids), dtype=np.int64)
    ranks[np.asarray(order, dtype=np.int64)] = np.arange(len(corpus_ids), dtype=np.int64)
    return ranks


def _select_top(scores: np.ndarray, keys: np.ndarray, columns: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best entries under the order (-score, key); returns (columns, scores).

    Candidates are narrowed with a partial sort first; every entry tied with the k-th best
    score is kept as a candidate so that the tie-break by id is exact, not left to argpartition.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == 0:
        return columns[:, :0], scores[:, :0]
    if k < n:
        kth = np.partition(scores, n - k, axis=1)[:, n - k : n - k + 1]
        width = int((scores >= kth).sum(axis=1).max())
        if width < n:
            cand = np.argpartition(-scores, width - 1, axis=1)[:, :width]
            scores = np.take_along_axis(scores, cand, axis=1)
            keys = np.take_along_axis(keys, cand, axis=1)
            columns = np.take_along_axis(columns, cand, axis=1)
    order = np.lexsort((keys, -scores), axis=1)[:, :k]
    return np.take_along_axis(columns, order, axis=1), np.take_along_axis(scores, order, axis=1)


def _normalized(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-d array of vectors, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def rank_by_cosine(
    query_vectors: np.ndarray,
    corpus_vectors: np.ndarray,
    corpus_ids: Sequence[str],
    *,
    top_k: int = MAX_K,
    query_chunk_size: int = 256,
    corpus_chunk_size: int = 50_000,
) -> list[list[tuple[str, float]]]:
    """Exact cosine top-k for every query, ties broken by ascending corpus id.

    Works on chunks of ``query_chunk_size x corpus_chunk_size`` scores, so memory stays bounded
    on large corpora; the result does not depend on the chunk sizes.

    Returns:
        per query, ``[(corpus_id, score), ...]`` best first, at most ``top_k`` long.
    """
    queries = _normalized(query_vectors).astype(np.float64)
    corpus = _normalized(corpus_vectors)  # cast to float64 per chunk, to bound memory
    if corpus.shape[0] != len(corpus_ids):
        raise ValueError(f"{corpus.shape[0]} corpus vectors but {len(corpus_ids)} corpus ids")
    if len(set(corpus_ids)) != len(corpus_ids):
        raise ValueError("corpus ids must be unique")
    if queries.shape[0] and corpus.shape[0] and queries.shape[1] != corpus.shape[1]:
        raise ValueError(f"query dim {queries.shape[1]} != corpus dim {corpus.shape[1]}")
    if query_chunk_size < 1 or corpus_chunk_size < 1 or top_k < 1:
        raise ValueError("top_k and chunk sizes must be positive")
    id_ranks = _id_ranks(list(corpus_ids))
    rankings: list[list[tuple[str, float]]] = []
    for q0 in range(0, queries.shape[0], query_chunk_size):
        q_block = queries[q0 : q0 + query_chunk_size]
        best_cols = np.empty((q_block.shape[0], 0), dtype=np.int64)
        best_scores = np.empty((q_block.shape[0], 0), dtype=np.float32)
        for c0 in range(0, corpus.shape[0], corpus_chunk_size):
            # Float64 products rounded to float32: BLAS sums in an order that depends on the block
            # shape, and the rounding absorbs that, so scores (and exact ties between identical
            # documents) do not change with the chunk sizes.
            block = (q_block @ corpus[c0 : c0 + corpus_chunk_size].T.astype(np.float64)).astype(np.float32)
            # broadcast views, not (queries x chunk) copies
            cols = np.broadcast_to(np.arange(c0, c0 + block.shape[1], dtype=np.int64), block.shape)
            keys = np.broadcast_to(id_ranks[c0 : c0 + block.shape[1]], block.shape)
            chunk_cols, chunk_scores = _select_top(block, keys, cols, top_k)
            merged_cols = np.concatenate([best_cols, chunk_cols], axis=1)
            merged_scores = np.concatenate([best_scores, chunk_scores], axis=1)
            best_cols, best_scores = _select_top(merged_scores, id_ranks[merged_cols], merged_cols, top_k)
        for cols_row, scores_row in zip(best_cols.tolist(), best_scores.tolist()):
            rankings.append([(corpus_ids[c], s) for c, s in zip(cols_row, scores_row)])
    return rankings


def rankings_from_scores(scores: Mapping[str, Mapping[str, float]], top_k: int = MAX_K) -> dict[str, list[str]]:
    """Turn ``{query id: {corpus id: score}}`` into ranked id lists, ties by ascending id."""
    return {
        qid: [cid for cid, _ in sorted(hits.items(), key=lambda item: (-item[1], item[0]))[:top_k]]
        for qid, hits in scores.items()
    }


def _dcg(hits: Sequence[bool | int]) -> float:
    return sum(1.0 / math.log2(rank + 2) for rank, hit in enumerate(hits) if hit)


def query_metrics(ranking: Sequence[str], relevant: Collection[str]) -> dict[str, float]:
    """Every metric of :data:`METRIC_NAMES` for one query (ranking best first)."""
    if not relevant:
        raise ValueError("a query needs at least one relevant document to be evaluated")
    if len(set(ranking)) != len(ranking):
        raise ValueError("a ranking lists a corpus id twice")
    hits = [cid in relevant for cid in ranking[:MAX_K]]
    n_rel = len(relevant)
    out: dict[str, float] = {}
    for k in ACCURACY_AT_K:
        out[f"cosine_accuracy@{k}"] = float(any(hits[:k]))
    for k in PRECISION_RECALL_AT_K:
        out[f"cosine_precision@{k}"] = sum(hits[:k]) / k
    for k in PRECISION_RECALL_AT_K:
        out[f"cosine_recall@{k}"] = sum(hits[:k]) / n_rel
    ideal = _dcg([True] * min(n_rel, NDCG_AT_K))
    out[f"cosine_ndcg@{NDCG_AT_K}"] = _dcg(hits[:NDCG_AT_K]) / ideal
    first = next((rank for rank, hit in enumerate(hits[:MRR_AT_K]) if hit), None)
    out[f"cosine_mrr@{MRR_AT_K}"] = 0.0 if first is None else 1.0 / (first + 1)
    found = 0
    precision_sum = 0.0
    for rank, hit in enumerate(hits[:MAP_AT_K]):
        if hit:
            found += 1
            precision_sum += found / (rank + 1)
    out[f"cosine_map@{MAP_AT_K}"] = precision_sum / min(MAP_AT_K, n_rel)
    return out


def evaluate_rankings(
    rankings: Mapping[str, Sequence[str]],
    relevant_docs: Mapping[str, Collection[str]],
) -> dict[str, float]:
    """Mean metrics over the queries of ``relevant_docs`` that have a relevant document.

    A query with relevant documents but no entry in ``rankings`` counts with an empty
    ranking (all zeros) rather than being skipped.

    Args:
        rankings: query id -> corpus ids, best first (at least :data:`MAX_K` deep for MAP@100).
        relevant_docs: query id -> relevant corpus ids (may include ids absent from the corpus).
    """
    per_query = [query_metrics(rankings.get(qid, ()), rel) for qid, rel in relevant_docs.items() if rel]
    if not per_query:
        raise ValueError("no query has a relevant document; nothing to evaluate")
    return {name: float(np.mean([m[name] for m in per_query])) for name in METRIC_NAMES}


@dataclass
class EvalResult:
    """Metrics of one system (e.g. ``dim=64``) on one dataset, with what was counted."""

    dataset: str
    variant: str
    metrics: dict[str, float]
    n_queries: int
    n_corpus: int
    problems: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "variant": self.variant,
            "metrics": dict(self.metrics),
            "n_queries": self.n_queries,
            "n_corpus": self.n_corpus,
            "problems": dict(self.problems),
            "seconds": round(self.seconds, 4),
        }


def mean_metrics(results: Sequence[EvalResult]) -> dict[str, float]:
    """Unweighted mean of each metric over datasets, like the model cards' "NanoBEIR mean" row."""
    if not results:
        raise ValueError("no results to average")
    return {name: float(np.mean([r.metrics[name] for r in results])) for name in METRIC_NAMES}


def _short(name: str) -> str:
    return name.removeprefix("cosine_").replace("accuracy", "acc").replace("precision", "P").replace("recall", "R")


def markdown_table(results: Sequence[EvalResult], *, mean_label: str = "mean", digits: int = 4) -> str:
    """One row per dataset (plus a mean row when there are several), one column per metric."""
    header = ["dataset", "queries", "docs", *(_short(n) for n in METRIC_NAMES)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in results:
        cells = [r.dataset, str(r.n_queries), str(r.n_corpus), *(f"{r.metrics[n]:.{digits}f}" for n in METRIC_NAMES)]
        lines.append("| " + " | ".join(cells) + " |")
    if len(results) > 1:
        mean = mean_metrics(results)
        cells = [f"**{mean_label}**", "", "", *(f"{mean[n]:.{digits}f}" for n in METRIC_NAMES)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_table(by_variant: Mapping[str, Sequence[EvalResult]], metric: str) -> str:
    """One row per dataset (plus a mean row when there are several), one column per variant, for ``metric``."""
    variants = list(by_variant)
    datasets = [r.dataset for r in next(iter(by_variant.values()))]
    lines = [
        "| dataset | " + " | ".join(variants) + " |",
        "|---|" + "|".join(["---:"] * len(variants)) + "|",
    ]
    for i, name in enumerate(datasets):
        lines.append(f"| {name} | " + " | ".join(f"{by_variant[v][i].metrics[metric]:.4f}" for v in variants) + " |")
    if len(datasets) > 1:
        means = [mean_metrics(by_variant[v])[metric] for v in variants]
        lines.append("| **mean** | " + " | ".join(f"{m:.4f}" for m in means) + " |")
    return "\n".join(lines)
