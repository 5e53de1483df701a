"""Multi-tenancy, payload indexes and custom shard keys on every backend (local mode, Qdrant Edge, a server with QDRANT_URL).

Three tenants hold the same 1,000 documents under the same document ids, so a leak of any
kind would show: another tenant's copy of a hit scores exactly as the tenant's own. Every search
mode, filters written to escape the tenant, and deletes by id and by filter must stay inside it.
"""

from __future__ import annotations

import json
import uuid
import warnings

import pytest
from qdrant_client import QdrantClient, models

from sse_integrations.qdrant import (
    TENANCY_METADATA_KEY,
    CollectionMismatchError,
    MatryoshkaIndex,
    TenantError,
    tenant_point_id,
)
from sse_integrations.qdrant.tenancy import RequestScope, scoped_plan
from tests.helpers import CORPUS_FILE, query_texts

TENANTS = ("a", "b", "c")
DOCS_PER_TENANT = 1000


def tenant_is(value: str) -> models.FieldCondition:
    return models.FieldCondition(key="tenant", match=models.MatchValue(value=value))


@pytest.fixture(scope="module")
def documents() -> tuple[list[str], list[str]]:
    with open(CORPUS_FILE, encoding="utf-8") as handle:
        texts = [json.loads(line)["text"] for line in handle][:DOCS_PER_TENANT]
    return [str(i) for i in range(len(texts))], texts


def payloads(count: int) -> list[dict]:
    return [{"group": i % 5, "n": i} for i in range(count)]


def load(index: MatryoshkaIndex, documents) -> None:
    ids, texts = documents
    for tenant in TENANTS:
        index.add_texts(texts, ids=ids, payloads=payloads(len(ids)), tenant=tenant)
    index.optimize()


@pytest.fixture(scope="module", params=[False, True], ids=["whole", "passages"])
def tenant_index(request, module_engine, tiny_encoder, documents):
    """3 tenants x 1,000 documents, sparse on, with and without passages, on each engine (a server with QDRANT_URL)."""
    index = MatryoshkaIndex(
        module_engine.where(),
        module_engine.name("passages" if request.param else "docs"),
        tiny_encoder,
        tenant_field="tenant",
        payload_indexes={"group": "integer"},
        sparse=True,
        passages=request.param,
        show_progress=False,
    )
    load(index, documents)
    yield index
    index.close()


def point_ids_of(tenant: str, count: int = DOCS_PER_TENANT) -> list[str]:
    return [tenant_point_id(str(i), tenant) for i in range(count)]


def escape_filters(other: str) -> dict[str, models.Filter]:
    """Filters that would reach tenant ``other``'s points if the tenant condition could be undone."""
    others = [t for t in TENANTS if t != "a"]
    return {
        "should other": models.Filter(should=[tenant_is(other)]),
        "must_not own": models.Filter(must_not=[tenant_is("a")]),
        "nested should": models.Filter(must=[models.Filter(should=[tenant_is(t) for t in others])]),
        "tenant key other value": models.Filter(must=[tenant_is(other)]),
        "match any others": models.Filter(
            must=[models.FieldCondition(key="tenant", match=models.MatchAny(any=others))]
        ),
        "match except own": models.Filter(
            must=[models.FieldCondition(key="tenant", match=models.MatchExcept(**{"except": ["a"]}))]
        ),
        "min_should others": models.Filter(
            min_should=models.MinShould(conditions=[tenant_is(t) for t in others], min_count=1)
        ),
        "has_id other": models.Filter(must=[models.HasIdCondition(has_id=point_ids_of(other, 50))]),
        "should own or other ids": models.Filter(
            should=[models.HasIdCondition(has_id=point_ids_of(other, 50)), tenant_is(other)]
        ),
        "must_not own ids": models.Filter(must_not=[models.HasIdCondition(has_id=point_ids_of("a"))]),
    }


SEARCHES = {
    "dense two-stage": {"mode": "dense"},
    "dense full only": {"mode": "dense", "two_stage": False},
    "sparse": {"mode": "sparse"},
    "hybrid": {"mode": "hybrid"},
}


