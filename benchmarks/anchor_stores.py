"""Our BM25 sparse encoder inside langchain-qdrant's and LlamaIndex's own Qdrant stores (NDCG@10).

Each store is the anchor package's real ``QdrantVectorStore`` over qdrant-client local mode
(``:memory:``), its dense side ``SSEEmbeddings`` at 512 dimensions (exact, single stage), its
sparse side :class:`SSESparseEmbeddings` / :class:`SSESparseEncoder` on a collection with
``Modifier.IDF``. Beside them: ``MatryoshkaIndex`` on the same local-mode engine (dense two-stage
64 -> 512 with 500 candidates; hybrid = RRF k=2 of that and BM25, 50 candidates each, for
``search(limit=10)``), and the stores' usual sparse model, fastembed's ``Qdrant/bm25``, when
``--fastembed-python`` names an interpreter that has fastembed (see
benchmarks/fastembed_bm25_vectors.py: the hub is out of reach, so its code runs from an empty
model folder, without its English stopword list), given the same IDF collection.

Rows per store:
- langchain-qdrant hybrid at ``k=10`` is what ``similarity_search(k=10)`` does: RRF of the top 10
  of each side; ``k=50 -> 10`` asks for 50 and keeps 10, the fusion depth of ``MatryoshkaIndex``;
- LlamaIndex hybrid takes ``similarity_top_k=50, sparse_top_k=50, hybrid_top_k=10``, fused by our
  ``store_options()`` RRF, or by the store's default relative-score fusion (alpha 0.5);
- "running" weighs documents with the running average length over the store's batches of 64
  (the default), "fit" with the corpus average (``fit(corpus)``, = ``MatryoshkaIndex``'s
  weights), "b=0" without length normalisation.
Ties in score are ordered by document id for every system (as the package's evaluation does).
"zero-hit" counts the queries whose sparse search returned nothing (Japanese = with kana or kanji).

Data (BEIR folders, test halves): tests/data/tatoeba_ja_dev (paraphrases), the VS Code keyword
set and the Japanese document set, built into ``--work-dir`` when missing.

Usage:
  python benchmarks/anchor_stores.py --work-dir /tmp/sse-build [--fastembed-python /tmp/fastembed-venv/bin/python]
      [--extra-rows --data PATH[:SPLIT] --section anchor_stores_variants]
Writes the tables to docs/anchor_stores.md (section "anchor_stores", or ``--section``); ms/query
are medians. Local mode scans every point for a sparse query (about 0.4 s per query at 8,000
documents), so the keyword set takes most of the time; ``--extra-rows`` (length variants,
LlamaIndex's relative-score fusion) is meant for the small sets.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_quality import data_sets
from report import DOCS, machine_line, markdown_table, write_section

from sse_integrations import SSEEncoder
from sse_integrations.evaluation import evaluate_rankings, load_beir
from sse_integrations.evaluation.metrics import rankings_from_scores

HERE = Path(__file__).resolve().parent
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
FUSION_DEPTH = 50  # candidates per side that MatryoshkaIndex fuses for search(limit=10)
IDF = None  # set in main() once qdrant_client is imported

Hits = list[tuple[str, float]]


class Row:
    """One system's rankings, zero-hit counts and per-query times on one data set."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.rankings: dict[str, list[str]] = {}
        self.millis: list[float] = []
        self.zero_hits: int | None = None
        self.zero_hits_japanese: int | None = None

    def run(self, qids: Sequence[str], queries: Sequence[str], search: Callable[[str], Hits], sparse: bool) -> Row:
        zero = zero_ja = 0
        for qid, query in zip(qids, queries):
            started = time.perf_counter()
            hits = search(query)
            self.millis.append((time.perf_counter() - started) * 1000)
            self.rankings[qid] = rankings_from_scores({qid: dict(hits)})[qid][:10]
            if not hits:
                zero += 1
                zero_ja += bool(JAPANESE.search(query))
        if sparse:
            self.zero_hits, self.zero_hits_japanese = zero, zero_ja
        return self


# --- MatryoshkaIndex -------------------------------------------------------------------------


