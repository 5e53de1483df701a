"""Reads and deletes without encoding (get, scroll, delete_where, search_by_vector, exists) on every backend."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from sse_integrations.qdrant import AsyncMatryoshkaIndex, MatryoshkaIndex
from tests.helpers import HYBRID_CORPUS, HYBRID_IDS

GROUP_0 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=0))])


def _payloads() -> list[dict]:
    return [{"group": position % 2} for position in range(len(HYBRID_CORPUS))]


@pytest.fixture(params=["client", "edge"])
def index(request, tiny_encoder, tmp_path):
    where = QdrantClient(":memory:") if request.param == "client" else tmp_path
    made = MatryoshkaIndex(where, "records", tiny_encoder)
    yield made
    made.close()


def test_nothing_is_stored_before_the_first_add(index):
    assert not index.exists()
    assert index.get(["doc-1"]) == [] and index.scroll() == []
    assert index.search_by_vector([0.0] * index.full.dim) == []
    index.delete_where(GROUP_0)  # nothing to delete, no error


def test_get_scroll_delete_where_and_search_by_vector(index, tiny_encoder):
    index.add_texts(HYBRID_CORPUS, ids=HYBRID_IDS, payloads=_payloads())
    assert index.exists()
    asked = ["doc-3", "unknown", "doc-0"]
    assert [record.payload["doc_id"] for record in index.get(asked)] == ["doc-3", "doc-0"]
    with_vectors = index.get(["doc-2"], with_vectors=[index.full.name])[0]
    stored = np.asarray(with_vectors.vector[index.full.name])
    np.testing.assert_allclose(stored, index.encode_queries([HYBRID_CORPUS[2]])[index.full.name][0], atol=1e-6)
    assert sorted(record.payload["doc_id"] for record in index.scroll()) == sorted(HYBRID_IDS)
    expected_group = sorted(i for i, p in zip(HYBRID_IDS, _payloads()) if p["group"] == 0)
    assert sorted(record.payload["doc_id"] for record in index.scroll(GROUP_0)) == expected_group
    hits = index.search_by_vector(stored, limit=3)
    assert hits[0].payload["doc_id"] == "doc-2" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    exact = index.search(HYBRID_CORPUS[2], limit=3, two_stage=False)
    assert [hit.payload["doc_id"] for hit in hits] == [hit.payload["doc_id"] for hit in exact]
    index.delete_where(GROUP_0)
    assert index.count() == len(HYBRID_IDS) - len(expected_group)
    assert all(record.payload["group"] == 1 for record in index.scroll())


def test_bad_arguments_are_named(index):
    index.add_texts(HYBRID_CORPUS[:2], ids=HYBRID_IDS[:2])
    with pytest.raises(ValueError, match="dims"):
        index.search_by_vector([0.1, 0.2])
    with pytest.raises(TypeError, match="bare string"):
        index.get("doc-1")
    with pytest.raises(TypeError, match="Filter"):
        index.delete_where({"group": 0})


@pytest.mark.parametrize("backend", ["client", "edge"])
def test_the_async_index_answers_alike(tiny_encoder, tmp_path, backend):
    async def scenario() -> tuple[list, list, int]:
        where = AsyncQdrantClient(":memory:") if backend == "client" else tmp_path
        index = AsyncMatryoshkaIndex(where, "records", tiny_encoder)
        assert not await index.exists()
        await index.add_texts(HYBRID_CORPUS, ids=HYBRID_IDS, payloads=_payloads())
        got = [record.payload["doc_id"] for record in await index.get(["doc-4", "doc-1"])]
        scrolled = sorted(record.payload["doc_id"] for record in await index.scroll(GROUP_0))
        vector = index.encode_queries([HYBRID_CORPUS[4]])[index.full.name][0]
        assert (await index.search_by_vector(vector, limit=1))[0].payload["doc_id"] == "doc-4"
        await index.delete_where(GROUP_0)
        remaining = await index.count()
        await index.close()
        return got, scrolled, remaining

    got, scrolled, remaining = asyncio.run(scenario())
    assert got == ["doc-4", "doc-1"]
    assert scrolled == sorted(i for i, p in zip(HYBRID_IDS, _payloads()) if p["group"] == 0)
    assert remaining == len(HYBRID_IDS) - len(scrolled)


def test_a_lone_surrogate_in_an_id_or_a_payload_is_named(index):
    """Same message as for texts, naming ids[i] or the payload key; nothing is written."""
    index.add_texts(HYBRID_CORPUS[:2], ids=HYBRID_IDS[:2])
    with pytest.raises(ValueError, match=r"ids\[1\] holds a lone surrogate '\\ud800' at character 1"):
        index.add_texts(["a", "b"], ids=["fine", "x\ud800"])
    for read in (index.get, index.delete):
        with pytest.raises(ValueError, match=r"ids\[0\] holds a lone surrogate"):
            read(["\udfff", "doc-0"])
    with pytest.raises(ValueError, match=r"payloads\[1\]\['title'\] holds a lone surrogate"):
        index.add_texts(["a", "b"], payloads=[{"title": "ok"}, {"title": "\ud800"}])
    with pytest.raises(ValueError, match=r"payloads\[0\]\['tags'\]\['en'\]\[1\] holds a lone surrogate"):
        index.add_texts(["a"], payloads=[{"tags": {"en": ["ok", "\udc00"]}}])
    with pytest.raises(ValueError, match=r"payloads\[0\] has a key '\\ud800' that holds a lone surrogate"):
        index.add_texts(["a"], payloads=[{"\ud800": 1}])
    assert index.count() == 2
    assert [record.payload["doc_id"] for record in index.get(HYBRID_IDS[:2])] == HYBRID_IDS[:2]


def test_searches_during_an_add_do_not_fail(index, tiny_encoder):
    """Local mode's arrays grow under a concurrent read, so its reads take the client's lock; Edge's need none."""
    import threading

    index.add_texts(HYBRID_CORPUS, ids=HYBRID_IDS)
    # Edge's calls hold the GIL, so four searching threads slow its add; fewer texts keep the test short.
    texts = [f"{text} {number}" for number in range(5 if index.embedded else 60) for text in HYBRID_CORPUS]
    adding = threading.Event()
    errors: list[BaseException] = []
    searches = [0]

    def add() -> None:
        try:
            index.add_texts(texts, batch_size=4)  # many upserts, each growing the arrays
        except BaseException as error:
            errors.append(error)
        finally:
            adding.set()

    def search() -> None:
        while not adding.is_set():
            try:
                assert index.search(HYBRID_CORPUS[0], limit=3)
                index.get(HYBRID_IDS[:2])
                searches[0] += 1
            except BaseException as error:
                errors.append(error)

    threads = [threading.Thread(target=add), *(threading.Thread(target=search) for _ in range(4))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, f"{len(errors)} errors, the first: {errors[0]!r}"
    assert searches[0] > 0 and index.count() == len(HYBRID_IDS) + len(texts)


def test_every_method_a_plan_may_name_is_part_of_the_client_contract():
    """The runner calls methods by name: each name is declared by the Protocol (or is the embedded engine's own)."""
    from typing import get_args

    from sse_integrations.qdrant.backends import EMBEDDED_ONLY, AsyncClient, Client, ClientMethod
    from sse_integrations.qdrant.edge import AsyncEdgeClient, EdgeClient

    declared = {name for name in vars(Client) if not name.startswith("_")}
    assert set(get_args(ClientMethod)) == declared | set(EMBEDDED_ONLY)
    assert declared == {name for name in vars(AsyncClient) if not name.startswith("_")}
    for name in get_args(ClientMethod):
        assert callable(getattr(EdgeClient, name)) and callable(getattr(AsyncEdgeClient, name))
        if name not in EMBEDDED_ONLY:
            assert callable(getattr(QdrantClient, name)) and callable(getattr(AsyncQdrantClient, name))


def test_a_failing_call_reaches_the_plan_on_both_runners(tiny_encoder, tmp_path):
    """One error handling: the plan sees the exception at its yield, sync and async alike."""
    from sse_integrations.qdrant.runner import run_plan, run_plan_async

    def plan():
        try:
            yield ("count", {"collection_name": "missing"})
        except Exception as error:
            return f"caught {type(error).__name__}"
        return "no error"

    assert run_plan(plan(), QdrantClient(":memory:")).startswith("caught")
    assert asyncio.run(run_plan_async(plan(), AsyncQdrantClient(":memory:"))).startswith("caught")