def assert_own(points, tenant: str) -> None:
    own = set(point_ids_of(tenant))
    for point in points:
        assert point.payload["tenant"] == tenant, point.payload
        assert str(point.id) in own


@pytest.mark.parametrize("search", SEARCHES)
def test_every_search_mode_stays_in_its_tenant(tenant_index, search):
    queries = query_texts(5)
    for tenant in TENANTS:
        for hits in tenant_index.search_batch(queries, limit=20, tenant=tenant, **SEARCHES[search]):
            assert len(hits) > 0
            assert_own(hits, tenant)
            assert len({point.payload["doc_id"] for point in hits}) == len(hits)  # one copy of each document


@pytest.mark.parametrize("search", SEARCHES)
def test_filters_written_to_escape_find_nothing(tenant_index, search):
    query = query_texts(1)[0]
    for other in ("b", "c"):
        for name, escape in escape_filters(other).items():
            hits = tenant_index.search(query, limit=20, tenant="a", filter=escape, **SEARCHES[search])
            assert hits == [], name


@pytest.mark.parametrize("search", SEARCHES)
def test_a_filter_on_an_indexed_field_narrows_inside_the_tenant(tenant_index, search):
    group = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
    hits = tenant_index.search(query_texts(1)[0], limit=20, tenant="b", filter=group, **SEARCHES[search])
    assert hits
    assert_own(hits, "b")
    assert {point.payload["group"] for point in hits} == {1}


def test_client_side_rescoring_stays_in_its_tenant(tenant_index):
    if tenant_index.passages is not None:
        pytest.skip("passages are scored by the engine only")
    twin = tenant_index.with_options(execution="client")
    hits = twin.search(query_texts(1)[0], limit=10, tenant="c")
    assert hits
    assert_own(hits, "c")
    assert twin.search(query_texts(1)[0], tenant="c", filter=escape_filters("a")["should other"]) == []


def test_reads_by_id_filter_and_vector_stay_in_their_tenant(tenant_index, tiny_encoder):
    index = tenant_index
    assert index.count(tenant="a") == DOCS_PER_TENANT
    assert index.client.count(index.collection_name).count == len(TENANTS) * DOCS_PER_TENANT
    for name, escape in escape_filters("b").items():
        assert index.count(escape, tenant="a") == 0, name
        assert index.scroll(escape, tenant="a") == [], name
    records = index.get(["1", "2"], tenant="b")
    assert [r.payload["doc_id"] for r in records] == ["1", "2"]
    assert {r.payload["tenant"] for r in records} == {"b"}
    # Another tenant's point ids, passed as document ids, name other points: nothing there.
    assert index.get(point_ids_of("b", 5), tenant="a") == []
    assert len(index.scroll(tenant="c")) == DOCS_PER_TENANT
    vector = tiny_encoder.encode([query_texts(1)[0]])[0]
    hits = index.search_by_vector(vector, limit=10, tenant="a")
    assert hits
    assert_own(hits, "a")
    assert index.search_by_vector(vector, tenant="a", filter=escape_filters("c")["nested should"]) == []


def test_requests_without_their_tenant_are_refused(tenant_index):
    index = tenant_index
    for call in (
        lambda: index.search("猫"),
        lambda: index.count(),
        lambda: index.get(["1"]),
        lambda: index.scroll(),
        lambda: index.delete(["1"]),
        lambda: index.delete_where(models.Filter(must=[tenant_is("a")])),
        lambda: index.add_texts(["猫"], ids=["x"]),
    ):
        with pytest.raises(TenantError):
            call()
    with pytest.raises(TenantError, match="this write is for tenant 'a'"):
        index.add_texts(["猫"], ids=["x"], payloads=[{"tenant": "b"}], tenant="a")
    assert index.count(tenant="a") == DOCS_PER_TENANT


