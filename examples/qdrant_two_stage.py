"""Two-stage Matryoshka search with Qdrant: index Japanese documents, search coarse 64 -> full 512.

Runs offline on the bundled model and the bundled sample corpus:
    python examples/qdrant_two_stage.py [--model PATH]
The index runs Qdrant's own engine in-process (Qdrant Edge) on a folder; the same code runs on a
Qdrant server: pass QdrantClient(url="http://localhost:6333") instead of the folder. Either way
each search is one query with a nested prefetch, executed by the engine.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from qdrant_client import models

from sse_integrations import SSEEncoder
from sse_integrations.qdrant import MatryoshkaIndex

CORPUS = Path(__file__).resolve().parent.parent / "sse_integrations" / "assets" / "sample_corpus" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    args = parser.parse_args()

    encoder = SSEEncoder.from_pretrained(args.model)  # load once, share with every adapter
    with tempfile.TemporaryDirectory() as folder:  # or a lasting folder such as "qdrant_storage"
        # The collection is an embedded Qdrant shard at folder/sample: vectors "coarse" (64) + "full" (512).
        with MatryoshkaIndex(folder, "sample", encoder) as index:
            run(index)


def run(index: MatryoshkaIndex) -> None:
    rows = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    index.add_texts(
        [row["text"] for row in rows],
        ids=[row["id"] for row in rows],  # caller ids -> deterministic point ids: re-adding updates
        payloads=[{"theme": row["theme"]} for row in rows],
    )
    index.optimize()  # after a bulk load: builds the HNSW graph (and flushes)
    print(f"{index.count()} documents in {index.collection_name!r}")

    query = "雨の日は家で本を読みたい"
    for hit in index.search(query, limit=5):  # 64-dim prefetch, candidates rescored with 512 dims
        print(f"{hit.score:.3f}  {hit.payload['doc_id']:<12} {hit.payload['text'][:40]}")
    print("timings (s):", {step: round(seconds, 5) for step, seconds in index.last_timings.items()})

    # Filters apply in the first stage, so every candidate already matches.
    only_rain = models.Filter(must=[models.FieldCondition(key="theme", match=models.MatchValue(value="rain"))])
    print([hit.payload["doc_id"] for hit in index.search(query, limit=3, filter=only_rain)])

    # Single-stage on the full 512-dim vector, for comparison.
    exact = index.search(query, limit=5, two_stage=False)
    print("same top 5 as single-stage:", [h.id for h in exact] == [h.id for h in index.search(query, limit=5)])


if __name__ == "__main__":
    main()
