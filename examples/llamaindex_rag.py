"""LlamaIndex + SSE, offline: documents -> splitter -> two-stage Qdrant vector store -> query engine.

Run:  python examples/llamaindex_rag.py            (the bundled default model)
      python examples/llamaindex_rag.py --model PATH_OR_HUB_ID
Needs: pip install "sse-integrations[llamaindex,qdrant]"
"""

from __future__ import annotations

import argparse
import tempfile

from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.llms.mock import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from qdrant_client import models

from sse_integrations import SSEEncoder
from sse_integrations.llama_index import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore, SSEEmbedding
from sse_integrations.qdrant import MatryoshkaIndex

DOCUMENTS = {
    "cat": ("animals", "猫は一日の大半を眠って過ごし、日当たりのよい窓辺を好む。"),
    "dog": ("animals", "犬は散歩が大好きで、毎朝公園を走り回っている。"),
    "rain": ("weather", "梅雨の時期は毎日のように雨が降り、湿度が高くなる。"),
    "snow": ("weather", "北海道の冬は雪が多く、道路が凍ることもある。"),
    "train": ("travel", "新幹線を使えば東京から大阪まで約二時間半で行ける。"),
    "ramen": ("food", "ラーメンのスープは豚骨、醤油、味噌など地域によって違う。"),
    "sushi": ("food", "寿司職人は何年も修行して魚の扱い方を学ぶ。"),
}
QUESTIONS = ["窓際で寝ている猫", "東京から大阪への移動手段", "雨の多い季節"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    args = parser.parse_args()

    # One loaded model serves every adapter below.
    encoder = SSEEncoder.from_pretrained(args.model)
    print(f"model: {encoder.source}  ({encoder.full_dim} dims)\n")

    # 1. SSEEmbedding as the global embed model: VectorStoreIndex embeds with it.
    Settings.embed_model = SSEEmbedding(encoder=encoder)
    Settings.llm = MockLLM()  # no LLM offline; set your own to get generated answers
    # LlamaIndex embeds "topic: ...\n\n<text>" unless a metadata key is excluded from embedding.
    documents = [
        Document(text=text, id_=doc_id, metadata={"topic": topic}, excluded_embed_metadata_keys=["topic"])
        for doc_id, (topic, text) in DOCUMENTS.items()
    ]

    # 0. The framework's own flow: documents -> splitter -> vector store -> query engine, with
    #    the store running two-stage Matryoshka search in embedded Qdrant (Qdrant's engine
    #    in-process, on a folder); pass client=QdrantClient(url=...) instead for a Qdrant server.
    store = MatryoshkaQdrantVectorStore(
        path=tempfile.mkdtemp(prefix="sse-example-"), collection_name="rag", encoder=encoder
    )
    rag_index = VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        transformations=[SentenceSplitter(chunk_size=128, chunk_overlap=0)],
    )
    response = rag_index.as_query_engine(similarity_top_k=2).query(QUESTIONS[0])
    print("MatryoshkaQdrantVectorStore -> as_query_engine()")
    print(
        f"  {QUESTIONS[0]}: " + ", ".join(f"{hit.node.ref_doc_id} ({hit.score:.3f})" for hit in response.source_nodes)
    )
    rag_index.delete_ref_doc("cat")  # every chunk of that document goes
    print(f"  after delete_ref_doc('cat'): {store.index.count()} chunks\n")

    vector_index = VectorStoreIndex.from_documents(documents)
    print("VectorStoreIndex + SSEEmbedding")
    for question in QUESTIONS:
        hits = vector_index.as_retriever(similarity_top_k=2).retrieve(question)
        print(f"  {question}: " + ", ".join(f"{hit.node.ref_doc_id} ({hit.score:.3f})" for hit in hits))

    # 2. Two-stage Matryoshka search: 64-dim coarse candidates, rescored with all dims.
    # An embedded Qdrant shard (Qdrant Edge) in a temporary folder; a QdrantClient(url=...) works alike.
    index = MatryoshkaIndex(tempfile.mkdtemp(prefix="sse-example-"), "docs", encoder)
    index.add_texts(
        [text for _, text in DOCUMENTS.values()],
        ids=list(DOCUMENTS),
        payloads=[{"topic": topic} for topic, _ in DOCUMENTS.values()],
    )
    retriever = MatryoshkaQdrantRetriever(index, similarity_top_k=2, legacy_metadata=False)
    print("\nMatryoshkaQdrantRetriever (embedded Qdrant)")
    for question in QUESTIONS:
        hits = retriever.retrieve(question)
        print(f"  {question}: " + ", ".join(f"{hit.node.node_id} ({hit.score:.3f})" for hit in hits))
    food_only = models.Filter(must=[models.FieldCondition(key="topic", match=models.MatchValue(value="food"))])
    hits = MatryoshkaQdrantRetriever(index, 2, filter=food_only, legacy_metadata=False).retrieve("おいしい日本料理")
    print("  おいしい日本料理 [topic=food]: " + ", ".join(hit.node.node_id for hit in hits))

    # 3. The retriever inside a query engine (MockLLM echoes the prompt it would send).
    engine = RetrieverQueryEngine.from_args(retriever, llm=Settings.llm)
    response = engine.query(QUESTIONS[1])
    print(
        f"\nRetrieverQueryEngine sources for {QUESTIONS[1]!r}: "
        + ", ".join(node.node.node_id for node in response.source_nodes)
    )


if __name__ == "__main__":
    main()
