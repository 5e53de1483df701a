"""What a tenant's scope costs a search: one collection of 3 tenants x N documents against the same 3N documents without tenants.

Both are embedded Qdrant folders (Qdrant Edge) on the bundled model, built from the first N
dev-set documents (each tenant holds the same N texts under the same ids), optimized, then
searched with the same queries (two-stage dense, limit 10); the table gives the median
milliseconds per search after a warm-up. Prints only: the figures depend on the machine.

Usage: python benchmarks/tenant_search.py [--docs 1000] [--queries 100]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sse_integrations import SSEEncoder
from sse_integrations.qdrant import MatryoshkaIndex

DEV_SET = Path(__file__).resolve().parent.parent / "tests" / "data" / "tatoeba_ja_dev"
TENANTS = ("a", "b", "c")


def read_texts(name: str, count: int) -> list[str]:
    with open(DEV_SET / name, encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in handle][:count]


def median_ms(search: Callable[[str], object], queries: list[str]) -> float:
    for query in queries[:10]:
        search(query)
    times = []
    for query in queries:
        started = time.perf_counter()
        search(query)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000, help="documents per tenant")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    texts, queries = read_texts("corpus.jsonl", args.docs), read_texts("queries.jsonl", args.queries)
    encoder = SSEEncoder.from_pretrained(None)
    ids = [str(i) for i in range(len(texts))]
    with tempfile.TemporaryDirectory() as folder:
        plain = MatryoshkaIndex(Path(folder) / "plain", "docs", encoder, show_progress=False)
        plain.add_texts(texts * len(TENANTS), ids=[f"{t}-{i}" for t in TENANTS for i in ids])
        plain.optimize()
        scoped = MatryoshkaIndex(Path(folder) / "scoped", "docs", encoder, tenant_field="tenant", show_progress=False)
        for tenant in TENANTS:
            scoped.add_texts(texts, ids=ids, tenant=tenant)
        scoped.optimize()
        rows = [
            (f"{len(TENANTS) * len(texts)} documents, no tenants", median_ms(lambda q: plain.search(q), queries)),
            (
                f"{len(TENANTS)} tenants x {len(texts)}, tenant='b'",
                median_ms(lambda q: scoped.search(q, tenant="b"), queries),
            ),
        ]
        plain.close()
        scoped.close()
    print("| collection | search p50 (ms) |\n| --- | --- |")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} |")


if __name__ == "__main__":
    main()
