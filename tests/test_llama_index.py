"""LlamaIndex adapters on the tiny fixture model: exact parity with ``SSEEncoder.encode``,
batching, serialisation, ``VectorStoreIndex`` and ``RetrieverQueryEngine`` with a mock LLM,
and parity with ``MatryoshkaIndex.search`` on real qdrant-client local mode.

The fixture model has random weights, so nothing here asserts semantics.
"""

from __future__ import annotations

import asyncio
import math
import threading

import numpy as np
import pytest
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.llms.mock import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import NodeWithScore, QueryBundle
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from sse_integrations.llama_index import MatryoshkaQdrantRetriever, SSEEmbedding, metadata_filters_to_qdrant
from sse_integrations.qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
from tests.helpers import distinct_corpus, query_texts
from tests.helpers import hit_ids as ids_of
from tests.helpers import run_example as run_example_script

TEXTS = ["猫が窓のそばで眠っている。", "明日は雨が降るでしょう。", "", "改行を\n含む\tテキスト  "]


class CountingEncoder:
    """The real encoder, counting ``encode`` calls and the texts of each."""

    def __init__(self, encoder):
        self._encoder = encoder
        self.calls: list[list[str]] = []

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def encode(self, texts, **kwargs):
        self.calls.append(list(texts))
        return self._encoder.encode(texts, **kwargs)


# --- embeddings -----------------------------------------------------------------------------


@pytest.mark.parametrize("truncate_dim", [None, 64, 512])
@pytest.mark.parametrize("normalize", [True, False])
def test_vectors_equal_encoder(tiny_encoder, truncate_dim, normalize):
    embedding = SSEEmbedding(encoder=tiny_encoder, truncate_dim=truncate_dim, normalize=normalize)
    expected = tiny_encoder.encode(TEXTS, truncate_dim=truncate_dim, normalize=normalize)
    batch = embedding.get_text_embedding_batch(TEXTS)
    np.testing.assert_allclose(np.array(batch), expected, atol=1e-6, rtol=0)
    assert all(type(value) is float for value in batch[0])
    for text, row in zip(TEXTS, expected):
        np.testing.assert_allclose(embedding.get_text_embedding(text), row, atol=1e-6, rtol=0)
        np.testing.assert_allclose(embedding.get_query_embedding(text), row, atol=1e-6, rtol=0)
    assert embedding.dim == expected.shape[1]


@pytest.mark.parametrize(("count", "batch_size"), [(10, 3), (9, 3), (1, 4), (25, 1), (7, 2048)])
def test_one_encoder_call_per_batch(tiny_encoder, count, batch_size):
    texts = [f"テキスト{position}番" for position in range(count)]
    embedding = SSEEmbedding(encoder=tiny_encoder, embed_batch_size=batch_size)
    counting = CountingEncoder(tiny_encoder)
    embedding._encoder = counting
    vectors = embedding.get_text_embedding_batch(texts)
    assert len(counting.calls) == math.ceil(count / batch_size)
    assert [text for call in counting.calls for text in call] == texts
    np.testing.assert_allclose(np.array(vectors), tiny_encoder.encode(texts), atol=1e-6, rtol=0)


async def test_async_batches_equal_sync(tiny_encoder):
    texts = [f"テキスト{position}番" for position in range(11)]
    embedding = SSEEmbedding(encoder=tiny_encoder, embed_batch_size=4, truncate_dim=128)
    counting = CountingEncoder(tiny_encoder)
    embedding._encoder = counting
    vectors = await embedding.aget_text_embedding_batch(texts)
    assert len(counting.calls) == 3
    assert vectors == embedding.get_text_embedding_batch(texts)
    assert await embedding.aget_query_embedding(texts[0]) == vectors[0]
    assert await embedding.aget_text_embedding(texts[1]) == vectors[1]