def matryoshka_rows(encoder: SSEEncoder, dataset: Any, qids: list[str], queries: list[str]) -> list[Row]:
    from qdrant_client import QdrantClient

    from sse_integrations.qdrant import MatryoshkaIndex

    index = MatryoshkaIndex(QdrantClient(":memory:"), "bench", encoder, sparse=True, show_progress=False)
    index.add_texts(dataset.corpus_texts, ids=dataset.corpus_ids)
    rows = []
    for mode in ("dense", "sparse", "hybrid"):

        def search(query: str, mode: str = mode) -> Hits:
            hits = index.search(query, limit=10, mode=mode, with_payload=[index.id_key])
            return [(str(hit.payload[index.id_key]), hit.score) for hit in hits]

        rows.append(Row(f"MatryoshkaIndex {mode}").run(qids, queries, search, sparse=mode == "sparse"))
    index.close()
    return rows


# --- langchain-qdrant ------------------------------------------------------------------------


def replay_sparse_embeddings(vectors: dict[str, list]) -> Any:
    """A langchain-qdrant ``SparseEmbeddings`` that returns precomputed vectors (fastembed's, made elsewhere)."""
    from langchain_qdrant import SparseEmbeddings, SparseVector

    class Replay(SparseEmbeddings):
        def embed_documents(self, texts: list[str]) -> list[SparseVector]:
            return [SparseVector(indices=vectors["documents"][t][0], values=vectors["documents"][t][1]) for t in texts]

        def embed_query(self, text: str) -> SparseVector:
            indices, values = vectors["queries"][text]
            return SparseVector(indices=indices, values=values)

    return Replay()


def langchain_rows(
    encoder: SSEEncoder,
    dataset: Any,
    qids: list[str],
    queries: list[str],
    sparse_embedding: Any,
    name: str,
    runs: Sequence[str] = ("sparse", "hybrid 10", "hybrid 50"),
) -> list[Row]:
    from langchain_qdrant import QdrantVectorStore, RetrievalMode

    from sse_integrations.langchain import SSEEmbeddings

    embeddings = SSEEmbeddings(encoder=encoder)
    hybrid = QdrantVectorStore.from_texts(
        dataset.corpus_texts,
        embedding=embeddings,
        sparse_embedding=sparse_embedding,
        retrieval_mode=RetrievalMode.HYBRID,
        sparse_vector_params={"modifier": IDF},
        metadatas=[{"doc_id": doc_id} for doc_id in dataset.corpus_ids],
        location=":memory:",
        collection_name="bench",
    )

    def same_collection(mode: Any) -> Any:
        return QdrantVectorStore(
            hybrid.client, "bench", embedding=embeddings, sparse_embedding=sparse_embedding, retrieval_mode=mode
        )

    def searcher(store: Any, k: int) -> Callable[[str], Hits]:
        def search(query: str) -> Hits:
            found = store.similarity_search_with_score(query, k=k)[:10]
            return [(doc.metadata["doc_id"], score) for doc, score in found]

        return search

    rows = []
    if "dense" in runs:
        search = searcher(same_collection(RetrievalMode.DENSE), 10)
        rows.append(Row("langchain-qdrant dense").run(qids, queries, search, False))
    if "sparse" in runs:
        search = searcher(same_collection(RetrievalMode.SPARSE), 10)
        rows.append(Row(f"langchain-qdrant sparse, {name}").run(qids, queries, search, True))
    for k in (10, FUSION_DEPTH):
        if f"hybrid {k}" in runs:
            label = f"langchain-qdrant hybrid, {name}, k={k}" + (" -> 10" if k != 10 else "")
            rows.append(Row(label).run(qids, queries, searcher(hybrid, k), False))
    hybrid.client.close()
    return rows


# --- LlamaIndex ------------------------------------------------------------------------------


