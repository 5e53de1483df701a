"""The LlamaIndex vector store on the fixture model: the framework's flows (VectorStoreIndex,
query engine, IngestionPipeline), deletion, every filter operator, each query mode, a reopen in a
new process, parity with ``MatryoshkaIndex.search``, and one collection read by every reader.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.core.vector_stores.types import (
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn
from qdrant_client import AsyncQdrantClient, QdrantClient

from sse_integrations.llama_index import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore, SSEEmbedding
from sse_integrations.qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
from tests.helpers import HYBRID_CORPUS, HYBRID_IDS, HYBRID_QUERIES, distinct_corpus, query_texts, tied_groups
from tests.test_llama_index import FILTER_CASES, _metadata


@pytest.fixture(scope="module")
def corpus(tiny_encoder):
    return distinct_corpus(tiny_encoder, 80)


def _nodes(ids, texts, metadata=_metadata):
    return [TextNode(id_=doc_id, text=text, metadata=metadata(i)) for i, (doc_id, text) in enumerate(zip(ids, texts))]


@pytest.fixture(scope="module")
def store(tiny_encoder, corpus, module_engine):
    built = MatryoshkaQdrantVectorStore(
        collection_name=module_engine.name("li_store"), encoder=tiny_encoder, **module_engine.store_kwargs()
    )
    built.add(_nodes(*corpus))
    return built


def test_query_equals_the_index_search(store):
    for query in query_texts(5):
        result = store.query(VectorStoreQuery(query_str=query, similarity_top_k=5))
        expected = store.index.search(query, limit=5)
        # Fusion gives exact ties (RRF), which the embedded engine may order either way.
        expected_ids = [point.payload["doc_id"] for point in expected]
        assert tied_groups(result.ids, result.similarities) == tied_groups(expected_ids, [p.score for p in expected])
        assert result.similarities == pytest.approx(
            [point.score for point in expected], rel=1e-6
        )  # qdrant-client local mode: scores jitter in the 8th digit between identical searches
        assert [node.get_content() for node in result.nodes] == [point.payload["text"] for point in expected]


async def test_async_query_equals_sync(store):
    query = VectorStoreQuery(query_str=query_texts(1)[0], similarity_top_k=4)
    assert (await store.aquery(query)).ids == store.query(query).ids


@pytest.mark.parametrize("name", FILTER_CASES)
def test_every_filter_operator(store, corpus, name):
    ids, _ = corpus
    metadata = {doc_id: _metadata(i) for i, doc_id in enumerate(ids)}
    accepts = build_metadata_filter_fn(lambda doc_id: metadata[doc_id], FILTER_CASES[name])
    result = store.query(
        VectorStoreQuery(query_str=query_texts(1)[0], similarity_top_k=len(ids), filters=FILTER_CASES[name])
    )
    assert set(result.ids) == {doc_id for doc_id in ids if accepts(doc_id)}
    assert {node.node_id for node in store.get_nodes(filters=FILTER_CASES[name])} == set(result.ids)


def test_get_nodes_by_id_keeps_the_order(store, corpus):
    ids, texts = corpus
    nodes = store.get_nodes([ids[5], "missing", ids[2]])
    assert [node.node_id for node in nodes] == [ids[5], ids[2]]
    assert nodes[0].get_content() == texts[5] and nodes[0].metadata == _metadata(5)


@pytest.fixture(scope="module")
def hybrid_store(tiny_encoder, module_engine):
    built = MatryoshkaQdrantVectorStore(
        collection_name=module_engine.name("li_hybrid"),
        encoder=tiny_encoder,
        sparse=True,
        fusion_factor=2,
        **module_engine.store_kwargs(),
    )
    built.add(_nodes(HYBRID_IDS, HYBRID_CORPUS, lambda i: {"group": i % 2}))
    return built


@pytest.mark.parametrize(
    ("mode", "search_mode"),
    [
        (VectorStoreQueryMode.DEFAULT, "dense"),
        (VectorStoreQueryMode.SPARSE, "sparse"),
        (VectorStoreQueryMode.HYBRID, "hybrid"),
    ],
)
def test_each_query_mode_equals_the_index(hybrid_store, mode, search_mode):
    for query in HYBRID_QUERIES:
        result = hybrid_store.query(VectorStoreQuery(query_str=query, similarity_top_k=3, mode=mode))
        expected = hybrid_store.index.search(query, limit=3, mode=search_mode)
        # Fusion gives exact ties (RRF), which the embedded engine may order either way.
        expected_ids = [point.payload["doc_id"] for point in expected]
        assert tied_groups(result.ids, result.similarities) == tied_groups(expected_ids, [p.score for p in expected])
        assert result.similarities == pytest.approx(
            [point.score for point in expected], rel=1e-6
        )  # qdrant-client local mode: scores jitter in the 8th digit between identical searches


def test_alpha_weighs_the_fusion(hybrid_store, tiny_encoder):
    query = HYBRID_QUERIES[1]
    for alpha in (0.0, 1.0, 0.3):
        result = hybrid_store.query(
            VectorStoreQuery(query_str=query, similarity_top_k=3, mode=VectorStoreQueryMode.HYBRID, alpha=alpha)
        )
        twin = MatryoshkaIndex(
            hybrid_store.index.client,
            hybrid_store.index.collection_name,
            tiny_encoder,
            sparse=True,
            fusion_factor=2,
            fusion_weights=(alpha, 1 - alpha),
        )
        expected = twin.search(query, limit=3, mode="hybrid")
        expected_groups = tied_groups([point.payload["doc_id"] for point in expected], [p.score for p in expected])
        assert tied_groups(result.ids, result.similarities) == expected_groups


def test_mmr_picks_relevant_then_diverse(store, corpus):
    """MMR over the ``mmr_prefetch_k`` best dense hits, weighted by ``mmr_threshold`` (LlamaIndex's lambda)."""
    import numpy as np

    from sse_integrations._stores import maximal_marginal_relevance

    query = corpus[1][5]
    index = store.index
    candidates = index.search(query, limit=12, with_vectors=[index.full.name])
    vectors = np.array([point.vector[index.full.name] for point in candidates], dtype=np.float32)
    query_vector = index.encode_queries([query])[index.full.name][0]
    for threshold in (0.0, 0.3, 1.0):
        mmr = VectorStoreQuery(
            query_str=query, similarity_top_k=4, mode=VectorStoreQueryMode.MMR, mmr_threshold=threshold
        )
        result = store.query(mmr, mmr_prefetch_k=12)
        picked = maximal_marginal_relevance(query_vector, vectors, 4, threshold)
        assert result.ids == [candidates[i].payload["doc_id"] for i in picked], threshold
    # Relevance alone is the plain dense order.
    assert result.ids == [point.payload["doc_id"] for point in candidates[:4]]
    default = store.query(VectorStoreQuery(query_str=query, similarity_top_k=3, mode=VectorStoreQueryMode.MMR))
    assert len(default.ids) == 3 and default.ids[0] == candidates[0].payload["doc_id"]


def test_from_documents_query_engine_and_delete_by_ref_doc(tiny_encoder):
    embed = SSEEmbedding(encoder=tiny_encoder)
    documents = [
        Document(text=" ".join(HYBRID_CORPUS[i : i + 3]), id_=f"source-{i}", metadata={"part": i}) for i in (0, 3, 6, 9)
    ]
    store = MatryoshkaQdrantVectorStore(collection_name="li_flow", encoder=tiny_encoder)
    context = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(
        documents,
        storage_context=context,
        embed_model=embed,
        transformations=[SentenceSplitter(chunk_size=32, chunk_overlap=0)],
    )
    engine = index.as_query_engine(llm=MockLLM(), similarity_top_k=2)
    response = engine.query(HYBRID_QUERIES[0])
    expected = store.index.search(HYBRID_QUERIES[0], limit=2)
    assert [hit.node.node_id for hit in response.source_nodes] == [p.payload["doc_id"] for p in expected]
    assert all(hit.node.ref_doc_id.startswith("source-") for hit in response.source_nodes)
    total = store.index.count()
    index.delete_ref_doc("source-3")
    assert store.index.count() < total
    assert all(node.ref_doc_id != "source-3" for node in store.get_nodes())
    store.clear()
    assert store.index.count() == 0


async def test_ingestion_pipeline_and_async_index(tiny_encoder):
    store = MatryoshkaQdrantVectorStore(AsyncMatryoshkaIndex(AsyncQdrantClient(":memory:"), "li_async", tiny_encoder))
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=32, chunk_overlap=0), SSEEmbedding(encoder=tiny_encoder)],
        vector_store=store,
    )
    documents = [Document(text=text, id_=doc_id) for doc_id, text in zip(HYBRID_IDS, HYBRID_CORPUS)]
    nodes = await pipeline.arun(documents=documents)
    assert await store.index.count() == len(nodes)
    result = await store.aquery(VectorStoreQuery(query_str=HYBRID_QUERIES[2], similarity_top_k=2))
    expected = await store.index.search(HYBRID_QUERIES[2], limit=2)
    assert result.ids == [point.payload["doc_id"] for point in expected]
    await store.adelete("doc-7")
    await store.adelete_nodes([nodes[0].node_id])
    assert await store.index.count() == len(nodes) - 2
    with pytest.raises(TypeError, match="aquery"):
        store.query(VectorStoreQuery(query_str="x"))


