"""The embedded engine (Qdrant Edge) behind MatryoshkaIndex: the same results as qdrant-client, on disk, safely shared."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

from sse_integrations.qdrant import AsyncMatryoshkaIndex, CollectionMismatchError, MatryoshkaIndex
from sse_integrations.qdrant.edge import EdgeClient, FolderInUseError
from tests.helpers import hit_ids, query_texts

OPTIONS = {"sparse": True, "fusion_factor": 3}


@pytest.fixture(scope="module")
def corpus(dev_corpus) -> tuple[list[str], list[str]]:
    ids, texts = dev_corpus
    return ids[:300], texts[:300]


@pytest.fixture(scope="module")
def payloads(corpus) -> list[dict]:
    return [{"group": position % 3} for position in range(len(corpus[0]))]


@pytest.fixture(scope="module")
def client_index(tiny_encoder, corpus, payloads) -> MatryoshkaIndex:
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder, **OPTIONS)
    index.add_texts(corpus[1], ids=corpus[0], payloads=payloads, batch_size=64)
    return index


@pytest.fixture(scope="module")
def edge_index(tiny_encoder, corpus, payloads, tmp_path_factory):
    index = MatryoshkaIndex(tmp_path_factory.mktemp("edge"), "docs", tiny_encoder, **OPTIONS)
    index.add_texts(corpus[1], ids=corpus[0], payloads=payloads, batch_size=64)
    yield index
    index.close()


@pytest.fixture(scope="module")
def queries() -> list[str]:
    return query_texts(8)


def untied_queries(index: MatryoshkaIndex, queries: list[str], depth: int, **search) -> list[str]:
    """The queries whose sparse list has no exact score ties in its first ``depth`` hits.

    BM25 gives equal scores to equally long documents with the same query-term counts, and an
    engine may return tied points in any order (the embedded engine's order varies from run to
    run); a tie inside a fusion's input list moves both documents' fused scores. Only where the
    input lists are free of ties is the fused ranking defined, so hybrid parity is checked there.
    """
    kept = []
    for query, hits in zip(queries, index.search_batch(queries, limit=depth + 1, mode="sparse", **search)):
        scores = [hit.score for hit in hits]
        if all(abs(first - second) > 1e-6 for first, second in zip(scores, scores[1:])):
            kept.append(query)
    return kept


GROUP_1 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
SEARCHES = {
    "two-stage": {},
    "two-stage, prefetch 40": {"prefetch_limit": 40},
    "single-stage": {"two_stage": False},
    "sparse": {"mode": "sparse"},
    "hybrid": {"mode": "hybrid"},
    "filtered two-stage": {"filter": GROUP_1},
    "filtered hybrid": {"mode": "hybrid", "filter": GROUP_1},
}


def ranked_groups(hits: list[models.ScoredPoint]) -> list[frozenset]:
    """Ids grouped by equal score, best first: engines may order exact ties (common under RRF) differently."""
    groups: list[tuple[float, set]] = []
    for hit in hits:
        if groups and abs(groups[-1][0] - hit.score) < 1e-6:
            groups[-1][1].add(hit.payload["doc_id"])
        else:
            groups.append((hit.score, {hit.payload["doc_id"]}))
    # The last group may be cut by the limit, where either engine may keep a different tied member.
    return [frozenset(ids) for _, ids in groups[:-1]] + [frozenset({len(groups[-1][1])})] if groups else []


@pytest.mark.parametrize("search", sorted(SEARCHES))
def test_edge_and_client_return_the_same_ids_in_the_same_order(client_index, edge_index, queries, search):
    keywords = SEARCHES[search]
    if keywords.get("mode") == "hybrid":
        depth = OPTIONS["fusion_factor"] * 10
        queries = untied_queries(client_index, query_texts(60), depth, filter=keywords.get("filter"))[:8]
        assert len(queries) >= 4, "too few queries without BM25 ties to compare fused rankings"
    expected = client_index.search_batch(queries, limit=10, **keywords)
    found = edge_index.search_batch(queries, limit=10, **keywords)
    # Same order wherever scores differ; exact ties (RRF, or BM25 over the fixture's small
    # vocabulary) may be broken differently by the two engines.
    assert [ranked_groups(hits) for hits in found] == [ranked_groups(hits) for hits in expected]
    for ours, theirs in zip(found, expected):
        assert [hit.score for hit in ours] == pytest.approx([hit.score for hit in theirs], abs=1e-4)
        assert all(isinstance(hit, models.ScoredPoint) for hit in ours)
    if "filter" in keywords:
        assert all(hit.payload["group"] == 1 for hits in found for hit in hits)


def test_add_texts_stores_the_same_points_on_both_engines(client_index, edge_index, corpus):
    # The embedded engine's add_texts builds Edge points straight from the arrays, the client
    # path PointStructs: both must store the same ids, payloads, dense and sparse vectors.
    some_ids = [corpus[0][0], corpus[0][37], corpus[0][-1]]
    expected = client_index.get(some_ids, with_vectors=True)
    found = edge_index.get(some_ids, with_vectors=True)
    assert [record.id for record in found] == [record.id for record in expected]
    for ours, theirs in zip(found, expected):
        assert ours.payload == theirs.payload
        for name in ("coarse", "full"):
            assert ours.vector[name] == pytest.approx(theirs.vector[name], abs=1e-6)
        assert ours.vector["sparse"].indices == theirs.vector["sparse"].indices
        assert ours.vector["sparse"].values == pytest.approx(theirs.vector["sparse"].values, rel=1e-6)


def test_edge_points_carry_the_encoders_float32_values_exactly(edge_index, tiny_encoder, corpus):
    # add_texts hands the engine array.array rows instead of float lists: the stored vectors
    # must be the encoder's float32 values bit for bit, not a rounding of them.
    positions = [0, 151, len(corpus[0]) - 1]
    stored = edge_index.get([corpus[0][p] for p in positions], with_vectors=True)
    texts = [corpus[1][p] for p in positions]
    for stage in edge_index.stages:
        encoded = tiny_encoder.encode(texts, truncate_dim=stage.dim)
        found = np.array([record.vector[stage.name] for record in stored], dtype=np.float32)
        assert found.tobytes() == encoded.tobytes(), stage.name


@pytest.mark.parametrize(
    "fusion", [{"fusion": "dbsf"}, {"fusion_weights": (1.0, 3.0), "rrf_k": 10}, {"fusion_weights": (2.0, 0.5)}]
)
def test_fusion_options_agree_with_the_client(tiny_encoder, corpus, tmp_path, queries, fusion):
    client = MatryoshkaIndex(QdrantClient(":memory:"), "f", tiny_encoder, **OPTIONS, **fusion)
    embedded = MatryoshkaIndex(tmp_path, "f", tiny_encoder, **OPTIONS, **fusion)
    for index in (client, embedded):
        index.add_texts(corpus[1][:120], ids=corpus[0][:120])
    expected = client.search_batch(queries, limit=8, mode="hybrid")
    found = embedded.search_batch(queries, limit=8, mode="hybrid")
    # The engines compute BM25 IDF and cosine in their own float order, so a near-tie inside one
    # input list can swap two neighbours of the fused list (seen once in a full-suite run, at
    # ranks 4-5 of 8 with weighted RRF): the best hit and the fused set must agree exactly.
    for edge_hits, client_hits in zip(found, expected):
        assert ranked_groups(edge_hits)[0] == ranked_groups(client_hits)[0]
        assert {h.payload["doc_id"] for h in edge_hits[:7]} <= {h.payload["doc_id"] for h in client_hits}
    embedded.close()


def test_plan_runs_on_the_engine_and_counts_deletes_and_updates(tiny_encoder, corpus, tmp_path):
    ids, texts = corpus
    index = MatryoshkaIndex(tmp_path, "docs", tiny_encoder)
    assert index.uses_prefetch() and index.embedded
    index.add_texts(texts[:50], ids=ids[:50])
    index.add_texts(texts[50:60], ids=ids[:10])  # re-adding an id replaces its point
    assert index.count() == 50
    assert index.search(texts[50], limit=1)[0].payload["doc_id"] == ids[0]
    index.delete(ids[:5] + ["never-added"])
    assert index.count() == 45
    assert set(index.last_timings) == {"encode", "query"}  # one engine query, no client-side rescoring
    index.close()


def test_reopen_after_close_and_after_optimize(tiny_encoder, corpus, tmp_path, queries):
    ids, texts = corpus
    with MatryoshkaIndex(tmp_path, "docs", tiny_encoder, sparse=True) as first:
        first.add_texts(texts[:200], ids=ids[:200])
        hybrid_queries = untied_queries(first, query_texts(60), 5 * 5)[:8]
        assert len(hybrid_queries) >= 4
        before = [ranked_groups(h) for h in first.search_batch(hybrid_queries, limit=5, mode="hybrid")]
        dense = [hit_ids(h) for h in first.search_batch(queries, limit=5)]
        assert first.optimize() in (True, False)
        assert [ranked_groups(h) for h in first.search_batch(hybrid_queries, limit=5, mode="hybrid")] == before
        assert [hit_ids(h) for h in first.search_batch(queries, limit=5)] == dense
    assert (tmp_path / "docs" / "sse_collection.json").is_file()
    # Reopened without repeating sparse=True: the layout is read from the collection.
    again = MatryoshkaIndex(tmp_path, "docs", tiny_encoder)
    assert again.count() == 200
    assert [ranked_groups(h) for h in again.search_batch(hybrid_queries, limit=5, mode="hybrid")] == before
    assert [hit_ids(h) for h in again.search_batch(queries, limit=5)] == dense
    again.close()


def test_a_qdrant_client_local_folder_is_refused_with_what_it_is(tiny_encoder, tmp_path):
    client = QdrantClient(path=str(tmp_path))
    MatryoshkaIndex(client, "docs", tiny_encoder).add_texts(["猫です。"], ids=["a"])
    client.close()
    with pytest.raises(ValueError, match="qdrant-client local-mode folder"):
        MatryoshkaIndex(tmp_path, "docs", tiny_encoder)


def test_a_folder_that_is_not_a_collection_is_refused(tiny_encoder, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ValueError, match="not a collection made by sse-integrations"):
        MatryoshkaIndex(tmp_path, "docs", tiny_encoder).add_texts(["猫です。"])
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["notes.txt"]


def test_another_layout_is_refused_before_any_write(tiny_encoder, corpus, tmp_path):
    ids, texts = corpus
    with MatryoshkaIndex(tmp_path, "docs", tiny_encoder) as index:
        index.add_texts(texts[:20], ids=ids[:20])
    other = MatryoshkaIndex(tmp_path, "docs", tiny_encoder, coarse_dim=32)
    with pytest.raises(CollectionMismatchError, match="vector 'coarse' has size 64, expected 32"):
        other.add_texts(texts[20:30], ids=ids[20:30])
    other.close()
    with MatryoshkaIndex(tmp_path, "docs", tiny_encoder) as index:
        assert index.count() == 20


def test_a_second_opener_gets_a_clear_error(tiny_encoder, corpus, tmp_path, tiny_model_path):
    ids, texts = corpus
    index = MatryoshkaIndex(tmp_path, "docs", tiny_encoder)
    index.add_texts(texts[:10], ids=ids[:10])
    with pytest.raises(FolderInUseError, match="open in another process"):
        MatryoshkaIndex(tmp_path, "docs", tiny_encoder).count()
    code = (
        "import sys\n"
        "from sse_integrations.qdrant import MatryoshkaIndex\n"
        "from sse_integrations.qdrant.edge import FolderInUseError\n"
        "try:\n"
        "    MatryoshkaIndex(sys.argv[1], 'docs', sys.argv[2]).count()\n"
        "except FolderInUseError as error:\n"
        "    print('refused:', error)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path), str(tiny_model_path)], capture_output=True, text=True, timeout=600
    )
    assert "refused:" in completed.stdout and "open in another process" in completed.stdout, completed.stderr
    index.close()
    # Released on close: the folder opens again, nothing lost.
    with MatryoshkaIndex(tmp_path, "docs", tiny_encoder) as again:
        assert again.count() == 10


def test_edge_client_scrolls_every_point(tiny_encoder, corpus, tmp_path):
    ids, texts = corpus
    with MatryoshkaIndex(tmp_path, "docs", tiny_encoder) as index:
        index.add_texts(texts[:25], ids=ids[:25])
    client = EdgeClient(tmp_path)
    seen, offset = [], None
    while True:
        records, offset = client.scroll("docs", limit=10, offset=offset)
        seen += [r.payload["doc_id"] for r in records]
        if offset is None:
            break
    client.close()
    assert sorted(seen) == sorted(ids[:25])


async def test_async_index_on_a_folder(tiny_encoder, corpus, edge_index, queries, tmp_path):
    ids, texts = corpus
    index = AsyncMatryoshkaIndex(tmp_path, "docs", tiny_encoder, **OPTIONS)
    await index.add_texts(texts, ids=ids, payloads=[{"group": p % 3} for p in range(len(ids))], batch_size=64)
    assert await index.count() == len(ids)
    for mode in ("dense", "sparse", "hybrid"):
        found = await index.search_batch(queries, limit=6, mode=mode)
        expected = edge_index.search_batch(queries, limit=6, mode=mode)
        assert [ranked_groups(h) for h in found] == [ranked_groups(h) for h in expected]
    await index.close()


@pytest.mark.parametrize("engine", ["edge", "client"])
def test_a_collection_made_with_another_coarse_width_opens_with_its_own(tiny_encoder, corpus, tmp_path, engine):
    # A 128-dim collection (the setting for large collections) opened without coarse_dim is read
    # and searched with its own 128-dim prefix; an explicit other width is still refused.
    ids, texts = corpus
    client: object = tmp_path if engine == "edge" else QdrantClient(":memory:")
    old = MatryoshkaIndex(client, "docs", tiny_encoder, coarse_dim=128)
    old.add_texts(texts[:100], ids=ids[:100])
    expected = old.search_batch(query_texts(4), limit=5)
    if engine == "edge":
        old.close()
    reopened = MatryoshkaIndex(client, "docs", tiny_encoder)
    assert reopened.coarse.dim == 64  # nothing read yet
    found = reopened.search_batch(query_texts(4), limit=5)
    assert reopened.coarse.dim == 128
    assert [hit_ids(hits) for hits in found] == [hit_ids(hits) for hits in expected]
    reopened.add_texts(texts[100:120], ids=ids[100:120])
    assert reopened.count() == 120
    stored = reopened.get([ids[110]], with_vectors=True)[0]
    assert len(stored.vector["coarse"]) == 128
    if engine == "edge":
        reopened.close()
    with pytest.raises(CollectionMismatchError, match="vector 'coarse' has size 128, expected 64"):
        MatryoshkaIndex(client, "docs", tiny_encoder, coarse_dim=64).search("猫")


def test_new_collections_get_the_default_layout(tiny_encoder, corpus, tmp_path):
    index = MatryoshkaIndex(tmp_path, "docs", tiny_encoder)
    index.add_texts(corpus[1][:20], ids=corpus[0][:20])
    config = index.vectors_config()
    assert config["coarse"].size == 64 and config["full"].size == 512
    # The coarse graph searches int8 copies; both vectors (and those copies) memory-mapped.
    assert isinstance(config["coarse"].quantization_config, models.ScalarQuantization)
    assert not config["coarse"].quantization_config.scalar.always_ram
    assert config["coarse"].on_disk is True and config["full"].on_disk is True
    assert config["full"].quantization_config is None
    index.close()
    # What the engine itself was told (its own record of the shard's configuration).
    stored = json.loads((tmp_path / "docs" / "edge_config.json").read_text())["vectors"]
    assert stored["coarse"]["on_disk"] is True and stored["full"]["on_disk"] is True
    assert not stored["coarse"]["quantization_config"]["scalar"].get("always_ram")


def test_a_stage_without_quantization_stays_in_ram_unless_last(tiny_encoder):
    index = MatryoshkaIndex(QdrantClient(":memory:"), "docs", tiny_encoder, quantization=None)
    config = index.vectors_config()
    assert config["coarse"].on_disk is False and config["full"].on_disk is True


def test_graph_and_optimizer_settings_reach_the_engine(tiny_encoder, corpus, tmp_path, queries):
    """``collection_kwargs`` hnsw_config / optimizers_config, as on a server, go into the shard's own config."""
    settings = {
        "hnsw_config": models.HnswConfigDiff(m=24, ef_construct=64),
        "optimizers_config": models.OptimizersConfigDiff(default_segment_number=1, deleted_threshold=0.3),
    }
    index = MatryoshkaIndex(tmp_path, "docs", tiny_encoder, collection_kwargs=settings)
    index.add_texts(corpus[1], ids=corpus[0])
    index.optimize()
    assert len(index.search(queries[0], limit=5)) == 5
    index.close()
    stored = json.loads((tmp_path / "docs" / "edge_config.json").read_text())
    assert (stored["hnsw_config"]["m"], stored["hnsw_config"]["ef_construct"]) == (24, 64)
    assert stored["optimizers"]["default_segment_number"] == 1
    assert stored["optimizers"]["deleted_threshold"] == 0.3
    assert len(list((tmp_path / "docs" / "segments").iterdir())) == 1


