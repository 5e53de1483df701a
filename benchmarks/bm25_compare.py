"""Qdrant's own BM25 (``qdrant_edge.Bm25``) beside ours (``sse_integrations.sparse``): NDCG@10 and speed.

Both sparse models feed the same engine: an Edge shard with one IDF-modified sparse vector,
queried once per query, so the only difference is how text becomes terms and weights.
- ours: the bundled model's Unigram tokenizer (+ character bigrams, our defaults), BM25
  term-frequency weights with the corpus's average length;
- Qdrant's: ``Bm25Config(tokenizer=Multilingual, language="japanese")`` (a Japanese
  morphological segmenter, Japanese stopwords) with the corpus's average length in its tokens.

Usage:
  python benchmarks/bm25_compare.py [--data PATH[:SPLIT] ...]
Default sets: tests/data/tatoeba_ja_dev (test), and when present
/work/sse-build/v2/dev/vscode_keywords and /work/sse-build/v2/dev/ja_docs (test halves).
Prints a markdown table; writes it to docs/hybrid.md (section "bm25_compare") with --write.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import qdrant_edge as edge

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOCS, data_spec, machine_line, markdown_table, write_section

from sse_integrations import SSEEncoder
from sse_integrations.evaluation import evaluate_rankings, load_beir
from sse_integrations.sparse import SparseEncoder

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = [
    ROOT / "tests" / "data" / "tatoeba_ja_dev",
    Path("/work/sse-build/v2/dev/vscode_keywords"),
    Path("/work/sse-build/v2/dev/ja_docs"),
]


def ours(corpus: list[str], encoder: SSEEncoder) -> tuple[Callable, Callable]:
    model = SparseEncoder(encoder.tokenizer).fit(corpus)

    def documents(texts: list[str]) -> list[edge.SparseVector]:
        return [edge.SparseVector(v.indices, v.values) for v in model.encode_documents(texts)]

    def queries(texts: list[str]) -> list[edge.SparseVector]:
        return [edge.SparseVector(v.indices, v.values) for v in model.encode_queries(texts)]

    return documents, queries


def qdrants(corpus: list[str], encoder: SSEEncoder) -> tuple[Callable, Callable]:
    settings = {"tokenizer": edge.TokenizerType.Multilingual, "language": "japanese"}
    # Qdrant's document weights need the average length in its own tokens: one pass to count them.
    # With b=0 a weight is tf * (k + 1) / (tf + k), so each term's count can be read back from it.
    probe = edge.Bm25(edge.Bm25Config(**settings, k=1.2, b=0.0))
    lengths = [sum(v * 1.2 / (2.2 - v) for v in probe.embed_document(text).values) for text in corpus]
    model = edge.Bm25(edge.Bm25Config(**settings, avg_len=max(1.0, statistics.mean(lengths))))

    def documents(texts: list[str]) -> list[edge.SparseVector]:
        return [model.embed_document(text) for text in texts]

    def queries(texts: list[str]) -> list[edge.SparseVector]:
        return [model.embed_query(text) for text in texts]

    return documents, queries


def run(name: str, make: Callable, dataset, encoder: SSEEncoder) -> list:
    documents, queries = make(dataset.corpus_texts, encoder)
    with tempfile.TemporaryDirectory() as folder:
        config = edge.EdgeConfig(
            sparse_vectors={"bm25": edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)}, max_search_threads=1
        )
        shard = edge.EdgeShard.create(folder, config)
        started = time.perf_counter()
        vectors = documents(dataset.corpus_texts)
        encode_seconds = time.perf_counter() - started
        points = [
            edge.Point(i, {"bm25": v}, {"id": doc_id}) for i, (doc_id, v) in enumerate(zip(dataset.corpus_ids, vectors))
        ]
        for start in range(0, len(points), 1000):
            shard.update(edge.UpdateOperation.upsert_points(points[start : start + 1000]))
        qids, texts = dataset.evaluated_queries()
        started = time.perf_counter()
        rankings = {}
        for qid, vector in zip(qids, queries(texts)):
            hits = shard.query(
                edge.QueryRequest(limit=10, query=edge.Query.Nearest(vector, using="bm25"), with_payload=True)
            )
            rankings[qid] = [hit.payload["id"] for hit in hits]
        query_ms = (time.perf_counter() - started) * 1000 / max(1, len(qids))
        shard.close()
    metrics = evaluate_rankings(rankings, dataset.relevant_docs)
    return [
        dataset.name,
        name,
        f"{metrics['cosine_ndcg@10']:.4f}",
        f"{len(dataset.corpus_texts) / encode_seconds:,.0f}",
        f"{query_ms:.2f}",
        len(qids),
        len(dataset.corpus_ids),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", action="append", default=[], help="BEIR folder[:split]")
    parser.add_argument("--write", action="store_true", help="write the table to docs/hybrid.md")
    args = parser.parse_args()
    sets = [data_spec(spec) for spec in args.data] or [(p, "test") for p in DEFAULT_SETS if p.exists()]
    encoder = SSEEncoder.from_pretrained()
    rows = []
    for folder, split in sets:
        dataset = load_beir(folder, split, name=f"{folder.name}:{split}")
        for name, make in (
            ("sse sparse.py (Unigram + bigrams)", ours),
            ("qdrant_edge.Bm25 (multilingual, ja)", qdrants),
        ):
            rows.append(run(name, make, dataset, encoder))
            print(" | ".join(str(cell) for cell in rows[-1]), flush=True)
    table = markdown_table(
        ["data", "sparse model", "NDCG@10", "docs encoded/s", "ms/query (encode + search)", "queries", "corpus"], rows
    )
    print(table)
    if args.write:
        write_section("bm25_compare", f"{table}\n\n{machine_line()}", DOCS / "hybrid.md")


if __name__ == "__main__":
    main()