def test_deletes_by_id_and_by_filter_stay_in_their_tenant(engine, tiny_encoder, documents):
    index = MatryoshkaIndex(engine.where(), engine.name("docs"), tiny_encoder, tenant_field="tenant", sparse=True)
    load(index, documents)

    def counts() -> dict[str, int]:
        return {tenant: index.count(tenant=tenant) for tenant in TENANTS}

    index.delete([str(i) for i in range(10)], tenant="a")  # the same ids exist in b and c
    assert counts() == {"a": 990, "b": 1000, "c": 1000}
    index.delete(point_ids_of("b", 20), tenant="a")  # b's point ids as a's document ids: none of a's
    for name, escape in escape_filters("b").items():
        index.delete_where(escape, tenant="a")
        assert counts() == {"a": 990, "b": 1000, "c": 1000}, name
    index.delete_where(
        models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=0))]), tenant="c"
    )
    assert counts() == {"a": 990, "b": 1000, "c": 800}
    assert index.get(["0", "5"], tenant="b") != []
    # BM25's running statistics forgot exactly the deleted documents.
    assert index.sparse_stats["doc_count"] == 990 + 1000 + 800
    index.close()


def test_a_handle_and_a_bound_index_serve_their_tenant_only(engine, tiny_encoder):
    client = engine.where()
    index = MatryoshkaIndex(client, engine.name("docs"), tiny_encoder, tenant_field="tenant")
    # One multi-tenant bulk load: each payload names its tenant.
    index.add_texts(
        ["猫が眠る", "犬が走る", "鳥が飛ぶ"], ids=["1", "1", "1"], payloads=[{"tenant": t} for t in TENANTS]
    )
    a = index.for_tenant("a")
    assert [p.payload["text"] for p in a.search("猫")] == ["猫が眠る"]
    assert a.count() == 1
    with pytest.raises(TenantError, match="bound to tenant 'a'"):
        a.search("猫", tenant="b")
    with pytest.raises(TenantError, match="bound to tenant 'a'"):
        a.for_tenant("b")
    with pytest.raises(TenantError, match="no 'tenant'"):
        index.add_texts(["魚"], ids=["2"], payloads=[{"n": 1}])
    a.add_texts(["猫が遊ぶ"], ids=["2"])
    assert index.count(tenant="a") == 2 and index.count(tenant="b") == 1
    index.close()
    bound = MatryoshkaIndex(
        client, engine.name("docs"), tiny_encoder, tenant="c"
    )  # the tenant field is the collection's
    assert [p.payload["text"] for p in bound.search("猫")] == ["鳥が飛ぶ"]
    with pytest.raises(TenantError, match="bound to tenant 'c'"):
        bound.count(tenant="a")
    with pytest.raises(TenantError):
        bound.add_texts(["猫"], ids=["3"], payloads=[{"tenant": "a"}])
    bound.close()


def test_point_ids_are_per_tenant_and_keep_the_id_kinds_apart():
    assert tenant_point_id("1", "a") != tenant_point_id("1", "b")
    assert tenant_point_id("1", "a") != tenant_point_id(1, "a")
    key = uuid.uuid4()
    assert tenant_point_id(key, "a") == tenant_point_id(str(key), "a") != str(key)
    assert str(uuid.UUID(tenant_point_id("doc", "a"))) == tenant_point_id("doc", "a")
    with pytest.raises(ValueError, match=r"ids\[3\]"):
        tenant_point_id(-1, "a", name="ids[3]")


def test_a_client_call_the_scope_does_not_know_is_refused():
    def plan():
        yield ("delete_collection", {"collection_name": "docs"})

    with pytest.raises(TenantError, match="delete_collection"):
        next(scoped_plan(plan(), RequestScope("tenant", "a")))