def test_sync_ingestion_pipeline(tiny_encoder):
    store = MatryoshkaQdrantVectorStore(collection_name="li_pipe", encoder=tiny_encoder)
    pipeline = IngestionPipeline(transformations=[SSEEmbedding(encoder=tiny_encoder)], vector_store=store)
    pipeline.run(documents=[Document(text=text, id_=doc_id) for doc_id, text in zip(HYBRID_IDS, HYBRID_CORPUS)])
    assert store.index.count() == len(HYBRID_CORPUS)
    # Unsplit documents are their own nodes: no ref_doc_id, the node id is the document id.
    store.delete_nodes(["doc-1"], filters=MetadataFilters(filters=[]))
    assert store.index.count() == len(HYBRID_CORPUS) - 1


REOPEN = """
import sys
from llama_index.core import VectorStoreIndex
from llama_index.core.llms import MockLLM
from qdrant_client import QdrantClient
from sse_integrations.llama_index import MatryoshkaQdrantVectorStore, SSEEmbedding
from sse_integrations.qdrant import MatryoshkaIndex

path, model, query, backend = sys.argv[1:]
index = MatryoshkaIndex(QdrantClient(path=path) if backend == "client" else path, "reopen", model)
vector_index = VectorStoreIndex.from_vector_store(MatryoshkaQdrantVectorStore(index), embed_model=SSEEmbedding(model))
response = vector_index.as_query_engine(llm=MockLLM(), similarity_top_k=2).query(query)
for hit in response.source_nodes:
    node = hit.node
    print(node.node_id, node.ref_doc_id, node.metadata["part"], node.relationships[NodeRelationship.SOURCE].node_id)
print("expected", *[point.payload["doc_id"] for point in index.search(query, limit=2)])
""".replace("import sys\n", "import sys\nfrom llama_index.core.schema import NodeRelationship\n")


