"""LangChain adapters on the tiny fixture model: the standard test suites, exact parity with
``SSEEncoder.encode`` and with ``MatryoshkaIndex.search`` on real qdrant-client local mode.

The fixture model has random weights, so nothing here asserts semantics: vectors must equal
the encoder's, and retrieved ids must equal the index's, in the same order.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_tests.integration_tests import EmbeddingsIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import EmbeddingsUnitTests
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from sse_integrations.langchain import MatryoshkaQdrantRetriever, SSEEmbeddings
from sse_integrations.qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
from tests.helpers import distinct_corpus, query_texts
from tests.helpers import hit_ids as ids_of
from tests.helpers import run_example as run_example_script

# --- the standard suites --------------------------------------------------------------------


class _FixtureModel:
    """The standard suites build the class from ``embedding_model_params``: point them at the fixture."""

    model_path: Path

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _fixture_model_path(cls, tiny_model_path):
        cls.model_path = tiny_model_path

    @property
    def embeddings_class(self) -> type[SSEEmbeddings]:
        return SSEEmbeddings

    @property
    def embedding_model_params(self) -> dict:
        return {"model_name_or_path": str(self.model_path), "truncate_dim": 256}


class TestSSEEmbeddingsStandardUnit(_FixtureModel, EmbeddingsUnitTests):
    pass


class TestSSEEmbeddingsStandardIntegration(_FixtureModel, EmbeddingsIntegrationTests):
    pass


# --- embeddings -----------------------------------------------------------------------------


TEXTS = ["猫が窓のそばで眠っている。", "明日は雨が降るでしょう。", "", "改行を\n含む\tテキスト  "]


@pytest.mark.parametrize("truncate_dim", [None, 64, 512])
@pytest.mark.parametrize("normalize", [True, False])
def test_vectors_equal_encoder(tiny_encoder, truncate_dim, normalize):
    embeddings = SSEEmbeddings(encoder=tiny_encoder, truncate_dim=truncate_dim, normalize=normalize, batch_size=3)
    expected = tiny_encoder.encode(TEXTS, truncate_dim=truncate_dim, normalize=normalize)
    documents = embeddings.embed_documents(TEXTS)
    np.testing.assert_allclose(np.array(documents), expected, atol=1e-6, rtol=0)
    assert all(type(value) is float for value in documents[0])
    for text, row in zip(TEXTS, expected):
        np.testing.assert_allclose(embeddings.embed_query(text), row, atol=1e-6, rtol=0)
    assert embeddings.dim == expected.shape[1]


def test_text_is_not_altered(tiny_encoder):
    """Newlines and tabs reach the tokenizer: the vector is that of the text as given."""
    embeddings = SSEEmbeddings(encoder=tiny_encoder)
    raw = embeddings.embed_query("猫\n\n窓\t眠る")
    assert raw == tiny_encoder.encode(["猫\n\n窓\t眠る"])[0].tolist()


def test_shares_the_encoder_and_loads_from_path(tiny_encoder, tiny_model_path):
    shared = SSEEmbeddings(encoder=tiny_encoder)
    assert shared.encoder is tiny_encoder
    assert shared.model_name_or_path == tiny_encoder.source
    # model_dump() names the model, so the same embeddings can be rebuilt from it.
    rebuilt = SSEEmbeddings(**shared.model_dump())
    assert rebuilt.encoder is not tiny_encoder
    assert rebuilt.embed_query("猫") == shared.embed_query("猫")
    assert SSEEmbeddings(model_name_or_path=tiny_model_path).model_name_or_path == str(tiny_model_path)


def test_model_is_named_by_absolute_path(tiny_encoder, tiny_model_path, monkeypatch):
    """A relative folder is dumped as an absolute path, so the dump loads from any directory."""
    monkeypatch.chdir(tiny_model_path.parent)
    relative = SSEEmbeddings(model_name_or_path=tiny_model_path.name)
    assert relative.model_name_or_path == str(tiny_model_path.resolve())
    # The same folder named two ways is one model, not a conflict.
    assert SSEEmbeddings(encoder=tiny_encoder, model_name_or_path=tiny_model_path.name).encoder is tiny_encoder


def test_bad_configuration(tiny_encoder, tiny_model_path, tmp_path):
    with pytest.raises(ValueError, match="not a Matryoshka prefix"):
        SSEEmbeddings(encoder=tiny_encoder, truncate_dim=100)
    with pytest.raises(ValueError, match="pass one"):
        SSEEmbeddings(encoder=tiny_encoder, model_name_or_path=str(tmp_path))
    with pytest.raises(ValueError, match="instance of SSEEncoder"):
        SSEEmbeddings(encoder="not an encoder")
    with pytest.raises(ValueError):
        SSEEmbeddings(encoder=tiny_encoder, unknown_option=1)
    with pytest.raises(ValueError):
        SSEEmbeddings(encoder=tiny_encoder, batch_size=0)


def test_bad_input(tiny_encoder):
    embeddings = SSEEmbeddings(encoder=tiny_encoder)
    assert embeddings.embed_documents([]) == []
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        embeddings.embed_documents(["ok", None])
    with pytest.raises(TypeError, match="bare str"):
        embeddings.embed_documents("a bare string")
    with pytest.raises(TypeError, match="list of strings"):
        embeddings.embed_documents(None)
    with pytest.raises(TypeError, match="text must be a str"):
        embeddings.embed_query(None)
    with pytest.raises(TypeError, match="text must be a str"):
        embeddings.embed_query(["a list"])


async def test_async_equals_sync_and_rejects_bad_input(tiny_encoder):
    embeddings = SSEEmbeddings(encoder=tiny_encoder, truncate_dim=128)
    assert await embeddings.aembed_documents(TEXTS) == embeddings.embed_documents(TEXTS)
    assert await embeddings.aembed_query(TEXTS[0]) == embeddings.embed_query(TEXTS[0])
    assert await embeddings.aembed_documents([]) == []
    with pytest.raises(TypeError, match="text must be a str"):
        await embeddings.aembed_query(None)
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        await embeddings.aembed_documents([3])


class _GatedEncoder:
    """Wraps the real encoder; ``encode`` waits until the event loop has run another task.

    If encoding ran on the event loop's thread, that task could never run and the wait
    would time out.
    """

    def __init__(self, encoder):
        self._encoder = encoder
        self.loop_ran = threading.Event()
        self.threads: list[int] = []

    def encode(self, texts, **kwargs):
        self.threads.append(threading.get_ident())
        assert self.loop_ran.wait(timeout=10), "the event loop was blocked while encoding"
        return self._encoder.encode(texts, **kwargs)


async def test_async_does_not_block_the_event_loop(tiny_encoder):
    embeddings = SSEEmbeddings(encoder=tiny_encoder)
    gated = _GatedEncoder(tiny_encoder)
    embeddings.encoder = gated

    async def other_task():
        await asyncio.sleep(0)
        gated.loop_ran.set()

    documents, _ = await asyncio.gather(embeddings.aembed_documents(["猫", "犬"]), other_task())
    assert documents == tiny_encoder.encode(["猫", "犬"]).tolist()
    gated.loop_ran.clear()
    query, _ = await asyncio.gather(embeddings.aembed_query("猫"), other_task())
    assert query == documents[0]
    assert threading.get_ident() not in gated.threads


# --- the retriever --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(dev_corpus):
    ids, texts = dev_corpus
    return ids[:200], texts[:200]


@pytest.fixture(scope="module")
def index(tiny_encoder, corpus):
    ids, texts = corpus
    built = MatryoshkaIndex(QdrantClient(":memory:"), "lc_docs", tiny_encoder)
    built.add_texts(
        texts, ids=ids, payloads=[{"group": position % 3, "source": "tatoeba"} for position in range(len(ids))]
    )
    return built


GROUP_1 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])


@pytest.mark.parametrize("query", query_texts(8))
def test_retriever_matches_index_search(index, query):
    retriever = MatryoshkaQdrantRetriever(index=index, k=7)
    documents = retriever.invoke(query)
    points = index.search(query, limit=7)
    assert all(isinstance(document, Document) for document in documents)
    assert [document.id for document in documents] == ids_of(points)
    # qdrant-client local mode scores jitter in the 8th digit between identical calls (BLAS summation order).
    assert [document.metadata["score"] for document in documents] == pytest.approx(
        [point.score for point in points], rel=1e-6
    )
    for document, point in zip(documents, points):
        assert document.page_content == point.payload["text"]
        assert document.metadata == {
            "doc_id": point.payload["doc_id"],
            "group": point.payload["group"],
            "source": "tatoeba",
            "score": document.metadata["score"],  # compared above, to the engine's jitter
        }


def test_retriever_options_reach_the_index(index):
    query = query_texts(1)[0]
    filtered = MatryoshkaQdrantRetriever(index=index, k=5, filter=GROUP_1, prefetch_limit=20).invoke(query)
    expected = index.search(query, limit=5, filter=GROUP_1, prefetch_limit=20)
    assert [d.id for d in filtered] == ids_of(expected)
    assert len(filtered) == 5 and all(d.metadata["group"] == 1 for d in filtered)
    # Per-call overrides: k and filter as invoke() keyword arguments.
    retriever = MatryoshkaQdrantRetriever(index=index)
    assert len(retriever.invoke(query)) == 4
    per_call = retriever.invoke(query, k=2, filter=GROUP_1)
    assert [d.id for d in per_call] == ids_of(index.search(query, limit=2, filter=GROUP_1))
    # search_kwargs pass through (here: single-stage search on the full vector).
    single = MatryoshkaQdrantRetriever(index=index, k=6, search_kwargs={"two_stage": False}).invoke(query)
    assert [d.id for d in single] == ids_of(index.search(query, limit=6, two_stage=False))
    unscored = MatryoshkaQdrantRetriever(index=index, k=1, score_key=None).invoke(query)
    assert "score" not in unscored[0].metadata


def test_retriever_rejects_bad_configuration(index):
    with pytest.raises(TypeError, match="MatryoshkaIndex"):
        MatryoshkaQdrantRetriever(index=object())
    with pytest.raises(ValueError, match="search_kwargs may not set"):
        MatryoshkaQdrantRetriever(index=index, search_kwargs={"limit": 3})
    with pytest.raises(ValueError):
        MatryoshkaQdrantRetriever(index=index, k=0)


async def test_retriever_async_on_sync_and_async_indexes(tiny_encoder, corpus, index):
    ids, texts = corpus
    async_index = AsyncMatryoshkaIndex(AsyncQdrantClient(":memory:"), "lc_docs_async", tiny_encoder)
    await async_index.add_texts(
        texts, ids=ids, payloads=[{"group": p % 3, "source": "tatoeba"} for p in range(len(ids))]
    )
    async_retriever = MatryoshkaQdrantRetriever(index=async_index, k=5, filter=GROUP_1)
    sync_retriever = MatryoshkaQdrantRetriever(index=index, k=5, filter=GROUP_1)
    for query in query_texts(4):
        expected = ids_of(index.search(query, limit=5, filter=GROUP_1))
        assert [d.id for d in await sync_retriever.ainvoke(query)] == expected
        assert [d.id for d in await async_retriever.ainvoke(query)] == expected
    with pytest.raises(TypeError, match="ainvoke"):
        async_retriever.invoke(query_texts(1)[0])


async def test_concurrent_ainvoke_on_a_sync_index(index):
    """Several ainvoke() calls share one sync client from worker threads: same results as one by one."""
    retriever = MatryoshkaQdrantRetriever(index=index, k=5)
    queries = query_texts(8)
    together = await asyncio.gather(*(retriever.ainvoke(query) for query in queries))
    assert [[d.id for d in docs] for docs in together] == [ids_of(index.search(q, limit=5)) for q in queries]


def test_retriever_in_an_lcel_chain(index):
    """Retriever -> formatted context -> prompt -> (fake) LLM -> string, with batch()."""
    retriever = MatryoshkaQdrantRetriever(index=index, k=2)
    prompt = PromptTemplate.from_template("Context:\n{context}\n\nQuestion: {question}")
    seen_prompts: list[str] = []

    def record(prompt_value):
        seen_prompts.append(prompt_value.to_string())
        return prompt_value

    chain = (
        {
            "context": retriever | RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs)),
            "question": RunnablePassthrough(),
        }
        | prompt
        | RunnableLambda(record)
        | FakeListLLM(responses=["answer one", "answer two"])
        | StrOutputParser()
    )
    queries = query_texts(2)
    assert chain.batch(queries) == ["answer one", "answer two"]
    for query in queries:
        top = [point.payload["text"] for point in index.search(query, limit=2)]
        assert f"Context:\n{top[0]}\n{top[1]}\n\nQuestion: {query}" in seen_prompts


class TestRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _index(cls, tiny_encoder):
        ids, texts = distinct_corpus(tiny_encoder, 20)
        built = MatryoshkaIndex(QdrantClient(":memory:"), "lc_standard", tiny_encoder)
        built.add_texts(texts, ids=ids)
        cls.index = built

    @property
    def retriever_constructor(self) -> type[MatryoshkaQdrantRetriever]:
        return MatryoshkaQdrantRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": self.index}

    @property
    def retriever_query_example(self) -> str:
        return "猫が窓のそばで眠っている。"


def run_example(arguments: list[str], monkeypatch, capsys) -> str:
    """Run examples/langchain_rag.py as a script; returns its output."""
    return run_example_script("langchain_rag.py", arguments, monkeypatch, capsys)


def test_example_runs(tiny_model_path, monkeypatch, capsys):
    """examples/langchain_rag.py end to end (on the fixture model; the bundled one once it ships)."""
    output = run_example(["--model", str(tiny_model_path)], monkeypatch, capsys)
    assert "MatryoshkaQdrantRetriever" in output
    # The filtered query may only return the two food documents.
    assert "おいしい日本料理 [topic=food]: " in output
    filtered = output.split("おいしい日本料理 [topic=food]: ")[1].splitlines()[0]
    assert sorted(filtered.split(", ")) == ["ramen", "sushi"]


@pytest.mark.integration
def test_example_on_the_bundled_model(monkeypatch, capsys):
    """With the real weights the example's questions find their documents first."""
    qdrant_part = run_example([], monkeypatch, capsys).split("MatryoshkaQdrantRetriever")[1]
    for question, top in [("窓際で寝ている猫", "cat"), ("東京から大阪への移動手段", "train"), ("雨の多い季節", "rain")]:
        assert qdrant_part.split(f"{question}: ")[1].startswith(f"{top},")