def test_payload_indexes_on_the_embedded_engine(tiny_encoder, tmp_path):
    index = MatryoshkaIndex(tmp_path, "docs", tiny_encoder, tenant_field="tenant", payload_indexes={"group": "integer"})
    index.add_texts(["猫"], ids=["1"], payloads=[{"group": 1}], tenant="a")
    schema = index.client.get_collection("docs").payload_schema
    assert schema["tenant"].data_type == models.PayloadSchemaType.KEYWORD and schema["tenant"].params.is_tenant
    assert schema["group"].data_type == models.PayloadSchemaType.INTEGER
    index.close()
    # Reopened with one more declared field: the engine indexes it, the record lists it.
    index = MatryoshkaIndex(
        tmp_path, "docs", tiny_encoder, payload_indexes={"group": "integer", "topic": models.PayloadSchemaType.KEYWORD}
    )
    assert index.count(tenant="a") == 1
    info = index.client.get_collection("docs")
    assert info.payload_schema["topic"].data_type == models.PayloadSchemaType.KEYWORD
    assert set(info.config.metadata[TENANCY_METADATA_KEY]["payload_indexes"]) == {"tenant", "group", "topic"}
    index.close()
    with pytest.raises(CollectionMismatchError, match="'group' as 'integer'"):
        MatryoshkaIndex(tmp_path, "docs", tiny_encoder, payload_indexes={"group": "keyword"}).count(tenant="a")
    with pytest.raises(CollectionMismatchError, match="keeps its tenants in 'tenant'"):
        MatryoshkaIndex(tmp_path, "docs", tiny_encoder, tenant_field="owner").count(tenant="a")


def test_local_mode_records_the_payload_indexes_quietly(tiny_encoder):
    client = QdrantClient(":memory:")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # qdrant-client warns on create_payload_index in local mode
        index = MatryoshkaIndex(client, "docs", tiny_encoder, tenant_field="tenant", payload_indexes={"n": "integer"})
        index.add_texts(["猫"], ids=["1"], payloads=[{"n": 1}], tenant="a")
        reopened = MatryoshkaIndex(client, "docs", tiny_encoder, payload_indexes={"n": "integer", "k": "keyword"})
        assert reopened.count(tenant="a") == 1
    record = client.get_collection("docs").config.metadata[TENANCY_METADATA_KEY]
    assert record["tenant_field"] == "tenant"
    assert record["payload_indexes"] == {
        "n": {"type": "integer"},
        "k": {"type": "keyword"},
        "tenant": {"type": "keyword", "is_tenant": True},
    }


def test_bad_tenancy_options_are_refused(tiny_encoder):
    with pytest.raises(ValueError, match="must be one of"):
        MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder, payload_indexes={"n": "int"})
    with pytest.raises(ValueError, match="keyword index"):
        MatryoshkaIndex(
            QdrantClient(":memory:"), "docs", tiny_encoder, tenant_field="t", payload_indexes={"t": "integer"}
        )
    with pytest.raises(ValueError, match="fills itself"):
        MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder, tenant_field="doc_id")
    with pytest.raises(TenantError, match="non-empty str"):
        MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder, tenant_field="t", tenant="")
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder, tenant="a")
    with pytest.raises(TenantError, match="no tenant field"):
        index.add_texts(["猫"])