async def test_async_does_not_block_the_event_loop(tiny_encoder):
    embedding = SSEEmbedding(encoder=tiny_encoder)
    loop_ran = threading.Event()
    threads = []

    class Gated(CountingEncoder):
        def encode(self, texts, **kwargs):
            threads.append(threading.get_ident())
            # Only another task on the loop can set this: a blocked loop would time out here.
            assert loop_ran.wait(timeout=10), "the event loop was blocked while encoding"
            return super().encode(texts, **kwargs)

    embedding._encoder = Gated(tiny_encoder)

    async def other_task():
        await asyncio.sleep(0)
        loop_ran.set()

    for call in (
        lambda: embedding.aget_query_embedding("猫"),
        lambda: embedding.aget_text_embedding("猫"),
        lambda: embedding.aget_text_embedding_batch(["猫", "犬"]),
    ):
        loop_ran.clear()
        await asyncio.gather(call(), other_task())
    assert len(threads) == 3 and threading.get_ident() not in threads


def test_bad_input(tiny_encoder):
    embedding = SSEEmbedding(encoder=tiny_encoder, embed_batch_size=2)
    assert embedding.get_text_embedding_batch([]) == []
    # The position is the text's place in the whole list, not within its batch of 2.
    with pytest.raises(TypeError, match=r"texts\[3\] must be a str"):
        embedding.get_text_embedding_batch(["a", "b", "c", None])
    with pytest.raises(TypeError, match="list of strings"):
        embedding.get_text_embedding_batch(None)
    with pytest.raises(TypeError, match="bare str"):
        embedding.get_text_embedding_batch("abc")
    with pytest.raises(TypeError, match="text must be a str"):
        embedding.get_query_embedding(None)
    with pytest.raises(TypeError, match="text must be a str"):
        embedding.get_text_embedding(5)


async def test_async_bad_input(tiny_encoder):
    embedding = SSEEmbedding(encoder=tiny_encoder)
    assert await embedding.aget_text_embedding_batch([]) == []
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        await embedding.aget_text_embedding_batch(["a", None])
    with pytest.raises(TypeError, match="text must be a str"):
        await embedding.aget_query_embedding(None)


def test_configuration(tiny_encoder, tiny_model_path, tmp_path):
    shared = SSEEmbedding(encoder=tiny_encoder)
    assert shared.encoder is tiny_encoder and shared.model_name == tiny_encoder.source
    assert SSEEmbedding.class_name() == "SSEEmbedding"
    loaded = SSEEmbedding(tiny_model_path, truncate_dim=64)
    assert loaded.model_name == str(tiny_model_path) and loaded.encoder is not tiny_encoder
    # A relative folder is stored as an absolute path: to_dict() then loads from any directory.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tiny_model_path.parent)
        assert SSEEmbedding(tiny_model_path.name).model_name == str(tiny_model_path.resolve())
        assert SSEEmbedding(tiny_model_path.name, encoder=tiny_encoder).encoder is tiny_encoder
    with pytest.raises(ValueError, match="not a Matryoshka prefix"):
        SSEEmbedding(encoder=tiny_encoder, truncate_dim=100)
    with pytest.raises(ValueError, match="pass one"):
        SSEEmbedding(str(tmp_path), encoder=tiny_encoder)
    with pytest.raises(TypeError, match="SSEEncoder"):
        SSEEmbedding(encoder="not an encoder")
    with pytest.raises(ValueError):
        SSEEmbedding(encoder=tiny_encoder, embed_batch_size=0)


def test_to_dict_round_trip(tiny_encoder):
    original = SSEEmbedding(encoder=tiny_encoder, truncate_dim=128, normalize=False, embed_batch_size=64)
    data = original.to_dict()
    assert data["class_name"] == "SSEEmbedding"
    assert {key: data[key] for key in ("model_name", "truncate_dim", "normalize", "embed_batch_size")} == {
        "model_name": tiny_encoder.source,
        "truncate_dim": 128,
        "normalize": False,
        "embed_batch_size": 64,
    }
    rebuilt = SSEEmbedding.from_dict(data)
    assert rebuilt.encoder is not tiny_encoder  # loaded again from the named model
    assert rebuilt.to_dict() == data
    assert rebuilt.get_query_embedding("猫") == original.get_query_embedding("猫")
    assert SSEEmbedding.from_json(original.to_json()).to_dict() == data


# --- VectorStoreIndex with Settings.embed_model ---------------------------------------------


