"""Loading BEIR-format retrieval data (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

Relevant documents missing from the corpus (unknown ids, or empty text, which the
sentence-transformers NanoBEIR loader drops too) stay in every denominator: they are reported,
never silently forgotten. Qrels whose query id is not in ``queries.jsonl`` cannot be ranked;
they are reported too (a warning and a count, or an error with ``strict=True``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class BEIRFormatError(ValueError):
    """A BEIR folder that cannot be read as such; the message names the file and line."""


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
                    f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}"
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
                    raise BEIRFormatError(f"{path}:{lineno}: score {raw_score!r} is not an integer grade") from None
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
