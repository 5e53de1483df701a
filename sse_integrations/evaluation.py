"""Retrieval evaluation on BEIR-format data, with the metrics of the SSE model cards.

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

Relevant documents missing from the corpus (unknown ids, or empty text, which the
sentence-transformers NanoBEIR loader drops too) stay in every denominator: they are reported,
never silently forgotten. Qrels whose query id is not in ``queries.jsonl`` cannot be ranked;
they are reported too (a warning and a count, or an error with ``strict=True``).

Only numpy is imported here; Qdrant and tqdm are imported by the functions that need them.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .encoder import SSEEncoder

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


class BEIRFormatError(ValueError):
    """A BEIR folder that cannot be read as such; the message names the file and line."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


@dataclass
class BEIRDataset:
    """A BEIR-format retrieval dataset held in memory.

    ``qrels`` keeps every row of the qrels file (query id -> corpus id -> score), including
    rows that point at ids missing from the corpus or the queries, so that nothing is lost
    between loading and scoring.
    """

    name: str
    corpus_ids: list[str]
    corpus_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]
    path: Path | None = None
    #: ids dropped while loading because their text was empty (as sentence-transformers does).
    empty_corpus_ids: list[str] = field(default_factory=list)
    empty_query_ids: list[str] = field(default_factory=list)

    @property
    def relevant_docs(self) -> dict[str, set[str]]:
        """Query id -> relevant corpus ids (score > 0), for queries with text, in file order."""
        # Iterating the queries (not the qrels) leaves qrels-only ids out: they have no text.
        relevant = {}
        for qid in self.query_ids:
            docs = {cid for cid, score in self.qrels.get(qid, {}).items() if score > 0}
            if docs:
                relevant[qid] = docs
        return relevant

    def evaluated_queries(self) -> tuple[list[str], list[str]]:
        """(ids, texts) of the queries that are scored, in the order of :attr:`relevant_docs`.

        Query vectors passed to :func:`evaluate_embeddings` follow this order.
        """
        text_of = dict(zip(self.query_ids, self.query_texts))
        ids = list(self.relevant_docs)
        return ids, [text_of[qid] for qid in ids]

    @property
    def unknown_query_ids(self) -> list[str]:
        """Query ids of qrels rows that have no (non-empty) entry in ``queries.jsonl``."""
        known = set(self.query_ids)
        return sorted(qid for qid in self.qrels if qid not in known)

    @property
    def unknown_corpus_ids(self) -> list[str]:
        """Corpus ids of qrels rows that have no (non-empty) document in ``corpus.jsonl``."""
        known = set(self.corpus_ids)
        return sorted({cid for docs in self.qrels.values() for cid in docs if cid not in known})

    def problems(self) -> dict[str, int]:
        """Counts of qrels rows pointing at unknown ids, and of entries dropped for empty text."""
        known_q, known_c = set(self.query_ids), set(self.corpus_ids)
        rows_unknown_query = sum(len(docs) for qid, docs in self.qrels.items() if qid not in known_q)
        rows_unknown_corpus = sum(
            1 for qid, docs in self.qrels.items() if qid in known_q for cid in docs if cid not in known_c
        )
        return {
            "qrels_rows_unknown_query": rows_unknown_query,
            "qrels_rows_unknown_corpus": rows_unknown_corpus,
            "unknown_query_ids": len(self.unknown_query_ids),
            "unknown_corpus_ids": len(self.unknown_corpus_ids),
            "empty_corpus_texts": len(self.empty_corpus_ids),
            "empty_query_texts": len(self.empty_query_ids),
        }