@pytest.fixture
def sse_settings(tiny_encoder):
    """Settings.embed_model = SSEEmbedding, Settings.llm = MockLLM; restored afterwards."""
    # Settings' getters build OpenAI defaults lazily; read the private slots instead.
    saved = (Settings._embed_model, Settings._llm)
    Settings.embed_model = SSEEmbedding(encoder=tiny_encoder)
    Settings.llm = MockLLM()
    yield Settings
    Settings._embed_model, Settings._llm = saved


def test_vector_store_index_retrieves_the_right_document(sse_settings, tiny_encoder):
    ids, texts = distinct_corpus(tiny_encoder, 60)
    documents = [Document(text=text, id_=doc_id) for doc_id, text in zip(ids, texts)]
    index = VectorStoreIndex.from_documents(documents)
    retriever = index.as_retriever(similarity_top_k=3)
    # An exact duplicate of a document's text has cosine 1.0 with it and only with it.
    for position in (0, 17, 59):
        hits = retriever.retrieve(texts[position])
        assert hits[0].node.ref_doc_id == ids[position]
        assert hits[0].node.get_content() == texts[position]
        assert hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[1].score < 1.0 - 1e-4
    # The stored vectors are exactly the encoder's.
    stored = index.vector_store.get(retriever.retrieve(texts[5])[0].node.node_id)
    np.testing.assert_allclose(stored, tiny_encoder.encode([texts[5]])[0], atol=1e-6, rtol=0)


# --- the retriever --------------------------------------------------------------------------


GROUP_1 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])


@pytest.fixture(scope="module")
def corpus(dev_corpus):
    ids, texts = dev_corpus
    return ids[:200], texts[:200]


@pytest.fixture(scope="module")
def index(tiny_encoder, corpus):
    ids, texts = corpus
    built = MatryoshkaIndex(QdrantClient(":memory:"), "li_docs", tiny_encoder)
    built.add_texts(texts, ids=ids, payloads=[{"group": position % 3} for position in range(len(ids))])
    return built


@pytest.mark.parametrize("query", query_texts(8))
def test_retriever_matches_index_search(index, query):
    hits = MatryoshkaQdrantRetriever(index, similarity_top_k=7).retrieve(query)
    points = index.search(query, limit=7)
    assert all(isinstance(hit, NodeWithScore) for hit in hits)
    assert [hit.node.node_id for hit in hits] == ids_of(points)
    # qdrant-client local mode scores jitter in the 8th digit between identical calls (BLAS summation order).
    assert [hit.score for hit in hits] == pytest.approx([point.score for point in points], rel=1e-6)
    for hit, point in zip(hits, points):
        assert hit.node.get_content() == point.payload["text"]
        assert hit.node.metadata == {"doc_id": point.payload["doc_id"], "group": point.payload["group"]}


def test_retriever_options_reach_the_index(index):
    query = query_texts(1)[0]
    hits = MatryoshkaQdrantRetriever(index, 5, filter=GROUP_1, prefetch_limit=20).retrieve(QueryBundle(query))
    assert [hit.node.node_id for hit in hits] == ids_of(index.search(query, limit=5, filter=GROUP_1, prefetch_limit=20))
    assert len(hits) == 5 and all(hit.node.metadata["group"] == 1 for hit in hits)
    single = MatryoshkaQdrantRetriever(index, 6, search_kwargs={"two_stage": False}).retrieve(query)
    assert [hit.node.node_id for hit in single] == ids_of(index.search(query, limit=6, two_stage=False))
    with pytest.raises(TypeError, match="MatryoshkaIndex"):
        MatryoshkaQdrantRetriever(object())
    with pytest.raises(ValueError, match="similarity_top_k"):
        MatryoshkaQdrantRetriever(index, 0)
    with pytest.raises(ValueError, match="search_kwargs may not set"):
        MatryoshkaQdrantRetriever(index, search_kwargs={"limit": 2})


