"""Chroma + SSE, offline: a persistent collection embedded by SSE, queried with a metadata filter, reopened.

Run:  python examples/chroma_collection.py                 (the bundled default model)
      python examples/chroma_collection.py --model PATH_OR_HUB_ID --dim 128 --path ./chroma_db
Needs: pip install "sse-integrations[chroma]"

The collection stores its embedding function's config ("sse", model, truncate_dim, ...).
The last step reopens it in a new Python process that passes no embedding function: importing
sse_integrations.chroma registers "sse", and Chroma rebuilds the model from the config.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import chromadb
from chromadb.config import Settings

import sse_integrations
from sse_integrations.chroma import SSEEmbeddingFunction, get_or_create_collection

# The demo corpus ships inside the package (308 Japanese Tatoeba documents, CC-BY 2.0 FR).
CORPUS = Path(sse_integrations.__file__).resolve().parent / "assets" / "sample_corpus" / "corpus.jsonl"
COLLECTION = "sample_corpus"
QUESTIONS = [("窓辺で眠る猫", None), ("電車で通勤する", None), ("傘を持って出かける", {"theme": "rain"})]
SETTINGS = Settings(anonymized_telemetry=False)


def show(collection: chromadb.Collection, question: str, where: dict | None) -> None:
    result = collection.query(query_texts=[question], n_results=3, where=where)
    label = f"{question}" + (f"  where={json.dumps(where, ensure_ascii=False)}" if where else "")
    print(f"  {label}")
    for doc_id, distance, text in zip(result["ids"][0], result["distances"][0], result["documents"][0]):
        print(f"    {doc_id:<12} {distance:.3f}  {text[:40]}…")


def build(path: Path, model: str | None, dim: int | None) -> None:
    documents = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
    function = SSEEmbeddingFunction(model, truncate_dim=dim)
    client = chromadb.PersistentClient(path=str(path), settings=SETTINGS)
    # Unlike client.get_or_create_collection, this refuses an existing collection of another model or width.
    collection = get_or_create_collection(client, COLLECTION, function)
    # upsert keeps re-runs on the same --path idempotent.
    collection.upsert(
        ids=[doc["id"] for doc in documents],
        documents=[doc["text"] for doc in documents],
        metadatas=[{"theme": doc["theme"], "title": doc["title"]} for doc in documents],
    )
    print(f"collection {COLLECTION!r} at {path}: {collection.count()} documents, {function.truncate_dim}-dim vectors")
    print(f"stored embedding function: {json.dumps(collection.configuration_json['embedding_function'])[:160]}…\n")
    for question, where in QUESTIONS:
        show(collection, question, where)


def reopen(path: Path) -> None:
    # No embedding function is passed: the collection's own config says which SSE model to load.
    # The module-level import of sse_integrations.chroma is what registered "sse" in this process.
    collection = chromadb.PersistentClient(path=str(path), settings=SETTINGS).get_collection(COLLECTION)
    print(f"\nreopened in a new process, {collection.count()} documents:")
    for question, where in QUESTIONS:
        show(collection, question, where)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    parser.add_argument("--dim", type=int, default=256, help="Matryoshka width to store (32..512; default 256)")
    parser.add_argument("--path", type=Path, default=None, help="Chroma folder (default: a temporary one)")
    parser.add_argument("--reopen-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.reopen_only:
        reopen(args.path)
        return
    with tempfile.TemporaryDirectory(prefix="sse_chroma_") as scratch:
        path = args.path or Path(scratch) / "chroma_db"
        build(path, args.model, args.dim)
        subprocess.run([sys.executable, __file__, "--reopen-only", "--path", str(path)], check=True)


if __name__ == "__main__":
    main()