def _read_jsonl(path: Path, kind: str) -> Iterable[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BEIRFormatError(f"{path}:{lineno}: malformed JSON in {kind} file: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise BEIRFormatError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
            if "_id" not in record:
                raise BEIRFormatError(f"{path}:{lineno}: {kind} record has no '_id' field")
            text = record.get("text", "")
            if not isinstance(text, str):
                raise BEIRFormatError(f"{path}:{lineno}: 'text' must be a string, got {type(text).__name__}")
            yield lineno, record


def _load_texts(path: Path, kind: str, *, with_title: bool) -> tuple[list[str], list[str], list[str]]:
    ids: list[str] = []
    texts: list[str] = []
    empty: list[str] = []
    seen: dict[str, int] = {}
    for lineno, record in _read_jsonl(path, kind):
        rid = str(record["_id"])
        if rid in seen:
            raise BEIRFormatError(f"{path}:{lineno}: duplicate _id {rid!r} (first on line {seen[rid]})")
        seen[rid] = lineno
        text = record.get("text", "")
        title = record.get("title") if with_title else None
        if title:
            # BEIR's own dense-retrieval code joins title and body with a space.
            text = f"{title} {text}".strip()
        if len(text) == 0:
            # sentence-transformers' NanoBEIR loader drops empty texts; we match it and report.
            empty.append(rid)
            continue
        ids.append(rid)
        texts.append(text)
    return ids, texts, empty


def _load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            cols = line.split("\t")
            if lineno == 1 and cols[0].strip().lower() in {"query-id", "query_id", "qid"}:
                continue  # header row
            if len(cols) == 2:
                # NanoBEIR ships qrels without a score column: every listed pair is relevant.
                cols.append("1")
            if len(cols) != 3:
                raise BEIRFormatError(
                    f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), "
                    f"got {len(cols)}"
                )
            qid, cid, raw_score = (c.strip() for c in cols)
            if not qid or not cid:
                raise BEIRFormatError(f"{path}:{lineno}: empty query-id or corpus-id")
            try:
                score = int(raw_score)
            except ValueError:
                try:
                    as_float = float(raw_score)
                except ValueError:
                    raise BEIRFormatError(f"{path}:{lineno}: score {raw_score!r} is not a number") from None
                if not as_float.is_integer():
                    raise BEIRFormatError(f"{path}:{lineno}: score {raw_score!r} is not an integer grade")
                score = int(as_float)
            docs = qrels.setdefault(qid, {})
            if cid in docs and docs[cid] != score:
                raise BEIRFormatError(
                    f"{path}:{lineno}: conflicting score {score} for ({qid}, {cid}), already {docs[cid]}"
                )
            docs[cid] = score
    return qrels


def load_beir(
    folder: str | Path,
    split: str = "test",
    *,
    strict: bool = False,
    name: str | None = None,
) -> BEIRDataset:
    """Read a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

    Args:
        folder: the dataset folder.
        split: which qrels file to use.
        strict: raise :class:`BEIRFormatError` when qrels point at unknown query or corpus
            ids, instead of warning (the counts are in :meth:`BEIRDataset.problems` either way).
        name: dataset name for reports (default: the folder name).

    Raises:
        FileNotFoundError: a required file is missing.
        BEIRFormatError: a malformed line (the message names the file and line number).
    """
    root = Path(folder)
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    for required in (corpus_path, queries_path, qrels_path):
        if not required.is_file():
            raise FileNotFoundError(f"BEIR folder {root}: missing {required.relative_to(root)}")
    corpus_ids, corpus_texts, empty_corpus = _load_texts(corpus_path, "corpus", with_title=True)
    query_ids, query_texts, empty_queries = _load_texts(queries_path, "queries", with_title=False)
    dataset = BEIRDataset(
        name=name or root.resolve().name,
        corpus_ids=corpus_ids,
        corpus_texts=corpus_texts,
        query_ids=query_ids,
        query_texts=query_texts,
        qrels=_load_qrels(qrels_path),
        path=root,
        empty_corpus_ids=empty_corpus,
        empty_query_ids=empty_queries,
    )
    _report_unknown_ids(dataset, qrels_path, strict=strict)
    if not dataset.relevant_docs:
        raise BEIRFormatError(f"{qrels_path}: no query of {queries_path.name} has a relevant document")
    return dataset


def _report_unknown_ids(dataset: BEIRDataset, qrels_path: Path, *, strict: bool) -> None:
    counts = dataset.problems()
    messages = []
    if counts["qrels_rows_unknown_corpus"]:
        examples = ", ".join(dataset.unknown_corpus_ids[:5])
        messages.append(
            f"{counts['qrels_rows_unknown_corpus']} qrels rows point at {counts['unknown_corpus_ids']} corpus ids "
            f"missing from corpus.jsonl or with empty text (e.g. {examples}); they stay in the denominators "
            "of recall, NDCG and MAP, as relevant documents that can never be retrieved"
        )
    if counts["qrels_rows_unknown_query"]:
        examples = ", ".join(dataset.unknown_query_ids[:5])
        messages.append(
            f"{counts['qrels_rows_unknown_query']} qrels rows belong to {counts['unknown_query_ids']} query ids "
            f"missing from queries.jsonl or with empty text (e.g. {examples}); those queries cannot be ranked "
            "and are not evaluated"
        )
    if not messages:
        return
    text = f"{qrels_path}: " + "; ".join(messages)
    if strict:
        raise BEIRFormatError(text)
    warnings.warn(text, UserWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# Ranking
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Evaluating embeddings, encoders and the two-stage pipeline
# --------------------------------------------------------------------------------------------


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
    from .matryoshka import truncate_and_normalize, validate_dim

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


def _fusion_label(index: Any) -> str:
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
    client: Any = None,
    collection_name: str | None = None,
    batch_size: int = 1024,
    mode: str = "dense",
    index_options: dict[str, Any] | None = None,
) -> EvalResult:
    """Evaluate the two-stage Qdrant pipeline of :class:`sse_integrations.qdrant.MatryoshkaIndex`.

    The ``coarse_dim`` prefix retrieves ``prefetch_limit`` candidates per query and the full
    vector rescores them; the top :data:`MAX_K` are scored like the exact path. The default
    candidate count is what a default ``search(limit=10)`` rescans, so the top 10 (every
    @1..@10 metric) are exactly what that search returns; a ``prefetch_limit`` below
    :data:`MAX_K` also caps the ranked list.
    Without ``client`` an in-memory Qdrant is used (needs ``sse-integrations[qdrant]``).
    ``mode`` "sparse" or "hybrid" evaluates the BM25 sparse vector alone or fused with the
    two-stage dense result (``MatryoshkaIndex(sparse=True)``); ``index_options`` go to the
    index (``fusion``, ``fusion_weights``, ``rrf_k``, ``fusion_factor``, ...).
    """
    from .qdrant import DEFAULT_PREFETCH_FACTOR, MatryoshkaIndex  # ImportError names the extra

    if prefetch_limit is None:
        prefetch_limit = DEFAULT_PREFETCH_FACTOR * DEFAULT_SEARCH_LIMIT

    if client is None:
        from qdrant_client import QdrantClient

        client = QdrantClient(":memory:")
    start = time.perf_counter()
    name = collection_name or f"sse-eval-{dataset.name}-{coarse_dim}-{mode}"
    index = MatryoshkaIndex(client, name, encoder, coarse_dim=coarse_dim, batch_size=batch_size, show_progress=False,
                            sparse=mode != "dense", **(index_options or {}))
    index.add_texts(dataset.corpus_texts, ids=dataset.corpus_ids)
    qids, query_texts, relevant = _eval_queries(dataset)
    # The pipeline cannot return more than its candidates: a prefetch below MAX_K caps the list.
    hits_per_query = index.search_batch(
        query_texts, limit=min(MAX_K, prefetch_limit), prefetch_limit=prefetch_limit, with_payload=[index.id_key],
        mode=mode,
    )
    rankings = {}
    for qid, hits in zip(qids, hits_per_query):
        # Qdrant orders equal scores by point id (a uuid of the document id); re-sorting the
        # returned hits applies the exact path's tie rule (ascending document id) instead.
        scored = {str(hit.payload[index.id_key]): float(hit.score) for hit in hits}
        rankings[qid] = rankings_from_scores({qid: scored})[qid]
    return EvalResult(
        dataset=dataset.name,
        variant={
            "dense": f"two-stage {coarse_dim}->{_full_dim(encoder)} (prefetch {prefetch_limit})",
            "sparse": "sparse BM25 (Qdrant IDF)",
            "hybrid": f"hybrid: two-stage {coarse_dim}->{_full_dim(encoder)} + BM25, {_fusion_label(index)}",
        }[mode],
        metrics=evaluate_rankings(rankings, relevant),
        n_queries=len(qids),
        n_corpus=len(dataset.corpus_ids),
        problems=dataset.problems(),
        seconds=time.perf_counter() - start,
    )


def mean_metrics(results: Sequence[EvalResult]) -> dict[str, float]:
    """Unweighted mean of each metric over datasets, like the model cards' "NanoBEIR mean" row."""
    if not results:
        raise ValueError("no results to average")
    return {name: float(np.mean([r.metrics[name] for r in results])) for name in METRIC_NAMES}


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Command line: ``sse-integrations eval`` (registered by sse_integrations.cli)
# --------------------------------------------------------------------------------------------


def _summary_table(by_variant: Mapping[str, Sequence[EvalResult]], metric: str) -> str:
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


def run_cli(args: argparse.Namespace, encoder: SSEEncoder) -> int:
    """Run ``sse-integrations eval``: markdown tables on stdout, progress and warnings on stderr.

    ``args`` carries the options :mod:`sse_integrations.cli` defines for the subcommand.
    """
    import sys

    from tqdm.auto import tqdm

    dims = args.dims if args.dims is not None else list(encoder.matryoshka_dims)
    datasets = []
    for folder in args.data:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            datasets.append(load_beir(folder, args.split, strict=args.strict))
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)

    by_variant: dict[str, list[EvalResult]] = {}
    modes = list(dict.fromkeys((["dense"] if args.two_stage else []) + list(getattr(args, "modes", []) or [])))
    steps = len(datasets) * (1 + len(dims) + len(modes))
    hybrid_options = None
    if "hybrid" in modes:
        from .qdrant import fusion_options

        hybrid_options = fusion_options(args)
    with tqdm(total=steps, desc="eval", unit="step", file=sys.stderr, disable=args.no_progress) as bar:
        for dataset in datasets:
            bar.set_postfix_str(f"{dataset.name} encode")

            def step(label: str, name: str = dataset.name) -> None:
                bar.set_postfix_str(f"{name} {label}")
                bar.update()

            for result in evaluate_encoder(encoder, dataset, dims, batch_size=args.batch_size, on_step=step).values():
                by_variant.setdefault(result.variant, []).append(result)
            for mode in modes:
                bar.set_postfix_str(f"{dataset.name} {mode}")
                result = evaluate_two_stage(
                    encoder,
                    dataset,
                    coarse_dim=args.coarse_dim,
                    prefetch_limit=args.prefetch_limit,
                    batch_size=args.batch_size,
                    mode=mode,
                    index_options=hybrid_options if mode == "hybrid" else None,
                )
                by_variant.setdefault(result.variant, []).append(result)
                bar.update()

    print(f"# Retrieval evaluation: {encoder!r}, split {args.split!r}\n")
    for variant, results in by_variant.items():
        print(f"## {variant}\n\n{markdown_table(results)}\n")
    print(f"## NDCG@10 by variant\n\n{_summary_table(by_variant, f'cosine_ndcg@{NDCG_AT_K}')}")

    if args.json_path:
        payload = {
            "model": args.model,
            "encoder": repr(encoder),
            "split": args.split,
            "metric_names": list(METRIC_NAMES),
            "results": [r.to_dict() for results in by_variant.values() for r in results],
            "mean": {v: mean_metrics(rs) for v, rs in by_variant.items()} if len(datasets) > 1 else {},
        }
        Path(args.json_path).write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json_path}", file=sys.stderr)
    return 0
