"""LangChain + SSE, offline: documents -> two-stage Qdrant vector store -> retriever in an LCEL chain.

Run:  python examples/langchain_rag.py            (the bundled default model)
      python examples/langchain_rag.py --model PATH_OR_HUB_ID
Needs: pip install "sse-integrations[langchain,qdrant]"
"""

from __future__ import annotations

import argparse
import tempfile

from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore

from sse_integrations import SSEEncoder
from sse_integrations.langchain import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore, SSEEmbeddings
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
    embeddings = SSEEmbeddings(encoder=encoder)
    ids = list(DOCUMENTS)
    texts = [text for _, text in DOCUMENTS.values()]
    topics = [{"topic": topic} for topic, _ in DOCUMENTS.values()]

    print(f"model: {encoder.source}  ({encoder.full_dim} dims)\n")

    # 0. The framework's own flow: Documents -> vector store -> retriever -> chain. The store runs
    #    two-stage Matryoshka search in embedded Qdrant (Qdrant's engine in-process, on a folder);
    #    pass client=QdrantClient(url=...) instead for a Qdrant server.
    #    Long texts would go through a splitter first (langchain-text-splitters).
    documents = [
        Document(page_content=text, metadata={"topic": topic}, id=doc_id) for doc_id, (topic, text) in DOCUMENTS.items()
    ]
    store = MatryoshkaQdrantVectorStore.from_documents(
        documents, embeddings, collection_name="rag", path=tempfile.mkdtemp(prefix="sse-example-")
    )
    rag_retriever = store.as_retriever(search_kwargs={"k": 2})
    format_docs = RunnableLambda(lambda docs: "\n".join(f"- {d.page_content}" for d in docs))
    prompt = PromptTemplate.from_template("次の文脈を使って答えてください。\n{context}\n\n質問: {question}")
    llm = FakeListLLM(responses=["(your chat model answers here)"])  # offline stand-in for a real LLM
    rag_chain = (
        {"context": rag_retriever | format_docs, "question": RunnablePassthrough()} | prompt | llm | StrOutputParser()
    )
    print("MatryoshkaQdrantVectorStore -> as_retriever()")
    for question in QUESTIONS:
        print(f"  {question}: " + ", ".join(d.id or "" for d in rag_retriever.invoke(question)))
    food = store.similarity_search("おいしい日本料理", k=2, filter={"topic": "food"})
    print("  filter={'topic': 'food'}: " + ", ".join(sorted(d.id or "" for d in food)))
    print(f"  chain answer: {rag_chain.invoke(QUESTIONS[0])}\n")

    # 1. SSEEmbeddings in any LangChain vector store (here the in-memory one).
    memory_store = InMemoryVectorStore(embeddings)
    memory_store.add_texts(texts, metadatas=topics, ids=ids)
    print("InMemoryVectorStore + SSEEmbeddings")
    for question in QUESTIONS:
        hits = memory_store.similarity_search_with_score(question, k=2)
        print(f"  {question}: " + ", ".join(f"{doc.id} ({score:.3f})" for doc, score in hits))

    # 2. Two-stage Matryoshka search: 64-dim coarse candidates, rescored with all dims.
    # An embedded Qdrant shard (Qdrant Edge) in a temporary folder; a QdrantClient(url=...) works alike.
    index = MatryoshkaIndex(tempfile.mkdtemp(prefix="sse-example-"), "docs", encoder)
    index.add_texts(texts, ids=ids, payloads=topics)
    retriever = MatryoshkaQdrantRetriever(index=index, k=2, legacy_metadata=False)
    # An LCEL chain up to the prompt; pipe it into your chat model (`| llm`) for answers.
    chain = {
        "context": retriever | RunnableLambda(lambda docs: "\n".join(f"- {d.page_content}" for d in docs)),
        "question": RunnablePassthrough(),
    } | prompt
    print("\nMatryoshkaQdrantRetriever (embedded Qdrant)")
    for question in QUESTIONS:
        docs = retriever.invoke(question)
        print(f"  {question}: " + ", ".join(d.id for d in docs))
    docs = retriever.invoke(
        "おいしい日本料理", filter={"topic": "food"}
    )  # the store's dict filters (or a models.Filter)
    print("  おいしい日本料理 [topic=food]: " + ", ".join(d.id for d in docs))
    print("\nPrompt built by the chain:\n" + chain.invoke(QUESTIONS[0]).to_string())


if __name__ == "__main__":
    main()