@pytest.mark.parametrize("backend", ["client", "edge"])
def test_reopen_in_a_new_process(tiny_encoder, tiny_model_path, tmp_path, backend):
    """``VectorStoreIndex.from_vector_store`` over a folder written by another process answers queries."""
    path = tmp_path / "qdrant"
    if backend == "client":
        client = QdrantClient(path=str(path))
        store = MatryoshkaQdrantVectorStore(MatryoshkaIndex(client, "reopen", tiny_encoder))
    else:  # path= is the embedded engine
        store = MatryoshkaQdrantVectorStore(path=path, collection_name="reopen", encoder=tiny_encoder)
    documents = [Document(text=text, id_=f"source-{i}", metadata={"part": i}) for i, text in enumerate(HYBRID_CORPUS)]
    VectorStoreIndex.from_documents(
        documents,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=SSEEmbedding(encoder=tiny_encoder),
    )
    # Both engines lock their folder; the index closes only a client it opened itself.
    if backend == "client":
        client.close()
    else:
        store.index.close()
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(REOPEN), str(path), str(tiny_model_path), HYBRID_QUERIES[3], backend],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    *hits, expected = completed.stdout.strip().splitlines()
    assert [line.split()[0] for line in hits] == expected.split()[1:]
    for line in hits:
        _, ref_doc_id, part, source = line.split()
        assert ref_doc_id == source == f"source-{part}"


def test_one_collection_every_reader(tiny_encoder):
    """Written by the LlamaIndex store, read by the LangChain store and both retrievers, and back."""
    from sse_integrations.langchain import MatryoshkaQdrantRetriever as LCRetriever
    from sse_integrations.langchain import MatryoshkaQdrantVectorStore as LCStore

    store = MatryoshkaQdrantVectorStore(collection_name="shared", encoder=tiny_encoder)
    source = Document(text="source", id_="src")
    nodes = _nodes(HYBRID_IDS, HYBRID_CORPUS, lambda i: {"group": i % 2})
    for node in nodes:
        node.relationships[NodeRelationship.SOURCE] = source.as_related_node_info()
    store.add(nodes)
    index = store.index
    query = HYBRID_QUERIES[0]
    expected = [point.payload["doc_id"] for point in index.search(query, limit=3)]

    lc_store = LCStore(index)
    lc_docs = lc_store.similarity_search(query, k=3)
    assert [doc.id for doc in lc_docs] == expected
    assert lc_docs[0].metadata == {"group": HYBRID_IDS.index(expected[0]) % 2}
    assert [doc.id for doc in LCRetriever(index=index, k=3).invoke(query)] == expected
    li_hits = MatryoshkaQdrantRetriever(index, 3).retrieve(query)
    assert [hit.node.node_id for hit in li_hits] == expected
    assert li_hits[0].node.ref_doc_id == "src"

    # Back: LangChain writes, LlamaIndex reads.
    lc_store.add_texts(["新しい文書です。"], [{"group": 5}], ids=["lc-1"])
    node = store.get_nodes(["lc-1"])[0]
    assert node.get_content() == "新しい文書です。" and node.metadata == {"group": 5}
