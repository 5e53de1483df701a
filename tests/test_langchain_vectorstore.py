"""The LangChain vector store: langchain-tests' standard suite (sync and async, unmodified), parity
with ``MatryoshkaIndex.search``, dict filters, MMR, retrieval modes and the framework's own flow.
"""

from __future__ import annotations

import uuid

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from sse_integrations.langchain import MatryoshkaQdrantVectorStore, RetrievalMode, SSEEmbeddings
from sse_integrations.qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
from tests.helpers import HYBRID_CORPUS, HYBRID_IDS, HYBRID_QUERIES, distinct_corpus, query_texts

# --- the standard suite ---------------------------------------------------------------------
# It searches "foo", "bar", "baz": the fixture model's tokenizer has no Latin letters (every
# such word would embed alike), so the suite runs on the bundled model, loaded once.


@pytest.fixture(scope="module")
def bundled_encoder():
    from sse_integrations import SSEEncoder

    return SSEEncoder.from_pretrained()


@pytest.mark.integration
class TestVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, bundled_encoder):
        index = MatryoshkaIndex(QdrantClient(":memory:"), f"standard-{uuid.uuid4().hex}", bundled_encoder)
        yield MatryoshkaQdrantVectorStore(index)


@pytest.mark.integration
class TestVectorStoreStandardOnAsyncIndex(VectorStoreIntegrationTests):
    """The same suite on an ``AsyncMatryoshkaIndex`` (the sync half is skipped: it refuses sync calls)."""

    @property
    def has_sync(self) -> bool:
        return False

    @pytest.fixture
    async def vectorstore(self, bundled_encoder):
        index = AsyncMatryoshkaIndex(AsyncQdrantClient(":memory:"), f"standard-{uuid.uuid4().hex}", bundled_encoder)
        yield MatryoshkaQdrantVectorStore(index)


@pytest.mark.integration
class TestVectorStoreStandardOnEmbeddedEngine(VectorStoreIntegrationTests):
    """The same suite on a folder: Qdrant's own engine in-process (Qdrant Edge)."""

    @pytest.fixture
    def vectorstore(self, bundled_encoder, tmp_path):
        store = MatryoshkaQdrantVectorStore.from_texts(
            [], SSEEmbeddings(encoder=bundled_encoder), path=tmp_path / "qdrant", collection_name="standard"
        )
        yield store
        store.index.close()


@pytest.mark.integration
class TestVectorStoreStandardOnAsyncEmbeddedEngine(VectorStoreIntegrationTests):
    @property
    def has_sync(self) -> bool:
        return False

    @pytest.fixture
    async def vectorstore(self, bundled_encoder, tmp_path):
        index = AsyncMatryoshkaIndex(tmp_path / "qdrant", "standard", bundled_encoder)
        yield MatryoshkaQdrantVectorStore(index)
        await index.close()


# --- parity with the index, on the fixture model ----------------------------------------------


@pytest.fixture(scope="module")
def corpus(tiny_encoder):
    return distinct_corpus(tiny_encoder, 60)


def _metadata(position: int) -> dict:
    return {"group": position % 3, "weight": position * 0.5, "lang": "ja" if position % 2 else "en"}


@pytest.fixture(scope="module")
def store(tiny_encoder, corpus, module_engine):
    ids, texts = corpus
    built = MatryoshkaQdrantVectorStore.from_texts(
        texts,
        SSEEmbeddings(encoder=tiny_encoder),
        [_metadata(i) for i in range(len(texts))],
        ids=ids,
        collection_name=module_engine.name("lc_store"),
        **module_engine.store_kwargs(),
    )
    return built


def test_from_texts_builds_an_index_whose_search_the_store_returns(store):
    index = store.index
    for query in query_texts(5):
        expected = index.search(query, limit=5)
        got = store.similarity_search_with_score(query, k=5)
        assert [doc.id for doc, _ in got] == [point.payload["doc_id"] for point in expected]
        assert [score for _, score in got] == pytest.approx(
            [point.score for point in expected], rel=1e-6
        )  # qdrant-client local mode: scores jitter in the 8th digit between identical searches
        point = expected[0]
        assert got[0][0].page_content == point.payload["text"]
        assert got[0][0].metadata == {key: point.payload[key] for key in ("group", "weight", "lang")}


async def test_async_search_equals_sync(store):
    query = query_texts(1)[0]
    found = await store.asimilarity_search_with_score(query, k=4)
    expected = store.similarity_search_with_score(query, k=4)
    assert [doc for doc, _ in found] == [doc for doc, _ in expected]
    assert [score for _, score in found] == pytest.approx(
        [score for _, score in expected], rel=1e-6
    )  # qdrant-client local mode: scores jitter in the 8th digit between identical searches