async def test_retriever_async_on_sync_and_async_indexes(tiny_encoder, corpus, index):
    ids, texts = corpus
    async_index = AsyncMatryoshkaIndex(AsyncQdrantClient(":memory:"), "li_docs_async", tiny_encoder)
    await async_index.add_texts(texts, ids=ids, payloads=[{"group": p % 3} for p in range(len(ids))])
    on_async = MatryoshkaQdrantRetriever(async_index, 5, filter=GROUP_1)
    on_sync = MatryoshkaQdrantRetriever(index, 5, filter=GROUP_1)
    for query in query_texts(4):
        expected = ids_of(index.search(query, limit=5, filter=GROUP_1))
        assert [hit.node.node_id for hit in await on_sync.aretrieve(query)] == expected
        assert [hit.node.node_id for hit in await on_async.aretrieve(query)] == expected
    with pytest.raises(TypeError, match="aretrieve"):
        on_async.retrieve(query_texts(1)[0])


def test_retriever_query_engine(index):
    """MockLLM echoes its prompt, so the answer shows which context the engine was given."""
    engine = RetrieverQueryEngine.from_args(MatryoshkaQdrantRetriever(index, 3), llm=MockLLM())
    query = query_texts(2)[1]
    response = engine.query(query)
    points = index.search(query, limit=3)
    assert [node.node.node_id for node in response.source_nodes] == ids_of(points)
    for point in points:
        assert point.payload["text"] in str(response)
    assert query in str(response)


async def test_retriever_query_engine_async(index):
    engine = RetrieverQueryEngine.from_args(MatryoshkaQdrantRetriever(index, 2), llm=MockLLM())
    query = query_texts(3)[2]
    response = await engine.aquery(query)
    assert [node.node.node_id for node in response.source_nodes] == ids_of(index.search(query, limit=2))


def run_example(arguments: list[str], monkeypatch, capsys) -> str:
    """Run examples/llamaindex_rag.py as a script; returns its output. The global Settings it sets are restored."""
    saved = (Settings._embed_model, Settings._llm)
    try:
        return run_example_script("llamaindex_rag.py", arguments, monkeypatch, capsys)
    finally:
        Settings._embed_model, Settings._llm = saved


def test_example_runs(tiny_model_path, monkeypatch, capsys):
    """examples/llamaindex_rag.py end to end (on the fixture model; the bundled one once it ships)."""
    output = run_example(["--model", str(tiny_model_path)], monkeypatch, capsys)
    filtered = output.split("おいしい日本料理 [topic=food]: ")[1].splitlines()[0]
    assert sorted(filtered.split(", ")) == ["ramen", "sushi"]
    # Both retrieval paths embed the same texts the same way, so they print the same ranking.
    vector_part, qdrant_part = output.split("VectorStoreIndex + SSEEmbedding")[1].split("MatryoshkaQdrantRetriever")
    assert vector_part.strip().splitlines()[:3] == qdrant_part.split("\n", 1)[1].strip().splitlines()[:3]


# --- MetadataFilters -> Qdrant filter -------------------------------------------------------


def _metadata(position: int) -> dict:
    """Varied payloads: ints, floats, strings, lists, and keys missing on some documents."""
    metadata = {
        "group": position % 3,
        "weight": round(position * 0.25, 2),
        "tags": [f"t{position % 4}", f"t{position % 5}"],
    }
    if position % 7:
        metadata["lang"] = "ja" if position % 2 else "en"
    if position % 11 == 0:
        metadata["tags"] = []
    return metadata


@pytest.fixture(scope="module")
def filter_index(tiny_encoder, corpus):
    ids, texts = corpus
    built = MatryoshkaIndex(QdrantClient(":memory:"), "li_filters", tiny_encoder)
    built.add_texts(texts, ids=ids, payloads=[_metadata(position) for position in range(len(ids))])
    return built, {doc_id: _metadata(position) for position, doc_id in enumerate(ids)}


def F(key, value, operator="=="):
    return MetadataFilter(key=key, value=value, operator=operator)