def llama_rows(
    encoder: SSEEncoder,
    dataset: Any,
    qids: list[str],
    queries: list[str],
    options: dict[str, Any],
    name: str,
    relative: bool = False,
) -> list[Row]:
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    client = QdrantClient(":memory:")
    store = QdrantVectorStore("bench", client=client, **options)
    vectors = encoder.encode(dataset.corpus_texts).tolist()
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "anchor-stores")
    nodes = [
        # The id stays out of the text the store encodes (it encodes metadata in EMBED mode).
        TextNode(
            id_=str(uuid.uuid5(namespace, doc_id)),
            text=text,
            metadata={"doc_id": doc_id},
            excluded_embed_metadata_keys=["doc_id"],
            embedding=vector,
        )
        for doc_id, text, vector in zip(dataset.corpus_ids, dataset.corpus_texts, vectors)
    ]
    store.add(nodes)

    def searcher(target: Any, mode: Any) -> Callable[[str], Hits]:
        def search(query: str) -> Hits:
            request = VectorStoreQuery(
                query_embedding=encoder.encode([query])[0].tolist(),
                query_str=query,
                mode=mode,
                similarity_top_k=FUSION_DEPTH if mode == VectorStoreQueryMode.HYBRID else 10,
                sparse_top_k=FUSION_DEPTH if mode == VectorStoreQueryMode.HYBRID else 10,
                hybrid_top_k=10,
            )
            result = target.query(request)
            return [
                (node.metadata["doc_id"], score) for node, score in zip(result.nodes or [], result.similarities or [])
            ]

        return search

    rows = [
        Row(f"LlamaIndex sparse, {name}").run(qids, queries, searcher(store, VectorStoreQueryMode.SPARSE), True),
        Row(f"LlamaIndex hybrid, {name}, RRF").run(qids, queries, searcher(store, VectorStoreQueryMode.HYBRID), False),
    ]
    if relative:
        # The store's own default fusion (hybrid_fusion_fn=None), on the same collection.
        default = QdrantVectorStore("bench", client=client, **{**options, "hybrid_fusion_fn": None})
        search = searcher(default, VectorStoreQueryMode.HYBRID)
        rows.append(Row(f"LlamaIndex hybrid, {name}, relative-score fusion").run(qids, queries, search, False))
    client.close()
    return rows


# --- fastembed ---------------------------------------------------------------------------------


def fastembed_vectors(python: str, dataset: Any, queries: list[str]) -> dict[str, dict[str, list]]:
    """fastembed BM25 vectors by text, computed by ``python`` (an environment with fastembed)."""
    with tempfile.TemporaryDirectory(prefix="fastembed-") as folder:
        texts, out, model_dir = Path(folder) / "texts.json", Path(folder) / "out.json", Path(folder) / "model"
        model_dir.mkdir()
        texts.write_text(json.dumps({"documents": dataset.corpus_texts, "queries": queries}), encoding="utf-8")
        script = HERE / "fastembed_bm25_vectors.py"
        subprocess.run([python, str(script), str(texts), str(out), "--model-dir", str(model_dir)], check=True)
        made = json.loads(out.read_text(encoding="utf-8"))
    return {
        "documents": dict(zip(dataset.corpus_texts, made["documents"])),
        "queries": dict(zip(queries, made["queries"])),
    }


def llama_replay_options(vectors: dict[str, dict[str, list]], options: dict[str, Any]) -> dict[str, Any]:
    def lookup(kind: str) -> Callable[[list[str]], tuple[list, list]]:
        def encode(texts: list[str]) -> tuple[list, list]:
            found = [vectors[kind][text] for text in texts]
            return [v[0] for v in found], [v[1] for v in found]

        return encode

    return {**options, "sparse_doc_fn": lookup("documents"), "sparse_query_fn": lookup("queries")}


# --- the table ---------------------------------------------------------------------------------