FILTERS = {
    "eq": ({"group": 1}, lambda m: m["group"] == 1),
    "$eq": ({"lang": {"$eq": "ja"}}, lambda m: m["lang"] == "ja"),
    "$ne": ({"group": {"$ne": 0}}, lambda m: m["group"] != 0),
    "$gt": ({"weight": {"$gt": 10}}, lambda m: m["weight"] > 10),
    "$gte $lt": ({"weight": {"$gte": 5, "$lt": 12.5}}, lambda m: 5 <= m["weight"] < 12.5),
    "$lte": ({"weight": {"$lte": 3.0}}, lambda m: m["weight"] <= 3),
    "$in": ({"group": {"$in": [0, 2]}}, lambda m: m["group"] in (0, 2)),
    "$in []": ({"group": {"$in": []}}, lambda m: False),
    "$nin": ({"lang": {"$nin": ["ja"]}}, lambda m: m["lang"] != "ja"),
    "two keys": ({"group": 1, "lang": "en"}, lambda m: m["group"] == 1 and m["lang"] == "en"),
    "$or": ({"$or": [{"group": 0}, {"lang": "ja"}]}, lambda m: m["group"] == 0 or m["lang"] == "ja"),
    "$and": ({"$and": [{"group": 2}, {"weight": {"$gt": 4}}]}, lambda m: m["group"] == 2 and m["weight"] > 4),
    "$not": ({"$not": {"group": 1}}, lambda m: m["group"] != 1),
}


@pytest.mark.parametrize("name", FILTERS)
def test_dict_filters(store, corpus, name):
    ids, _ = corpus
    condition, accepts = FILTERS[name]
    expected = {doc_id for i, doc_id in enumerate(ids) if accepts(_metadata(i))}
    found = store.similarity_search(query_texts(1)[0], k=len(ids), filter=condition)
    assert {doc.id for doc in found} == expected
    assert all(accepts(doc.metadata) for doc in found)


def test_a_qdrant_filter_passes_through(store):
    only = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=2))])
    assert {doc.metadata["group"] for doc in store.similarity_search(query_texts(1)[0], k=10, filter=only)} == {2}


def test_bad_filters_are_refused(store):
    with pytest.raises(ValueError, match=r"\$regex"):
        store.similarity_search("x", filter={"lang": {"$regex": "j"}})
    with pytest.raises(ValueError, match="number"):
        store.similarity_search("x", filter={"weight": {"$gt": "1"}})


def test_retriever_uses_search_kwargs(store):
    query = query_texts(2)[1]
    retriever = store.as_retriever(search_kwargs={"k": 3, "filter": {"group": 0}})
    docs = retriever.invoke(query)
    expected = store.index.search(query, limit=3, filter=models.Filter(must=[_group(0)]))
    assert [doc.id for doc in docs] == [point.payload["doc_id"] for point in expected]


def _group(value: int) -> models.FieldCondition:
    return models.FieldCondition(key="group", match=models.MatchValue(value=value))


def test_mmr_picks_relevant_then_diverse(store):
    query = query_texts(3)[2]
    docs = store.max_marginal_relevance_search(query, k=4, fetch_k=12)
    top = store.similarity_search(query, k=12)
    assert len(docs) == 4 and docs[0].id == top[0].id
    assert {doc.id for doc in docs} <= {doc.id for doc in top}
    # lambda_mult=1 is pure relevance: the similarity ranking.
    assert [d.id for d in store.max_marginal_relevance_search(query, k=4, fetch_k=12, lambda_mult=1.0)] == [
        d.id for d in top[:4]
    ]
    retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 2, "fetch_k": 6})
    assert len(retriever.invoke(query)) == 2


def test_search_by_vector_is_exact_full_width(store):
    query = query_texts(1)[0]
    vector = store.embeddings.embed_query(query)
    docs = store.similarity_search_by_vector(vector, k=5)
    exact = store.index.search(query, limit=5, two_stage=False)
    assert [doc.id for doc in docs] == [point.payload["doc_id"] for point in exact]
    with pytest.raises(ValueError, match="dims"):
        store.similarity_search_by_vector(vector[:64], k=5)


def test_delete_by_filter_and_all(tiny_encoder):
    store = MatryoshkaQdrantVectorStore.from_texts(
        ["a", "b", "c"], metadatas=[{"g": 1}, {"g": 2}, {"g": 1}], ids=["1", "2", "3"], encoder=tiny_encoder
    )
    store.delete(filter={"g": 1})
    assert [doc.id for doc in store.get_by_ids(["1", "2", "3"])] == ["2"]
    store.delete()
    assert store.get_by_ids(["2"]) == [] and store.index.count() == 0


def test_reserved_metadata_keys_are_refused(tiny_encoder):
    store = MatryoshkaQdrantVectorStore.from_texts([], encoder=tiny_encoder)
    for key in ("text", "doc_id", "ref_doc_id", "_node"):
        with pytest.raises(ValueError, match="reserved"):
            store.add_texts(["x"], [{key: 1}])