def test_optimizer_settings_the_engine_lacks_are_refused(tiny_encoder, tmp_path, corpus):
    settings = {"optimizers_config": models.OptimizersConfigDiff(flush_interval_sec=5)}
    index = MatryoshkaIndex(tmp_path, "docs", tiny_encoder, collection_kwargs=settings)
    with pytest.raises(ValueError, match="flush_interval_sec"):
        index.add_texts(corpus[1][:5], ids=corpus[0][:5])
    assert not (tmp_path / "docs").exists()
    index.close()


def test_a_corrupt_collection_is_a_documented_error(tmp_path, tiny_encoder):
    from sse_integrations.qdrant import CorruptCollectionError

    with MatryoshkaIndex(tmp_path, "c", tiny_encoder) as index:
        index.add_texts(["猫が寝ている"], ids=["a"])
    config = tmp_path / "c" / "edge_config.json"
    config.write_bytes(b"\x00garbage" + config.read_bytes()[8:])
    with pytest.raises(
        CorruptCollectionError, match=r"the collection at .*c is damaged .*the engine said: .*edge_config"
    ):
        MatryoshkaIndex(tmp_path, "c", tiny_encoder).count()
    (tmp_path / "c" / "sse_collection.json").write_text("[1", encoding="utf-8")
    with pytest.raises(CorruptCollectionError, match=r"sse_collection.json is damaged"):
        MatryoshkaIndex(tmp_path, "c", tiny_encoder).count()
    assert issubclass(CorruptCollectionError, ValueError)
