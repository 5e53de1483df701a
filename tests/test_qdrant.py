"""MatryoshkaIndex on real qdrant-client local mode (":memory:" and path=), sync and async.

The fixture model has random weights, so these tests check exact behaviour: rankings equal
a numpy brute force over the same vectors, and both execution paths agree with each other.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, QdrantClient, models

from sse_integrations.matryoshka import truncate_and_normalize
from sse_integrations.qdrant import (
    DEFAULT_COARSE_DIM,
    DEFAULT_PREFETCH_FACTOR,
    ID_NAMESPACE,
    AsyncMatryoshkaIndex,
    CollectionMismatchError,
    DenseStage,
    IndexingError,
    MatryoshkaIndex,
    build_points,
    encode_stages,
    make_stages,
    prefetch_limits,
    to_point_id,
    two_stage_query,
    vectors_config,
)
from sse_integrations.qdrant.backends import backend_of
from sse_integrations.qdrant.edge import EdgeClient
from sse_integrations.sparse import SparseVector
from tests.helpers import hit_ids, query_texts


@pytest.fixture(scope="module")
def corpus(dev_corpus) -> tuple[list[str], list[str]]:
    """400 documents with distinct embeddings (see tests.helpers.distinct_corpus)."""
    return dev_corpus


@pytest.fixture(scope="module")
def queries() -> list[str]:
    return query_texts(12)


@pytest.fixture(scope="module")
def filled(tiny_encoder, corpus, module_engine):
    """One collection shared by the read-only tests, on each backend."""
    ids, texts = corpus
    index = MatryoshkaIndex(module_engine.where(), module_engine.name("docs"), tiny_encoder)
    payloads = [{"group": position % 3} for position in range(len(texts))]
    index.add_texts(texts, ids=ids, payloads=payloads, batch_size=64)
    return index


def brute_force(encoder, texts, query, coarse_dim, prefetch, limit, allowed=None):
    """Coarse top-``prefetch`` by numpy, then rescoring with the full vector: (positions, scores)."""
    docs = encoder.encode(texts)
    q = encoder.encode([query])[0]
    coarse_scores = truncate_and_normalize(docs, coarse_dim) @ truncate_and_normalize(q[None], coarse_dim)[0]
    candidates = np.argsort(-coarse_scores, kind="stable")
    if allowed is not None:
        candidates = np.array([c for c in candidates if allowed[c]])
    candidates = candidates[:prefetch]
    full_scores = docs[candidates] @ q
    order = np.argsort(-full_scores, kind="stable")[:limit]
    return [int(c) for c in candidates[order]], full_scores[order]


# --- layout and helpers ---------------------------------------------------------------------


def test_collection_layout_has_named_cosine_vectors(filled):
    info = filled.client.get_collection(filled.collection_name)
    vectors = info.config.params.vectors
    assert set(vectors) == {"coarse", "full"}
    assert vectors["coarse"].size == DEFAULT_COARSE_DIM == 64 and vectors["full"].size == 512
    assert {v.distance for v in vectors.values()} == {models.Distance.COSINE}
    assert filled.count() == 400


def test_points_hold_text_doc_id_payload_and_prefix_vectors(filled, tiny_encoder, corpus):
    ids, texts = corpus
    record = filled.client.retrieve(filled.collection_name, [to_point_id(ids[7])], with_vectors=True)[0]
    assert record.payload == {"text": texts[7], "doc_id": ids[7], "group": 7 % 3}
    full = tiny_encoder.encode([texts[7]])[0]
    np.testing.assert_allclose(record.vector["full"], full, atol=1e-6)
    np.testing.assert_allclose(
        record.vector["coarse"], truncate_and_normalize(full[None], DEFAULT_COARSE_DIM)[0], atol=1e-6
    )


def test_make_stages_names_dims_and_validation():
    stages = make_stages(512, stages=[32, 128, 512], quantization="binary")
    assert [(s.name, s.dim) for s in stages] == [("coarse", 32), ("coarse_128", 128), ("full", 512)]
    config = vectors_config(stages)
    assert isinstance(config["coarse"].quantization_config, models.BinaryQuantization)
    assert config["full"].quantization_config is None
    scalar = vectors_config(make_stages(512, 64, quantization="scalar"))
    assert isinstance(scalar["coarse"].quantization_config, models.ScalarQuantization)
    assert [s.name for s in make_stages(512, coarse_name="c64", full_name="f512")] == ["c64", "f512"]
    with pytest.raises(ValueError, match="not a Matryoshka prefix"):
        make_stages(512, 48)
    with pytest.raises(ValueError, match="increase"):
        make_stages(512, stages=[128, 64])
    with pytest.raises(ValueError, match="distinct"):
        make_stages(512, stages=[DenseStage("v", 64), DenseStage("v", 512)])
    with pytest.raises(ValueError, match="at least two"):
        make_stages(512, stages=[512])
    with pytest.raises(ValueError, match="quantization"):
        vectors_config(make_stages(512, quantization="product"))


def test_only_the_first_stage_gets_an_hnsw_graph_by_default():
    config = vectors_config(make_stages(512, stages=[32, 128, 512]))
    assert config["coarse"].hnsw_config is None  # the collection's HNSW settings
    assert config["coarse_128"].hnsw_config.m == 0 and config["full"].hnsw_config.m == 0
    graphs = vectors_config([DenseStage("c", 64, hnsw=False), DenseStage("f", 512, hnsw=True)])
    assert graphs["c"].hnsw_config.m == 0 and graphs["f"].hnsw_config is None


def test_point_ids_are_deterministic_and_pass_ints_and_uuids_through():
    some_uuid = str(uuid.uuid4())
    assert to_point_id(42) == 42
    assert to_point_id(some_uuid) == some_uuid
    assert to_point_id(uuid.UUID(some_uuid)) == some_uuid
    assert to_point_id("doc-1") == str(uuid.uuid5(ID_NAMESPACE, "doc-1")) == to_point_id("doc-1")
    assert to_point_id("doc-1") != to_point_id("doc-2")
    assert to_point_id(some_uuid.upper()) != some_uuid  # only the canonical form passes through
    with pytest.raises(ValueError, match=">= 0"):
        to_point_id(-1)
    with pytest.raises(TypeError):
        to_point_id(1.5)
    with pytest.raises(TypeError):
        to_point_id(True)


def test_low_level_helpers_build_points_and_query(tiny_encoder):
    stages = make_stages(512)
    vectors = encode_stages(tiny_encoder, ["猫", "犬"], stages)
    assert vectors["coarse"].shape == (2, DEFAULT_COARSE_DIM) and vectors["full"].shape == (2, 512)
    points = build_points(["a", 7], ["猫", "犬"], vectors, [{"k": 1}, None])
    assert points[0].payload == {"k": 1, "text": "猫", "doc_id": "a"} and points[1].id == 7
    query = two_stage_query(
        {n: v[0] for n, v in vectors.items()}, stages, limit=5, prefetch_limit=40, filter=models.Filter(must=[])
    )
    assert query["using"] == "full" and query["limit"] == 5
    assert query["prefetch"].using == "coarse" and query["prefetch"].limit == 40
    assert query["prefetch"].filter is not None
    nested = two_stage_query(
        {"coarse": [1.0] * 32, "coarse_128": [1.0] * 128, "full": [1.0] * 512},
        make_stages(512, stages=[32, 128, 512]),
        limit=10,
        prefetch_limit=[400, 60],
    )
    assert nested["prefetch"].using == "coarse_128" and nested["prefetch"].limit == 60
    assert nested["prefetch"].prefetch.using == "coarse" and nested["prefetch"].prefetch.limit == 400
    assert nested["prefetch"].filter is None


def test_build_points_takes_ready_made_vectors_for_other_kinds(tiny_encoder):
    # Hybrid search adds a sparse vector per document next to the dense prefixes.
    vectors = dict(encode_stages(tiny_encoder, ["猫"], make_stages(512)))
    vectors["sparse"] = [models.SparseVector(indices=[3, 9], values=[0.5, 1.0])]
    point = build_points(["a"], ["猫"], vectors)[0]
    assert point.vector["sparse"].indices == [3, 9] and len(point.vector["full"]) == 512


def test_build_points_turns_this_packages_sparse_vectors_into_qdrant_models(tiny_encoder):
    vectors = dict(encode_stages(tiny_encoder, ["猫", "犬"], make_stages(512)))
    vectors["sparse"] = [SparseVector([3, 9], [0.5, 1.0]), SparseVector([], [])]
    points = build_points(["a", "b"], ["猫", "犬"], vectors)
    assert all(isinstance(point.vector["sparse"], models.SparseVector) for point in points)
    assert points[0].vector["sparse"].values == [0.5, 1.0] and points[1].vector["sparse"].indices == []


def test_numpy_integer_ids(tiny_encoder):
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder)
    assert index.add_texts(["一", "二"], ids=np.arange(5, 7)) == [5, 6]
    assert index.client.retrieve("docs", [6])[0].payload["doc_id"] == 6


def test_prefetch_limits():
    assert prefetch_limits(2, 10) == [DEFAULT_PREFETCH_FACTOR * 10]
    assert prefetch_limits(2, 10, prefetch_factor=10) == [100]
    assert prefetch_limits(2, 10, 5) == [10]  # never fewer candidates than hits
    assert prefetch_limits(3, 10, 1000) == [1000, 100]
    assert prefetch_limits(3, 10, [300, 50]) == [300, 50]
    with pytest.raises(ValueError, match="2 values"):
        prefetch_limits(3, 10, [300])
    with pytest.raises(ValueError, match="grow"):
        prefetch_limits(3, 10, [50, 300])
    with pytest.raises(ValueError, match="positive"):
        prefetch_limits(2, 0)


# --- search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("execution", ["auto", "client", "prefetch"])
def test_two_stage_equals_brute_force_rescoring(filled, tiny_encoder, corpus, queries, execution):
    ids, texts = corpus
    index = MatryoshkaIndex(filled.client, filled.collection_name, tiny_encoder, execution=execution)
    for query in queries[:4]:
        expected, scores = brute_force(tiny_encoder, texts, query, DEFAULT_COARSE_DIM, prefetch=30, limit=10)
        hits = index.search(query, limit=10, prefetch_limit=30)
        assert hit_ids(hits) == [ids[p] for p in expected]
        np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-5)
        assert all(isinstance(h, models.ScoredPoint) for h in hits)


def test_both_execution_paths_rank_identically(filled, tiny_encoder, queries):
    client_side = MatryoshkaIndex(filled.client, filled.collection_name, tiny_encoder, execution="client")
    query_api = MatryoshkaIndex(filled.client, filled.collection_name, tiny_encoder, execution="prefetch")
    assert filled.execution == "auto" and filled.uses_prefetch()  # every engine runs the whole plan
    a = client_side.search_batch(queries, limit=10)
    b = query_api.search_batch(queries, limit=10)
    assert [[p.id for p in hits] for hits in a] == [[p.id for p in hits] for hits in b]
    for left, right in zip(a, b):
        np.testing.assert_allclose([p.score for p in left], [p.score for p in right], atol=1e-6)
        assert [p.payload for p in left] == [p.payload for p in right]


def test_server_client_gets_one_nested_prefetch_query(filled, tiny_encoder, queries):
    """A server client is never reached here: its calls are forwarded to the local engine,
    which executes the very requests a server would receive."""
    remote = QdrantClient(url="http://127.0.0.1:9", check_compatibility=False)
    calls = []
    for name in ("collection_exists", "get_collection", "query_batch_points", "retrieve"):

        def forward(*args, _name=name, **kwargs):
            calls.append((_name, kwargs))
            return getattr(filled.client, _name)(*args, **kwargs)

        setattr(remote, name, forward)
    index = MatryoshkaIndex(remote, filled.collection_name, tiny_encoder)
    assert index._uses_prefetch()
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=2))])
    hits = index.search(queries[2], limit=5, filter=flt)
    searches = [kwargs for name, kwargs in calls if name in ("query_batch_points", "retrieve")]
    assert len(searches) == 1 and set(index.last_timings) == {"encode", "query"}
    request = searches[0]["requests"][0]
    assert (request.using, request.limit, request.filter) == ("full", 5, None)
    assert (request.prefetch.using, request.prefetch.limit, request.prefetch.filter) == (
        "coarse",
        DEFAULT_PREFETCH_FACTOR * 5,
        flt,
    )
    assert hit_ids(hits) == hit_ids(filled.search(queries[2], limit=5, filter=flt))


@pytest.mark.filterwarnings("ignore:Local mode performs exact")  # the local engine behind the spy ignores them
def test_coarse_stage_params_hnsw_ef_and_no_float_rescoring_unless_the_call_sets_them(filled, tiny_encoder, queries):
    remote = QdrantClient(url="http://127.0.0.1:9", check_compatibility=False)
    requests = []

    def forward(*args, **kwargs):
        requests.extend(kwargs["requests"])
        return filled.client.query_batch_points(*args, **kwargs)

    remote.query_batch_points = forward
    remote.collection_exists = filled.client.collection_exists
    remote.get_collection = filled.client.get_collection
    index = MatryoshkaIndex(remote, filled.collection_name, tiny_encoder, hnsw_ef=300)
    index.search(queries[0], limit=5)
    index.search(queries[0], limit=5, search_params=models.SearchParams(exact=True))
    index.search(queries[0], limit=5, two_stage=False)
    index.search(
        queries[0],
        limit=5,
        search_params=models.SearchParams(quantization=models.QuantizationSearchParams(rescore=True)),
    )
    coarse, explicit, single, rescored = requests
    no_coarse_rescore = models.QuantizationSearchParams(rescore=False)
    assert coarse.prefetch.params == models.SearchParams(hnsw_ef=300, quantization=no_coarse_rescore)
    assert coarse.params is None
    assert explicit.prefetch.params == models.SearchParams(exact=True, quantization=no_coarse_rescore)
    assert single.prefetch is None and single.params is None  # the full vector has no graph to tune
    # A caller's own quantization settings are kept as given.
    assert rescored.prefetch.params.quantization == models.QuantizationSearchParams(rescore=True)
    assert MatryoshkaIndex(remote, filled.collection_name, tiny_encoder).coarse_search_params(
        None
    ) == models.SearchParams(quantization=no_coarse_rescore)
    with pytest.raises(ValueError, match="hnsw_ef"):
        MatryoshkaIndex(remote, filled.collection_name, tiny_encoder, hnsw_ef=0)


def test_local_mode_gets_no_search_params_it_did_not_ask_for(filled, queries, monkeypatch, tmp_path):
    """Local mode scans floats exactly and warns about search parameters: the index adds none of its own."""
    if filled.backend != "local":
        pytest.skip("about qdrant-client's local mode alone")
    sent = []
    forward = filled.client.query_batch_points

    def spy(*args, **kwargs):
        sent.extend(kwargs["requests"])
        return forward(*args, **kwargs)

    monkeypatch.setattr(filled.client, "query_batch_points", spy)
    filled.search(queries[0], limit=5)
    assert sent[0].prefetch.params is None
    assert backend_of(filled.client) == backend_of(QdrantClient(path=str(tmp_path / "local"))) == "local"
    assert backend_of(QdrantClient(url="http://127.0.0.1:9", check_compatibility=False)) == "server"
    assert backend_of(EdgeClient(tmp_path / "edge")) == "embedded"


def test_three_stages_nested_prefetch_matches_client_rescoring(tiny_encoder, corpus, queries):
    ids, texts = corpus
    client = QdrantClient(":memory:")
    kwargs = dict(stages=[32, 128, 512], prefetch_limit=[80, 25])
    local = MatryoshkaIndex(client, "three", tiny_encoder, execution="client", **kwargs)
    local.add_texts(texts, ids=ids)
    assert set(client.get_collection("three").config.params.vectors) == {"coarse", "coarse_128", "full"}
    nested = MatryoshkaIndex(client, "three", tiny_encoder, execution="prefetch", **kwargs)
    docs = tiny_encoder.encode(texts)
    for query in queries[:4]:
        q = tiny_encoder.encode([query])[0]
        order = np.argsort(-(truncate_and_normalize(docs, 32) @ truncate_and_normalize(q[None], 32)[0]), kind="stable")[
            :80
        ]
        mid = order[
            np.argsort(
                -(truncate_and_normalize(docs[order], 128) @ truncate_and_normalize(q[None], 128)[0]), kind="stable"
            )[:25]
        ]
        final = mid[np.argsort(-(docs[mid] @ q), kind="stable")[:10]]
        expected = [ids[p] for p in final]
        assert hit_ids(local.search(query)) == expected
        assert hit_ids(nested.search(query)) == expected


def test_single_stage_is_the_exact_full_ranking(filled, tiny_encoder, corpus, queries):
    ids, texts = corpus
    docs = tiny_encoder.encode(texts)
    q = tiny_encoder.encode([queries[0]])[0]
    expected = [ids[p] for p in np.argsort(-(docs @ q), kind="stable")[:10]]
    assert hit_ids(filled.search(queries[0], two_stage=False)) == expected
    # With every point a candidate, two-stage is exact too.
    assert hit_ids(filled.search(queries[0], prefetch_limit=len(texts))) == expected


@pytest.mark.parametrize("execution", ["client", "prefetch"])
def test_filter_applies_to_the_candidates(filled, tiny_encoder, corpus, queries, execution):
    ids, texts = corpus
    index = MatryoshkaIndex(filled.client, filled.collection_name, tiny_encoder, execution=execution)
    flt = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
    allowed = np.array([position % 3 == 1 for position in range(len(texts))])
    expected, _ = brute_force(
        tiny_encoder, texts, queries[1], DEFAULT_COARSE_DIM, prefetch=30, limit=10, allowed=allowed
    )
    hits = index.search(queries[1], limit=10, prefetch_limit=30, filter=flt)
    assert hit_ids(hits) == [ids[p] for p in expected]
    assert all(h.payload["group"] == 1 for h in hits)


def test_search_batch_equals_single_searches(filled, queries):
    batch = filled.search_batch(queries[:5], limit=7)
    assert [hit_ids(hits) for hits in batch] == [hit_ids(filled.search(q, limit=7)) for q in queries[:5]]
    assert filled.search_batch([], limit=3) == []


def test_payload_and_vector_selection(filled, queries):
    bare = filled.search(queries[0], limit=3, with_payload=False)
    assert all(h.payload is None and h.vector is None for h in bare)
    with_vectors = filled.search(queries[0], limit=3, with_vectors=["coarse"])
    assert all(set(h.vector) == {"coarse"} and len(h.vector["coarse"]) == DEFAULT_COARSE_DIM for h in with_vectors)
    assert set(filled.search(queries[0], limit=1, with_vectors=True)[0].vector) == {"coarse", "full"}


def test_timings_of_each_stage(filled, tiny_encoder, queries):
    filled.search(queries[0])
    assert set(filled.last_timings) == {"encode", "query"}  # one engine request
    client_side = MatryoshkaIndex(filled.client, filled.collection_name, tiny_encoder, execution="client")
    client_side.search(queries[0])
    assert set(client_side.last_timings) == {"encode", "coarse", "retrieve", "rescore", "payload"}
    filled.search(queries[0], two_stage=False)
    assert set(filled.last_timings) == {"encode", "query"}


# --- writes ---------------------------------------------------------------------------------


def test_readding_updates_instead_of_duplicating(tiny_encoder, corpus):
    ids, texts = corpus
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder)
    assert index.add_texts(texts[:50], ids=ids[:50]) == ids[:50]
    index.add_texts(texts[:50], ids=ids[:50])
    assert index.count() == 50
    index.add_texts(["差し替えた文書。"], ids=[ids[3]], payloads=[{"v": 2}])
    assert index.count() == 50
    record = index.client.retrieve("docs", [to_point_id(ids[3])])[0]
    assert record.payload == {"text": "差し替えた文書。", "doc_id": ids[3], "v": 2}
    assert hit_ids(index.search("差し替えた文書。", limit=1)) == [ids[3]]


def test_generated_ids_and_int_ids(tiny_encoder):
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder)
    generated = index.add_texts(["一つ目", "二つ目"])
    assert len(set(generated)) == 2 and all(uuid.UUID(g) for g in generated)
    index.add_texts(["三つ目"], ids=[12])
    assert index.client.retrieve("docs", [12])[0].payload["doc_id"] == 12
    assert index.count() == 3


def test_delete_by_document_id(tiny_encoder, corpus):
    ids, texts = corpus
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder)
    index.add_texts(texts[:20], ids=ids[:20])
    index.delete([ids[0], ids[5], "never-added"])
    assert index.count() == 18
    assert ids[0] not in hit_ids(index.search(texts[0], limit=20))
    index.delete([])
    assert index.count() == 18


def test_bad_input_is_rejected_before_anything_is_written(tiny_encoder):
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder)
    with pytest.raises(TypeError, match="bare string"):
        index.add_texts("猫")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        index.add_texts(["猫", 3])
    with pytest.raises(ValueError, match=r"ids\[2\] repeats ids\[0\]"):
        index.add_texts(["a", "b", "c"], ids=["x", "y", "x"])
    with pytest.raises(ValueError, match="2 texts but 1 ids"):
        index.add_texts(["a", "b"], ids=["x"])
    with pytest.raises(ValueError, match=r"payloads\[0\] sets 'text'"):
        index.add_texts(["a"], payloads=[{"text": "other"}])
    with pytest.raises(ValueError, match=r"ids\[0\].*>= 0"):
        index.add_texts(["a"], ids=[-3])
    with pytest.raises(TypeError, match="search"):
        index.search_batch("猫")
    assert not index.client.collection_exists("docs")
    with pytest.raises(ValueError, match="does not exist"):
        index.search("猫")


def test_mismatched_collection_is_an_error_and_untouched(tiny_encoder):
    client = QdrantClient(":memory:")
    client.create_collection(
        "docs",
        vectors_config={
            "coarse": models.VectorParams(size=32, distance=models.Distance.COSINE),
            "dense": models.VectorParams(size=512, distance=models.Distance.COSINE),
        },
    )
    index = MatryoshkaIndex(client, "docs", tiny_encoder)
    with pytest.raises(CollectionMismatchError) as caught:
        index.add_texts(["猫"], ids=["a"])
    message = str(caught.value)
    assert "vector 'full' is missing" in message
    assert "'dense' that this index does not use" in message
    assert "'coarse' has size 32, expected 64" in message
    assert client.count("docs").count == 0
    with pytest.raises(CollectionMismatchError):
        index.search("猫")

    client.create_collection("plain", vectors_config=models.VectorParams(size=512, distance=models.Distance.COSINE))
    with pytest.raises(CollectionMismatchError, match="unnamed default vector"):
        MatryoshkaIndex(client, "plain", tiny_encoder).add_texts(["猫"])


class FailingClient:
    """A real local client whose n-th upsert raises, as a dropped connection would."""

    def __init__(self, client: QdrantClient, fail_on: int) -> None:
        self._inner = client
        self._client = client._client
        self.fail_on = fail_on
        self.upserts = 0

    def upsert(self, **kwargs):
        self.upserts += 1
        if self.upserts == self.fail_on:
            raise ConnectionError("connection reset by peer")
        return self._inner.upsert(**kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_failed_batch_reports_what_was_written_and_resuming_completes(tiny_encoder, corpus, tmp_path):
    ids, texts = corpus
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    failing = FailingClient(client, fail_on=3)
    index = MatryoshkaIndex(failing, "docs", tiny_encoder, batch_size=50)
    with pytest.raises(IndexingError) as caught:
        index.add_texts(texts[:200], ids=ids[:200])
    error = caught.value
    assert error.written_ids == ids[:100] and error.failed_ids == ids[100:150]
    assert "documents 100..149" in str(error) and "ConnectionError" in str(error)
    assert isinstance(error.__cause__, ConnectionError)
    assert client.count("docs").count == 100
    # Run again from the start: deterministic ids overwrite, nothing is duplicated or lost.
    index.add_texts(texts[:200], ids=ids[:200])
    assert client.count("docs").count == 200
    stored = {r.payload["doc_id"] for r in client.scroll("docs", limit=1000)[0]}
    assert stored == set(ids[:200])


def failing_encodes(monkeypatch, encoder, bad_text: str) -> list[list[str]]:
    """Make ``encoder.encode`` raise on a batch holding ``bad_text``; returns the batches it was given."""
    original = encoder.encode
    seen: list[list[str]] = []

    def encode(texts, *args, **kwargs):
        seen.append(list(texts))
        if bad_text in texts:
            raise RuntimeError("encoder failed")
        return original(texts, *args, **kwargs)

    monkeypatch.setattr(encoder, "encode", encode)
    return seen


def test_a_batch_that_fails_to_encode_stops_the_batches_after_it(monkeypatch, tiny_encoder, corpus, tmp_path):
    ids, texts = corpus
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    index = MatryoshkaIndex(client, "docs", tiny_encoder, batch_size=20)
    seen = failing_encodes(monkeypatch, tiny_encoder, texts[45])
    with pytest.raises(IndexingError) as caught:
        index.add_texts(texts[:400], ids=ids[:400])
    error = caught.value
    assert error.written_ids == ids[:40] and error.failed_ids == ids[40:60]
    assert isinstance(error.__cause__, RuntimeError)
    assert client.count("docs").count == 40
    assert len(seen) == 3  # nothing after the failing batch was encoded


async def test_async_index_reports_a_batch_that_fails_to_encode(monkeypatch, tiny_encoder, corpus):
    ids, texts = corpus
    client = AsyncQdrantClient(":memory:")
    index = AsyncMatryoshkaIndex(client, "docs", tiny_encoder, batch_size=20)
    failing_encodes(monkeypatch, tiny_encoder, texts[45])
    with pytest.raises(IndexingError) as caught:
        await index.add_texts(texts[:200], ids=ids[:200])
    assert caught.value.written_ids == ids[:40] and caught.value.failed_ids == ids[40:60]
    assert await index.count() == 40
    await client.close()


def test_on_disk_storage_persists_and_reopens(tiny_encoder, corpus, queries, tmp_path):
    ids, texts = corpus
    path = str(tmp_path / "qdrant")
    client = QdrantClient(path=path)
    first = MatryoshkaIndex(client, "docs", tiny_encoder).add_texts(texts[:100], ids=ids[:100])
    before = hit_ids(MatryoshkaIndex(client, "docs", tiny_encoder).search(queries[0]))
    client.close()
    reopened = QdrantClient(path=path)
    index = MatryoshkaIndex(reopened, "docs", tiny_encoder)
    assert index.count() == len(first) == 100
    assert hit_ids(index.search(queries[0])) == before
    assert hit_ids(MatryoshkaIndex(reopened, "docs", tiny_encoder, execution="prefetch").search(queries[0])) == before
    reopened.close()


def test_collection_kwargs_pass_through_and_are_checked(tiny_encoder):
    client = QdrantClient(":memory:")
    seen = {}
    original = client.create_collection

    def spy(**kwargs):
        seen.update(kwargs)
        return original(**kwargs)

    client.create_collection = spy
    index = MatryoshkaIndex(
        client,
        "docs",
        tiny_encoder,
        quantization="binary",
        collection_kwargs={"shard_number": 2, "replication_factor": 2},
    )
    index.add_texts(["猫"], ids=["a"])
    assert seen["shard_number"] == 2 and seen["replication_factor"] == 2
    assert isinstance(seen["vectors_config"]["coarse"].quantization_config, models.BinaryQuantization)
    with pytest.raises(TypeError, match="shards"):
        MatryoshkaIndex(QdrantClient(":memory:"), "d", tiny_encoder, collection_kwargs={"shards": 2})
    with pytest.raises(ValueError, match="vectors_config"):
        MatryoshkaIndex(QdrantClient(":memory:"), "d", tiny_encoder, collection_kwargs={"vectors_config": {}})


def test_constructor_checks(tiny_encoder, tiny_model_path):
    with pytest.raises(TypeError, match="AsyncMatryoshkaIndex"):
        MatryoshkaIndex(AsyncQdrantClient(":memory:"), "docs", tiny_encoder)
    with pytest.raises(TypeError, match="use MatryoshkaIndex"):
        AsyncMatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder)
    with pytest.raises(ValueError, match="execution"):
        MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder, execution="fast")
    loaded = MatryoshkaIndex(QdrantClient(":memory:"), "docs", str(tiny_model_path))
    assert loaded.encoder.full_dim == 512 and loaded.full.dim == 512


# --- async ----------------------------------------------------------------------------------


async def test_async_index_matches_the_sync_one(tiny_encoder, corpus, queries, filled):
    ids, texts = corpus
    client = AsyncQdrantClient(":memory:")
    index = AsyncMatryoshkaIndex(client, "docs", tiny_encoder)
    payloads = [{"group": position % 3} for position in range(len(texts))]
    assert await index.add_texts(texts, ids=ids, payloads=payloads, batch_size=64) == ids
    assert await index.count() == len(texts)
    for query in queries[:3]:
        assert hit_ids(await index.search(query)) == hit_ids(filled.search(query))
    batch = await index.search_batch(queries[:3], limit=5)
    assert [hit_ids(h) for h in batch] == [hit_ids(h) for h in filled.search_batch(queries[:3], limit=5)]
    prefetch = AsyncMatryoshkaIndex(client, "docs", tiny_encoder, execution="prefetch")
    assert hit_ids(await prefetch.search(queries[0])) == hit_ids(filled.search(queries[0]))
    await index.delete(ids[:10])
    assert await index.count() == len(texts) - 10
    await client.close()