def test_other_embeddings_are_refused(tiny_encoder):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    with pytest.raises(TypeError, match="SSEEmbeddings"):
        MatryoshkaQdrantVectorStore.from_texts(["x"], DeterministicFakeEmbedding(size=8))


def test_an_async_index_refuses_sync_calls(tiny_encoder):
    store = MatryoshkaQdrantVectorStore(AsyncMatryoshkaIndex(AsyncQdrantClient(":memory:"), "a", tiny_encoder))
    with pytest.raises(TypeError, match="asimilarity_search_with_score"):
        store.similarity_search("x")


@pytest.mark.parametrize("mode", list(RetrievalMode))
def test_retrieval_modes_match_the_index(tiny_encoder, mode):
    store = MatryoshkaQdrantVectorStore.from_texts(
        HYBRID_CORPUS, ids=HYBRID_IDS, encoder=tiny_encoder, sparse=True, fusion_factor=2, retrieval_mode=mode
    )
    assert isinstance(store, VectorStore)
    for query in HYBRID_QUERIES:
        expected = store.index.search(query, limit=3, mode=mode.value)
        assert [d.id for d in store.similarity_search(query, k=3)] == [p.payload["doc_id"] for p in expected]
        # The mode is also a per-search (and so per-retriever) option.
        dense = store.index.search(query, limit=3)
        retriever = store.as_retriever(search_kwargs={"k": 3, "retrieval_mode": "dense"})
        assert [d.id for d in retriever.invoke(query)] == [p.payload["doc_id"] for p in dense]


def test_from_documents_then_as_retriever(tiny_encoder, tmp_path):
    """The framework's own flow: documents -> splitter -> store -> retriever, on a local-mode folder."""
    from langchain_core.documents import Document as LCDocument

    documents = [
        LCDocument(page_content=text, metadata={"source": f"doc{i}.txt"}, id=doc_id)
        for i, (doc_id, text) in enumerate(zip(HYBRID_IDS, HYBRID_CORPUS))
    ]
    store = MatryoshkaQdrantVectorStore.from_documents(
        documents, SSEEmbeddings(encoder=tiny_encoder), path=tmp_path / "qdrant", collection_name="docs"
    )
    hits = store.as_retriever(search_kwargs={"k": 2}).invoke(HYBRID_QUERIES[0])
    assert [hit.id for hit in hits] == [p.payload["doc_id"] for p in store.index.search(HYBRID_QUERIES[0], limit=2)]
    assert all(isinstance(hit, Document) and hit.metadata["source"].endswith(".txt") for hit in hits)
    assert store.get_by_ids(["doc-3"])[0].page_content == HYBRID_CORPUS[3]


def test_from_documents_needs_no_embedding(tiny_encoder, tmp_path):
    """As from_texts: the index embeds with its encoder, so `embedding` is optional (the README's line)."""
    documents = [Document(page_content=text, id=doc_id) for doc_id, text in zip(HYBRID_IDS, HYBRID_CORPUS)]
    store = MatryoshkaQdrantVectorStore.from_documents(
        documents, collection_name="docs", path=tmp_path / "q", encoder=tiny_encoder
    )
    assert store.get_by_ids([HYBRID_IDS[2]])[0].page_content == HYBRID_CORPUS[2]
    assert store.index.count() == len(HYBRID_CORPUS)


async def test_afrom_documents_needs_no_embedding(tiny_encoder):
    documents = [Document(page_content=text, id=doc_id) for doc_id, text in zip(HYBRID_IDS, HYBRID_CORPUS)]
    store = await MatryoshkaQdrantVectorStore.afrom_documents(documents, encoder=tiny_encoder)
    assert [d.id for d in await store.aget_by_ids([HYBRID_IDS[1]])] == [HYBRID_IDS[1]]
    texts_store = await MatryoshkaQdrantVectorStore.afrom_texts(["x"], ids=["a"], encoder=tiny_encoder)
    assert texts_store.index.count() == 1


@pytest.mark.parametrize("backend", ["client", "path"])
def test_from_existing_collection_refuses_a_missing_one(tiny_encoder, tmp_path, backend):
    where = {"client": QdrantClient(":memory:")} if backend == "client" else {"path": tmp_path / "q"}
    with pytest.raises(ValueError, match="collection 'nosuch' does not exist"):
        MatryoshkaQdrantVectorStore.from_existing_collection("nosuch", encoder=tiny_encoder, **where)
    made = MatryoshkaQdrantVectorStore.from_texts(["猫"], ids=["a"], collection_name="c", encoder=tiny_encoder, **where)
    if backend == "path":
        made.index.close()  # one open index per folder
    store = MatryoshkaQdrantVectorStore.from_existing_collection("c", encoder=tiny_encoder, **where)
    assert [d.id for d in store.similarity_search("猫", k=1)] == ["a"]