FILTER_CASES = {
    "eq int": MetadataFilters(filters=[F("group", 1)]),
    "eq float": MetadataFilters(filters=[F("weight", 2.5)]),
    "ne (missing key passes)": MetadataFilters(filters=[F("lang", "ja", "!=")]),
    "range and": MetadataFilters(filters=[F("weight", 10, ">"), F("weight", 30.5, "<="), F("group", 2, "!=")]),
    "gte lt": MetadataFilters(filters=[F("weight", 5, ">="), F("weight", 6, "<")]),
    "in": MetadataFilters(filters=[F("lang", ["ja"], "in")]),
    "in empty": MetadataFilters(filters=[F("group", [], "in")]),
    "nin": MetadataFilters(filters=[F("group", [0, 2], "nin")]),
    "contains": MetadataFilters(filters=[F("tags", "t3", "contains")]),
    "any": MetadataFilters(filters=[F("tags", ["t0", "t4"], "any")]),
    "all": MetadataFilters(filters=[F("tags", ["t1", "t2"], "all")]),
    "is_empty": MetadataFilters(filters=[F("lang", None, "is_empty")]),
    "or": MetadataFilters(filters=[F("group", 0), F("lang", "en")], condition="or"),
    "not": MetadataFilters(filters=[F("group", 0), F("lang", "en")], condition="not"),
}


@pytest.mark.parametrize("name", list(FILTER_CASES))
def test_metadata_filters_match_llama_index_semantics(filter_index, name):
    """The retriever's filtered hits are exactly the documents LlamaIndex's own filter accepts."""
    from llama_index.core.vector_stores.utils import build_metadata_filter_fn

    index, metadata = filter_index
    filters = FILTER_CASES[name]
    accepts = build_metadata_filter_fn(lambda doc_id: metadata[doc_id], filters)
    expected = {doc_id for doc_id in metadata if accepts(doc_id)}
    hits = MatryoshkaQdrantRetriever(index, len(metadata), prefetch_limit=len(metadata), filters=filters).retrieve("猫")
    assert {hit.node.node_id for hit in hits} == expected
    assert index.count(metadata_filters_to_qdrant(filters)) == len(expected)


def test_nested_filters_and_both_filter_kinds(filter_index):
    index, metadata = filter_index
    nested = MetadataFilters(
        filters=[
            F("weight", 20, "<"),
            MetadataFilters(filters=[F("group", 1), F("lang", "ja")], condition="or"),
        ]
    )
    expected = {d for d, m in metadata.items() if m["weight"] < 20 and (m["group"] == 1 or m.get("lang") == "ja")}
    assert index.count(metadata_filters_to_qdrant(nested)) == len(expected)
    # `filters` and a native Qdrant `filter` together: both must hold; the order is the index's.
    both = MatryoshkaQdrantRetriever(index, 10, filters=nested, filter=GROUP_1)
    query = query_texts(1)[0]
    combined = models.Filter(must=[metadata_filters_to_qdrant(nested), GROUP_1])
    assert [hit.node.node_id for hit in both.retrieve(query)] == ids_of(index.search(query, limit=10, filter=combined))
    assert all(metadata[hit.node.node_id]["group"] == 1 for hit in both.retrieve(query))


def test_unsupported_filters_fail_when_the_retriever_is_built(filter_index):
    index, _ = filter_index
    with pytest.raises(ValueError, match="no Qdrant equivalent"):
        MatryoshkaQdrantRetriever(index, filters=MetadataFilters(filters=[F("lang", "JA", "text_match_insensitive")]))
    with pytest.raises(ValueError, match="needs a number"):
        MatryoshkaQdrantRetriever(index, filters=MetadataFilters(filters=[F("lang", "ja", ">")]))
    with pytest.raises(ValueError, match="needs a list"):
        MatryoshkaQdrantRetriever(index, filters=MetadataFilters(filters=[F("group", 1, "in")]))


@pytest.mark.integration
def test_example_on_the_bundled_model(monkeypatch, capsys):
    """With the real weights the example's questions find their documents first."""
    output = run_example([], monkeypatch, capsys)
    for part in output.split("MatryoshkaQdrantRetriever"):
        for question, top in [
            ("窓際で寝ている猫", "cat"),
            ("東京から大阪への移動手段", "train"),
            ("雨の多い季節", "rain"),
        ]:
            assert part.split(f"{question}: ")[1].startswith(f"{top} ")
    assert "sources for '東京から大阪への移動手段': train" in output
