"""``add_texts`` with the encoding in a helper process (the default for bulk adds) against a worker thread.

Each run is its own Python process that loads the bundled model, adds N two-sentence
documents (``benchmarks/scale.py``'s corpus) to a fresh embedded Qdrant folder with the
package's defaults, and reports the ``add_texts`` seconds (encode + upsert; ``optimize()`` is
not part of it: it does not depend on where the encoding ran). Runs alternate between the two
settings, ``encode_process_from`` at its default and ``None`` (a worker thread), so drifts of
the machine's speed touch both; the table gives medians and ranges.

Usage: python benchmarks/encode_process.py [--size 100000] [--pairs 5] [--sparse] [--workdir DIR] [--no-write]
Writes the table to docs/benchmarks.md (section "encode_process") unless --no-write.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine_line, markdown_table, write_section

SETTINGS = {"helper process (default)": "default", "worker thread (encode_process_from=None)": "thread"}


def run_once(setting: str, size: int, sparse: bool, workdir: Path) -> dict:
    """One add in this process (called by the child runs): seconds and the documents stored."""
    import scale

    from sse_integrations import SSEEncoder
    from sse_integrations.qdrant import MatryoshkaIndex

    docs, _ = scale.load_corpus(size, 10)
    folder = workdir / f"encode-process-{setting}"
    shutil.rmtree(folder, ignore_errors=True)
    settings = {"encode_process_from": None} if setting == "thread" else {}
    index = MatryoshkaIndex(folder, "docs", SSEEncoder.from_pretrained(), sparse=sparse, **settings)
    start = time.perf_counter()
    index.add_texts(docs, ids=list(range(len(docs))), show_progress=False)
    seconds = time.perf_counter() - start
    stored = index.count()
    index.close()
    shutil.rmtree(folder)
    return {"add_s": seconds, "stored": stored}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--sparse", action="store_true", help="indexes with sparse=True (BM25 vectors too)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--run", choices=sorted(SETTINGS.values()), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        print(json.dumps(run_once(args.run, args.size, args.sparse, args.workdir)))
        return
    started = time.perf_counter()
    seconds: dict[str, list[float]] = {setting: [] for setting in SETTINGS.values()}
    for pair in range(args.pairs + 1):  # the first pair warms the disk cache and is not counted
        for setting in SETTINGS.values():
            command = [
                sys.executable,
                __file__,
                "--run",
                setting,
                "--size",
                str(args.size),
                "--workdir",
                str(args.workdir),
            ]
            output = subprocess.run(
                command + (["--sparse"] if args.sparse else []), check=True, capture_output=True, text=True
            )
            result = json.loads(output.stdout.strip().splitlines()[-1])
            if result["stored"] != args.size:
                raise SystemExit(f"{setting}: stored {result['stored']} of {args.size} documents")
            if pair:
                seconds[setting].append(result["add_s"])
            print(f"pair {pair} {setting}: add {result['add_s']:.2f} s", flush=True)
    baseline = statistics.median(seconds["thread"])
    rows = []
    for label, setting in SETTINGS.items():
        median = statistics.median(seconds[setting])
        rows.append(
            [
                label,
                f"{median:.2f} ({min(seconds[setting]):.2f}-{max(seconds[setting]):.2f})",
                f"{args.size / median:,.0f}",
                f"{median / baseline:.2f}",
            ]
        )
    kind = "with `sparse=True`" if args.sparse else "dense (the package defaults)"
    markdown = "\n\n".join(
        [
            f"## Where `add_texts` encodes{', with `sparse=True`' if args.sparse else ''} (`benchmarks/encode_process.py`)",
            f"`python benchmarks/encode_process.py --size {args.size} --pairs {args.pairs}"
            f"{' --sparse' if args.sparse else ''}`: {args.size:,} two-sentence documents, {kind}, "
            "into a fresh embedded Qdrant folder; each run its own process, the two settings taking "
            f"turns, {args.pairs} pairs after a warm-up pair; `add_texts` seconds (encode + upsert, "
            f"without `optimize()`), median (min-max). {machine_line()} "
            f"Run time {time.perf_counter() - started:.0f} s.",
            markdown_table(["encoding in", "add_texts s", "documents/s", "ratio to the thread"], rows),
        ]
    )
    print(markdown)
    if not args.no_write:
        write_section("encode_process" + ("_sparse" if args.sparse else ""), markdown)


if __name__ == "__main__":
    main()