class RecordingClient(QdrantClient):
    """A real local-mode client that also records the keyword arguments of each point call."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.calls: list[tuple[str, dict]] = []

    def _record(self, name: str, kwargs: dict) -> None:
        self.calls.append((name, kwargs))

    def upsert(self, collection_name, points, **kwargs):
        self._record("upsert", kwargs)
        return super().upsert(collection_name, points, **kwargs)

    def delete(self, collection_name, points_selector, **kwargs):
        self._record("delete", kwargs)
        return super().delete(collection_name, points_selector, **kwargs)

    def count(self, collection_name, **kwargs):
        self._record("count", kwargs)
        return super().count(collection_name, **kwargs)

    def scroll(self, collection_name, **kwargs):
        self._record("scroll", kwargs)
        return super().scroll(collection_name, **kwargs)

    def query_batch_points(self, collection_name, requests, **kwargs):
        self._record("query_batch_points", {"shard_keys": [r.shard_key for r in requests]})
        return super().query_batch_points(collection_name, requests, **kwargs)

    def query_points(self, collection_name, **kwargs):
        self._record("query_points", kwargs)
        return super().query_points(collection_name, **kwargs)


def test_shard_keys_reach_every_client_call(tiny_encoder):
    client = RecordingClient()
    index = MatryoshkaIndex(client, "docs", tiny_encoder, tenant_field="tenant", sparse=True, shard_key_selector="big")
    index.add_texts(["猫が眠る", "犬が走る"], ids=["1", "2"], tenant="a")
    index.search("猫", tenant="a")
    index.search("猫", tenant="a", mode="hybrid", shard_key_selector=["big", "spare"])
    index.get(["1"], tenant="a")
    index.count(tenant="a")
    index.search_by_vector(tiny_encoder.encode(["猫"])[0], tenant="a")
    index.delete(["2"], tenant="a")
    seen = {name for name, _ in client.calls}
    assert seen == {"upsert", "delete", "count", "scroll", "query_batch_points", "query_points"}
    for name, kwargs in client.calls:
        keys = kwargs["shard_keys"] if name == "query_batch_points" else [kwargs.get("shard_key_selector")]
        assert all(key in ("big", ["big", "spare"]) for key in keys), (name, kwargs)
    assert ("query_batch_points", {"shard_keys": [["big", "spare"]]}) in client.calls
    assert index.count(tenant="a") == 1  # local mode ignores the shard key: the data is all there


def test_the_embedded_engine_refuses_shard_keys(tiny_encoder, tmp_path):
    with pytest.raises(ValueError, match="one shard"):
        MatryoshkaIndex(tmp_path / "one", "docs", tiny_encoder, shard_key_selector="big")
    index = MatryoshkaIndex(tmp_path / "two", "docs", tiny_encoder)
    with pytest.raises(ValueError, match="one shard"):
        index.add_texts(["猫"], shard_key_selector="big")
    index.close()


# --- the vector stores ---------------------------------------------------------------------

STORE_DOCS = 200


@pytest.fixture
def store_index(engine, tiny_encoder):
    index = MatryoshkaIndex(engine.where(), engine.name("store"), tiny_encoder, tenant_field="tenant", sparse=True)
    yield index
    index.close()


def test_the_langchain_store_serves_its_tenant_only(store_index, documents):
    from sse_integrations.langchain import MatryoshkaQdrantVectorStore

    ids, texts = documents[0][:STORE_DOCS], documents[1][:STORE_DOCS]
    for tenant in TENANTS:
        store = MatryoshkaQdrantVectorStore(store_index, tenant=tenant)
        store.add_texts(texts, metadatas=[{"group": i % 5} for i in range(STORE_DOCS)], ids=ids)
    query = query_texts(1)[0]
    for mode in ("dense", "sparse", "hybrid"):
        store = MatryoshkaQdrantVectorStore(store_index, tenant="a", retrieval_mode=mode)
        found = store.similarity_search(query, k=20)
        assert found and {doc.metadata["tenant"] for doc in found} == {"a"}
        assert store.similarity_search(query, k=20, filter={"tenant": "b"}) == []
        assert store.similarity_search(query, k=20, filter=escape_filters("b")["should other"]) == []
        within = store.similarity_search(query, k=20, filter={"group": 2})
        assert within and {(d.metadata["tenant"], d.metadata["group"]) for d in within} == {("a", 2)}
        retrieved = store.as_retriever(search_kwargs={"k": 10}).invoke(query)
        assert retrieved and {doc.metadata["tenant"] for doc in retrieved} == {"a"}
    store = MatryoshkaQdrantVectorStore(store_index, tenant="a")
    diverse = store.as_retriever(search_type="mmr", search_kwargs={"k": 5, "fetch_k": 20}).invoke(query)
    assert len(diverse) == 5 and {doc.metadata["tenant"] for doc in diverse} == {"a"}
    assert [doc.id for doc in store.get_by_ids(ids[:3])] == ids[:3]
    assert {doc.metadata["tenant"] for doc in store.get_by_ids(ids[:3])} == {"a"}
    store.delete(ids[:10])
    store.delete(filter={"tenant": "b"})  # another tenant's, through the filter: matches none of a's
    MatryoshkaQdrantVectorStore(store_index, tenant="c").delete()  # "delete all" is all of c's
    assert {t: store_index.count(tenant=t) for t in TENANTS} == {"a": STORE_DOCS - 10, "b": STORE_DOCS, "c": 0}


def test_the_llama_index_store_serves_its_tenant_only(store_index, documents, tiny_encoder):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import (
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
    )

    from sse_integrations.llama_index import MatryoshkaQdrantVectorStore, SSEEmbedding

    ids, texts = documents[0][:STORE_DOCS], documents[1][:STORE_DOCS]
    stores = {tenant: MatryoshkaQdrantVectorStore(store_index, tenant=tenant) for tenant in TENANTS}
    for store in stores.values():
        store.add([TextNode(id_=i, text=t, metadata={"group": n % 5}) for n, (i, t) in enumerate(zip(ids, texts))])
    a, query = stores["a"], query_texts(1)[0]
    other = MetadataFilters(filters=[MetadataFilter(key="tenant", value="b")])
    for mode, alpha in (
        (VectorStoreQueryMode.DEFAULT, None),
        (VectorStoreQueryMode.SPARSE, None),
        (VectorStoreQueryMode.HYBRID, None),
        (VectorStoreQueryMode.HYBRID, 0.7),
    ):
        asked = VectorStoreQuery(query_str=query, similarity_top_k=20, mode=mode, alpha=alpha)
        result = a.query(asked)
        assert result.nodes and {node.metadata["tenant"] for node in result.nodes} == {"a"}
        asked.filters = other
        assert a.query(asked).nodes == []
    retriever = VectorStoreIndex.from_vector_store(a, embed_model=SSEEmbedding(encoder=tiny_encoder)).as_retriever(
        similarity_top_k=10
    )
    hits = retriever.retrieve(query)
    assert hits and {hit.node.metadata["tenant"] for hit in hits} == {"a"}
    assert a.get_nodes(filters=other) == []
    assert {node.metadata["tenant"] for node in a.get_nodes(ids[:5])} == {"a"}
    a.delete_nodes(ids[:10])
    a.delete_nodes(filters=other)
    stores["c"].clear()
    assert {t: store_index.count(tenant=t) for t in TENANTS} == {"a": STORE_DOCS - 10, "b": STORE_DOCS, "c": 0}


async def test_the_async_index_and_its_handles_are_scoped_alike(engine, tiny_encoder):
    from sse_integrations.qdrant import AsyncMatryoshkaIndex

    index = AsyncMatryoshkaIndex(
        engine.async_where(), engine.name("docs"), tiny_encoder, tenant_field="tenant", sparse=True
    )
    for tenant in TENANTS:
        await index.add_texts([f"{tenant}の猫が眠る", "犬が走る"], ids=["1", "2"], tenant=tenant)
    b = index.for_tenant("b")
    for mode in ("dense", "sparse", "hybrid"):
        hits = await b.search("猫", mode=mode)
        assert hits and {point.payload["tenant"] for point in hits} == {"b"}
        assert await b.search("猫", mode=mode, filter=escape_filters("c")["should other"]) == []
    await b.delete(["1"])
    assert [await index.count(tenant=t) for t in TENANTS] == [2, 1, 2]
    with pytest.raises(TenantError):
        await index.count()
    await index.close()


def test_the_command_line_indexes_and_searches_one_tenant(tmp_path, tiny_model_path, capsys):
    from sse_integrations.cli import main

    where = ["--collection", "docs", "--qdrant-path", str(tmp_path / "q"), "--model", str(tiny_model_path)]
    for tenant in ("a", "b"):
        corpus = tmp_path / f"{tenant}.jsonl"
        rows = [{"id": str(i), "text": f"{tenant}: {t}"} for i, t in enumerate(["猫が眠る", "犬が走る"])]
        corpus.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in rows), encoding="utf-8")
        assert main(["index", str(corpus), *where, "--tenant", tenant, "--no-progress"]) == 0
        assert f"tenant {tenant!r} holds 2 points" in capsys.readouterr().out
    assert main(["search", "猫", *where, "--tenant", "b", "--json", "--where", "tenant=a"]) == 0
    assert json.loads(capsys.readouterr().out)["hits"] == []
    assert main(["search", "猫", *where, "--tenant", "b", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert sorted(hit["text"] for hit in hits) == ["b: 犬が走る", "b: 猫が眠る"]
    assert main(["search", "猫", *where]) == 2  # a multi-tenant collection needs --tenant
    assert "multi-tenant" in capsys.readouterr().err
