"""Which lexical terms suit Japanese BM25: SSE token ids, character bigrams, or both?

Scores each feature set with exact BM25 (document weights from ``SparseEncoder``, IDF as
Qdrant's ``Modifier.IDF`` computes it: ln(1 + (N - n + 0.5) / (n + 0.5))) on a BEIR folder,
for a few (k1, b) settings, with the bundled model's tokenizer.

Usage: python benchmarks/sparse_features.py [PATH[:SPLIT] ...] (default: tests/data/tatoeba_ja_dev)
Writes the table to docs/hybrid.md (section "sparse_features").
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOCS, data_spec, machine_line, markdown_table, write_section

from sse_integrations import SSEEncoder
from sse_integrations.evaluation import evaluate_rankings, load_beir
from sse_integrations.sparse import FEATURES, SparseEncoder

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [(1.2, 0.75), (1.5, 0.5), (0.9, 0.4)]


def bm25_metrics(dataset, encoder: SparseEncoder) -> dict[str, float]:
    encoder.fit(dataset.corpus_texts)
    columns: dict[int, int] = {}

    def to_matrix(vectors) -> sp.csr_matrix:
        rows, cols, values = [], [], []
        for row, vector in enumerate(vectors):
            rows += [row] * len(vector.indices)
            cols += [columns.setdefault(index, len(columns)) for index in vector.indices]
            values += vector.values
        return rows, cols, values

    documents = to_matrix(encoder.encode_documents(dataset.corpus_texts))
    queries = to_matrix(encoder.encode_queries(dataset.query_texts))
    shape = len(columns)
    doc_matrix = sp.csr_matrix((documents[2], documents[:2]), shape=(len(dataset.corpus_texts), shape))
    query_matrix = sp.csr_matrix((queries[2], queries[:2]), shape=(len(dataset.query_texts), shape))
    document_frequency = np.asarray((doc_matrix > 0).sum(axis=0)).ravel()
    n = doc_matrix.shape[0]
    idf = np.log(1 + (n - document_frequency + 0.5) / (document_frequency + 0.5))
    scores = (query_matrix @ sp.diags(idf) @ doc_matrix.T).toarray()
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    rankings = {qid: [dataset.corpus_ids[j] for j in top[i]] for i, qid in enumerate(dataset.query_ids)}
    return evaluate_rankings(rankings, dataset.relevant_docs)


def main() -> None:
    specs = sys.argv[1:] or [str(ROOT / "tests" / "data" / "tatoeba_ja_dev")]
    sources = [data_spec(spec) for spec in specs]
    datasets = [load_beir(folder, split) for folder, split in sources]
    tokenizer = SSEEncoder.from_pretrained().tokenizer
    rows = []
    for features in FEATURES:
        for k1, b in SETTINGS:
            encoder = SparseEncoder(tokenizer, features=features, k1=k1, b=b)
            rows.append(
                [features, k1, b, *(f"{bm25_metrics(dataset, encoder)['cosine_ndcg@10']:.4f}" for dataset in datasets)]
            )
            print(rows[-1], flush=True)
    sizes = "; ".join(
        f"`{dataset.name}` ({split}): {len(dataset.relevant_docs):,} queries, {len(dataset.corpus_ids):,} documents"
        for dataset, (_, split) in zip(datasets, sources)
    )
    markdown = "\n\n".join(
        [
            "## Sparse features for Japanese BM25 (`benchmarks/sparse_features.py`)",
            f"NDCG@10 of exact BM25. {sizes}. {machine_line()}",
            markdown_table(["features", "k1", "b", *(dataset.name for dataset in datasets)], rows),
        ]
    )
    print(markdown)
    write_section("sparse_features", markdown, DOCS / "hybrid.md")


if __name__ == "__main__":
    main()