def data_set_rows(
    encoder: SSEEncoder, folder: Path, split: str, fastembed_python: str | None, extra: bool
) -> tuple[Any, list[Row]]:
    from sse_integrations.langchain import SSESparseEmbeddings
    from sse_integrations.llama_index import SSESparseEncoder

    dataset = load_beir(folder, split)
    qids, queries = dataset.evaluated_queries()
    rows = matryoshka_rows(encoder, dataset, qids, queries)
    running = SSESparseEmbeddings(encoder=encoder)
    rows += langchain_rows(
        encoder, dataset, qids, queries, running, "SSE running", ("dense", "sparse", "hybrid 10", "hybrid 50")
    )
    # Sparse alone with fitted weights ranks as MatryoshkaIndex sparse (the same vectors, the same engine).
    fitted = SSESparseEmbeddings(encoder=encoder).fit(dataset.corpus_texts)
    rows += langchain_rows(
        encoder, dataset, qids, queries, fitted, "SSE fit", ("sparse", "hybrid 50") if extra else ("hybrid 50",)
    )
    if extra:
        no_length = SSESparseEmbeddings(encoder=encoder, b=0.0)
        rows += langchain_rows(encoder, dataset, qids, queries, no_length, "SSE b=0", ("sparse", "hybrid 50"))
    sse_options = SSESparseEncoder(encoder=encoder).store_options()
    rows += llama_rows(encoder, dataset, qids, queries, sse_options, "SSE running", relative=extra)
    if fastembed_python:
        vectors = fastembed_vectors(fastembed_python, dataset, queries)
        replay = replay_sparse_embeddings(vectors)
        rows += langchain_rows(encoder, dataset, qids, queries, replay, "fastembed BM25", ("sparse", "hybrid 10"))
        rows += llama_rows(
            encoder, dataset, qids, queries, llama_replay_options(vectors, sse_options), "fastembed BM25"
        )
    for row in rows:
        ndcg = evaluate_rankings(row.rankings, dataset.relevant_docs)["cosine_ndcg@10"]
        print(f"{dataset.name} {row.label}: {ndcg:.4f} ({statistics.median(row.millis):.1f} ms/query)", file=sys.stderr)
    return dataset, rows


def main() -> None:
    global IDF
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--data", action="append", default=[], metavar="PATH[:SPLIT]")
    parser.add_argument("--fastembed-python", default=None, help="a Python that has fastembed installed")
    parser.add_argument(
        "--extra-rows",
        action="store_true",
        help="add the length variants (fit and b=0 sparse, b=0 hybrid) and LlamaIndex's relative-score fusion",
    )
    parser.add_argument("--section", default="anchor_stores", help="the docs section to write")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()
    from qdrant_client import models

    IDF = models.Modifier.IDF
    encoder = SSEEncoder.from_pretrained()
    sections = []
    for folder, split in data_sets(args):
        dataset, rows = data_set_rows(encoder, folder, split, args.fastembed_python, args.extra_rows)
        reference = {row.label: row for row in rows}["MatryoshkaIndex hybrid"]
        reference_ndcg = evaluate_rankings(reference.rankings, dataset.relevant_docs)["cosine_ndcg@10"]
        cells = []
        for row in rows:
            ndcg = evaluate_rankings(row.rankings, dataset.relevant_docs)["cosine_ndcg@10"]
            zero = "" if row.zero_hits is None else f"{row.zero_hits} / {row.zero_hits_japanese}"
            delta = f"{ndcg - reference_ndcg:+.4f}" if "hybrid" in row.label else ""
            cells.append([row.label, f"{ndcg:.4f}", delta, zero, f"{statistics.median(row.millis):.1f}"])
        headers = ["system", "NDCG@10", "vs MatryoshkaIndex hybrid", "zero-hit queries (all / Japanese)", "ms/query"]
        title = (
            f"### {dataset.name} ({split}): {len(dataset.relevant_docs)} queries, {len(dataset.corpus_ids)} documents"
        )
        sections.append(f"{title}\n\n{markdown_table(headers, cells)}\n")
    fastembed_note = (
        "fastembed BM25 rows: fastembed's own code, run from an empty model folder (no stopwords)."
        if args.fastembed_python
        else "fastembed BM25 rows: not run (no --fastembed-python)."
    )
    markdown = (
        f"## The anchors' own Qdrant stores with our sparse encoder, NDCG@10 (`benchmarks/anchor_stores.py`"
        f"{' --extra-rows' if args.extra_rows else ''})\n\n"
        f"Bundled model, qdrant-client local mode. {fastembed_note} {machine_line()}\n\n" + "\n".join(sections)
    )
    print(markdown)
    if not args.no_write:
        write_section(args.section, markdown, DOCS / "anchor_stores.md")


if __name__ == "__main__":
    main()
