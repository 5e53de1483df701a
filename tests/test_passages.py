"""Passages: the cut over token ids, their vectors from one tokenisation, and the passage stage of an index on both engines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from qdrant_client import QdrantClient

from sse_integrations import SSEEncoder
from sse_integrations.encoder_process import EncoderProcess
from sse_integrations.passages import PassageCut
from sse_integrations.qdrant import CollectionMismatchError, MatryoshkaIndex, PassageStage, to_point_id
from tests.helpers import CORPUS_FILE, hit_ids, query_texts

BACKENDS = ["client", "edge"]


@pytest.fixture(scope="module")
def bundled() -> SSEEncoder:
    return SSEEncoder.from_pretrained()


@pytest.fixture(scope="module")
def long_documents() -> tuple[list[str], list[str]]:
    """120 documents of eight dev-set sentences each (about 100 tokens: a dozen passages), as (ids, texts)."""
    with open(CORPUS_FILE, encoding="utf-8") as handle:
        sentences = [json.loads(line)["text"] for line in handle][:960]
    texts = ["".join(sentences[start : start + 8]) for start in range(0, len(sentences), 8)]
    return [f"doc-{number}" for number in range(len(texts))], texts


def tied_groups(hits) -> list[set[str]]:
    """The hits' document ids grouped by equal score, best first (the last group may be cut by the limit)."""
    groups: dict[float, set[str]] = {}
    for hit in hits:
        groups.setdefault(round(hit.score, 5), set()).add(hit.payload["doc_id"])
    return list(groups.values())[:-1]


def make_client(backend: str, tmp_path):
    return QdrantClient(":memory:") if backend == "client" else tmp_path


def expected_windows(length: int, cut: PassageCut) -> list[tuple[int, int]]:
    """The documented rule, written as a plain loop: (start, stop) of each passage."""
    if length <= cut.tokens:
        return [(0, length)]
    starts = list(range(0, length - cut.tokens, cut.stride)) + [length - cut.tokens]
    starts = sorted(set(starts))
    if len(starts) > cut.max_passages:
        bounds = [int(np.floor(length * i / cut.max_passages + 0.5)) for i in range(cut.max_passages + 1)]
        return list(zip(bounds, bounds[1:]))
    return [(start, start + cut.tokens) for start in starts]


# --- the cut -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [PassageCut(), PassageCut(16, 16), PassageCut(5, 2, max_passages=4), PassageCut(7, 3)])
def test_the_cut_follows_the_documented_rule(cut):
    lengths = np.array([0, 1, cut.tokens - 1, cut.tokens, cut.tokens + 1, 37, 100, 1000], dtype=np.int64)
    spans = cut.spans(lengths)
    offset = 0
    for document, length in enumerate(lengths.tolist()):
        mine = spans.document == document
        got = [(start - offset, start - offset + size) for start, size in zip(spans.starts[mine], spans.lengths[mine])]
        assert got == expected_windows(length, cut), (document, length)
        covered = set().union(*(range(start, stop) for start, stop in got))
        assert covered == set(range(length))  # every id is in a passage
        offset += length
    assert spans.counts(len(lengths)).tolist() == [len(expected_windows(n, cut)) for n in lengths.tolist()]


def test_a_bad_cut_is_refused_with_its_reason():
    with pytest.raises(ValueError, match="stride .* must not exceed"):
        PassageCut(tokens=8, stride=9)
    with pytest.raises(ValueError, match="max_passages"):
        PassageCut(max_passages=0)
    with pytest.raises(ValueError, match="weight"):
        PassageStage(weight=1.5)
    with pytest.raises(ValueError, match="quantization"):
        PassageStage(quantization="int4")


# --- passage vectors ---------------------------------------------------------------------------


def reference_passages(encoder: SSEEncoder, text: str, cut: PassageCut, dim: int) -> np.ndarray:
    """Each passage as the mean of its rows in float64, DyT, prefix, L2 norm: computed text by text."""
    ids = encoder.tokenizer.encode(text, add_special_tokens=False).ids
    table = encoder.weights.embedding.astype(np.float64)
    alpha, beta, bias = (part.astype(np.float64) for part in encoder.weights.dyt)
    rows = []
    for start, stop in expected_windows(len(ids), cut):
        pooled = table[ids[start:stop]].mean(axis=0) if stop > start else np.zeros(table.shape[1])
        vector = (beta * np.tanh(alpha * pooled + bias))[:dim]
        rows.append(vector / np.linalg.norm(vector))
    return np.array(rows)


def test_documents_and_passages_come_from_one_tokenisation(bundled, long_documents):
    texts = [*long_documents[1][:20], "", "短い。", "長い文書。" * 2000]
    cut = PassageCut()
    calls = []
    original = bundled.tokenize

    def counting(batch):
        calls.append(len(batch))
        return original(batch)

    bundled.tokenize = counting
    try:
        documents, passages, counts = bundled.encode_with_passages(texts, cut, truncate_dim=512, passage_dim=256)
    finally:
        del bundled.tokenize
    assert calls == [len(texts)]  # each text tokenised once
    assert documents.tobytes() == bundled.encode(texts, normalize=False).tobytes()
    assert counts.sum() == len(passages) and counts[-1] == cut.max_passages and counts[-3:-1].tolist() == [1, 1]
    bounds = np.concatenate([[0], np.cumsum(counts)])
    for row, text in enumerate(texts):
        expected = reference_passages(bundled, text, cut, 256)
        np.testing.assert_allclose(passages[bounds[row] : bounds[row + 1]], expected, atol=2e-6)


def test_a_one_passage_document_is_its_whole_document_vector(bundled):
    texts = ["猫が窓のそばで眠っている。", "", "東京"]
    _, passages, counts = bundled.encode_with_passages(texts)
    assert counts.tolist() == [1, 1, 1]
    assert passages.tobytes() == bundled.encode(texts).tobytes()


def test_the_helper_process_cuts_passages_alike(bundled, long_documents):
    texts = long_documents[1][:10]
    cut = PassageCut(12, 6)
    with EncoderProcess(bundled) as process:
        dense, sparse, passages = process.encode_documents(texts, 512, (cut, 128))
    documents, vectors, counts = bundled.encode_with_passages(texts, cut, truncate_dim=512, passage_dim=128)
    assert sparse is None and dense.tobytes() == documents.tobytes()
    assert passages[0].tobytes() == vectors.tobytes() and passages[1].tolist() == counts.tolist()


# --- the index ---------------------------------------------------------------------------------


def mixed_scores(encoder: SSEEncoder, query: str, texts: list[str], stage: PassageStage) -> np.ndarray:
    """(1 - w) * whole-document cosine + w * best-passage cosine, in numpy."""
    documents, passages, counts = encoder.encode_with_passages(texts, stage.cut, passage_dim=stage.dim)
    documents /= np.linalg.norm(documents, axis=1, keepdims=True)
    full = encoder.encode([query])[0]
    passage_query = encoder.encode([query], truncate_dim=stage.dim or encoder.full_dim)[0]
    best = np.maximum.reduceat(passages @ passage_query, np.concatenate([[0], np.cumsum(counts)[:-1]]))
    return (1 - stage.weight) * (documents @ full) + stage.weight * best


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_scores_whole_and_best_passage_in_the_engine(backend, tmp_path, bundled, long_documents):
    ids, texts = long_documents
    stage = PassageStage(dim=256, weight=0.4)
    with MatryoshkaIndex(make_client(backend, tmp_path), "docs", bundled, passages=stage) as index:
        index.add_texts(texts, ids=ids, batch_size=50)
        assert set(index.client.get_collection("docs").config.params.vectors) == {"coarse", "full", "passages"}
        for query in query_texts(6):
            # Every document is a candidate (50 x 10 > 120), so the ranking must be the exact one.
            expected = mixed_scores(bundled, query, texts, stage)
            order = np.argsort(-expected, kind="stable")[:10]
            hits = index.search(query, limit=10)
            assert hit_ids(hits) == [ids[row] for row in order]
            np.testing.assert_allclose([hit.score for hit in hits], expected[order], atol=1e-5)


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_both_engines_return_the_same_ids_in_the_same_order(mode, tmp_path, bundled, long_documents):
    ids, texts = long_documents
    results = {}
    for backend in BACKENDS:
        with MatryoshkaIndex(make_client(backend, tmp_path), "docs", bundled, passages=True, sparse=True) as index:
            index.add_texts(texts, ids=ids)
            index.optimize()
            results[backend] = index.search_batch(query_texts(20), limit=10, mode=mode)
    for client_hits, edge_hits in zip(results["client"], results["edge"]):
        np.testing.assert_allclose([hit.score for hit in client_hits], [hit.score for hit in edge_hits], atol=1e-5)
        if mode == "dense":
            assert hit_ids(client_hits) == hit_ids(edge_hits)
        else:
            # RRF gives two documents the same score when their ranks mirror each other (1st and
            # 3rd against 3rd and 1st); engines order such ties differently, so compare per score.
            assert tied_groups(client_hits) == tied_groups(edge_hits)


@pytest.mark.parametrize("backend", BACKENDS)
def test_short_documents_score_as_without_passages(backend, tmp_path, bundled):
    with open(CORPUS_FILE, encoding="utf-8") as handle:
        sentences = [json.loads(line)["text"] for line in handle]
    # At most 16 tokens: one passage each with the default cut.
    texts = [text for text in sentences if len(bundled.tokenizer.encode(text, add_special_tokens=False).ids) <= 16][
        :200
    ]
    assert len(texts) == 200
    ids = [f"s{number}" for number in range(len(texts))]
    ranked = {}
    for passages in (False, True):
        client = make_client(backend, tmp_path / str(passages))
        with MatryoshkaIndex(client, "short", bundled, passages=passages) as index:
            index.add_texts(texts, ids=ids)
            ranked[passages] = [
                [(hit.payload["doc_id"], hit.score) for hit in hits] for hits in index.search_batch(query_texts(10))
            ]
    for without, with_passages in zip(ranked[False], ranked[True]):
        assert [doc for doc, _ in without] == [doc for doc, _ in with_passages]
        np.testing.assert_allclose([s for _, s in without], [s for _, s in with_passages], atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_opened_collection_follows_its_passage_stage(backend, tmp_path, bundled, long_documents):
    ids, texts = long_documents
    client = make_client(backend, tmp_path)
    made = MatryoshkaIndex(client, "docs", bundled, passages=PassageStage(tokens=12, stride=6, dim=128))
    made.add_texts(texts, ids=ids)
    expected = hit_ids(made.search("猫が好きです", limit=5))
    if backend == "edge":
        made.close()
    reopened = MatryoshkaIndex(client, "docs", bundled)
    assert hit_ids(reopened.search("猫が好きです", limit=5)) == expected
    assert reopened.passages == PassageStage(tokens=12, stride=6, dim=128)
    if backend == "edge":
        reopened.close()
    # Another weight is a search setting: allowed. Another cut would mix two kinds of passages.
    reweighted = MatryoshkaIndex(
        client, "docs", bundled, passages=PassageStage(tokens=12, stride=6, dim=128, weight=1.0)
    )
    best_only = reweighted.search("猫が好きです", limit=3)
    assert reweighted.passages is not None and reweighted.passages.weight == 1.0
    if backend == "edge":
        reweighted.close()
    with pytest.raises(CollectionMismatchError, match="stores passages as"):
        other = MatryoshkaIndex(client, "docs", bundled, passages=PassageStage(tokens=16, stride=8, dim=128))
        try:
            other.search("猫", limit=1)
        finally:
            other.close()
    scores = mixed_scores(bundled, "猫が好きです", texts, PassageStage(tokens=12, stride=6, dim=128, weight=1.0))
    np.testing.assert_allclose([hit.score for hit in best_only], np.sort(scores)[::-1][:3], atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_collection_without_passages_is_not_silently_extended(backend, tmp_path, bundled):
    client = make_client(backend, tmp_path)
    with MatryoshkaIndex(client, "plain", bundled) as index:
        index.add_texts(["猫が窓のそばで眠っている。"], ids=["a"])
    with pytest.raises(CollectionMismatchError, match="vector 'passages' is missing"):
        with MatryoshkaIndex(client, "plain", bundled, passages=True) as index:
            index.add_texts(["犬"], ids=["b"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_re_adding_or_deleting_a_document_replaces_its_passages(backend, tmp_path, bundled, long_documents):
    _, texts = long_documents
    with MatryoshkaIndex(make_client(backend, tmp_path), "docs", bundled, passages=True) as index:
        index.add_texts([texts[0]], ids=["a"])

        def count() -> int:
            stored = index.client.retrieve("docs", [to_point_id("a")], with_vectors=["passages"])
            return len(stored[0].vector["passages"])

        _, _, counts = bundled.encode_with_passages([texts[0]])
        assert count() == counts[0] > 1
        index.add_texts(["短い文書。"], ids=["a"])
        assert count() == 1
        assert hit_ids(index.search(texts[0][:20], limit=5)) == ["a"]
        index.delete(["a"])
        assert index.search(texts[0][:20], limit=5) == []


def test_a_one_megabyte_document_makes_a_point_of_max_passages(tmp_path, bundled):
    text = "データベースの設定を変更します。" * 65_000  # about 1 MB of UTF-8
    assert len(text.encode("utf-8")) > 1_000_000
    with MatryoshkaIndex(tmp_path, "big", bundled, passages=PassageStage(max_passages=32)) as index:
        index.add_texts([text, "猫が窓のそばで眠っている。"], ids=["big", "cat"])
        stored = index.client.retrieve("big", [to_point_id("big")], with_vectors=["passages"])[0]
        assert len(stored.vector["passages"]) == 32
        assert hit_ids(index.search("データベースの設定", limit=1)) == ["big"]


def test_passages_need_the_engine_to_run_the_search(bundled):
    with pytest.raises(ValueError, match="passages are scored by the engine"):
        MatryoshkaIndex(QdrantClient(":memory:"), "c", bundled, passages=True, execution="client")


# --- through the CLI and the framework stores -----------------------------------------------------


def test_cli_index_passages_then_search_follows_the_collection(tmp_path, bundled, long_documents, capsys):
    from sse_integrations.cli import main

    ids, texts = long_documents
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in zip(ids, texts)))
    common = ["--collection", "docs", "--qdrant-path", str(tmp_path / "qdrant")]
    assert main(["index", str(corpus), "--passages", "--sparse", "--no-progress", *common]) == 0
    assert "passages 512 (16-token passages every 8 tokens" in capsys.readouterr().out
    query = "猫が好きです"
    for mode in ("dense", "hybrid"):
        assert main(["search", query, "--mode", mode, "--json", "--limit", "5", *common]) == 0
        found = [hit["id"] for hit in json.loads(capsys.readouterr().out)["hits"]]
        with MatryoshkaIndex(tmp_path / "qdrant", "docs", bundled) as index:
            assert found == hit_ids(index.search(query, limit=5, mode=mode))
            assert index.passages == PassageStage(dim=512)  # read from the collection on its first use


def test_eval_passages_scores_each_mode_with_and_without(tmp_path, capsys):
    from sse_integrations.cli import main

    data = CORPUS_FILE.parent
    assert (
        main(["eval", str(data), "--dims", "512", "--mode", "dense", "--mode", "sparse", "--passages", "--no-progress"])
        == 0
    )
    out = capsys.readouterr().out
    assert "two-stage 64->512 (prefetch 500) + best 16-token passage at 512 (weight 0.5)" in out
    assert out.count("+ best 16-token passage") == 2  # its section and its summary column; sparse runs once
    assert "sparse BM25 (Qdrant IDF) + best" not in out


def test_langchain_store_and_retriever_pass_passages_through(tmp_path, bundled, long_documents):
    from sse_integrations.langchain import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore

    ids, texts = long_documents
    store = MatryoshkaQdrantVectorStore.from_texts(texts, ids=ids, path=tmp_path, encoder=bundled, passages=True)
    try:
        assert store.index.passages is not None
        query = query_texts(1)[0]
        expected = mixed_scores(bundled, query, texts, store.index.passages)
        order = [ids[row] for row in np.argsort(-expected, kind="stable")[:4]]
        assert [doc.id for doc in store.similarity_search(query, k=4)] == order
        assert [doc.id for doc in store.as_retriever(search_kwargs={"k": 4}).invoke(query)] == order
        assert [
            doc.metadata["doc_id"] for doc in MatryoshkaQdrantRetriever(index=store.index, k=4).invoke(query)
        ] == order
    finally:
        store.index.close()


def test_llama_index_store_and_retriever_pass_passages_through(tmp_path, bundled, long_documents):
    from llama_index.core.schema import TextNode
    from llama_index.core.vector_stores.types import VectorStoreQuery

    from sse_integrations.llama_index import MatryoshkaQdrantRetriever, MatryoshkaQdrantVectorStore

    ids, texts = long_documents
    store = MatryoshkaQdrantVectorStore(path=tmp_path, encoder=bundled, passages=PassageStage(dim=256))
    try:
        store.add([TextNode(id_=doc_id, text=text) for doc_id, text in zip(ids, texts)])
        query = query_texts(1)[0]
        expected = mixed_scores(bundled, query, texts, store.index.passages)
        order = [ids[row] for row in np.argsort(-expected, kind="stable")[:4]]
        result = store.query(VectorStoreQuery(query_str=query, similarity_top_k=4))
        assert result.ids == order
        assert [
            hit.node.node_id for hit in MatryoshkaQdrantRetriever(store.index, similarity_top_k=4).retrieve(query)
        ] == order
    finally:
        store.index.close()


async def test_the_async_index_runs_the_same_passage_plan(tmp_path, bundled, long_documents):
    from sse_integrations.qdrant import AsyncMatryoshkaIndex

    ids, texts = long_documents
    queries = query_texts(5)
    with MatryoshkaIndex(tmp_path / "sync", "docs", bundled, passages=True) as index:
        index.add_texts(texts, ids=ids)
        expected = [hit_ids(hits) for hits in index.search_batch(queries, limit=5)]
    index = AsyncMatryoshkaIndex(tmp_path / "async", "docs", bundled, passages=True)
    try:
        await index.add_texts(texts, ids=ids)
        assert [hit_ids(hits) for hits in await index.search_batch(queries, limit=5)] == expected
    finally:
        await index.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_filters_and_single_stage_searches_keep_the_passage_scores(backend, tmp_path, bundled, long_documents):
    from qdrant_client import models

    ids, texts = long_documents
    stage = PassageStage()
    payloads = [{"half": number % 2} for number in range(len(ids))]
    with MatryoshkaIndex(make_client(backend, tmp_path), "docs", bundled, passages=stage) as index:
        index.add_texts(texts, ids=ids, payloads=payloads)
        query = query_texts(1)[0]
        expected = mixed_scores(bundled, query, texts, index.passages)
        odd = models.Filter(must=[models.FieldCondition(key="half", match=models.MatchValue(value=1))])
        hits = index.search(query, limit=5, filter=odd)
        odd_rows = [row for row in np.argsort(-expected, kind="stable") if row % 2 == 1][:5]
        assert hit_ids(hits) == [ids[row] for row in odd_rows]
        # Without the coarse stage the candidates come from an exact search of the full vector.
        exact = index.search(query, limit=5, two_stage=False, search_params=models.SearchParams(exact=True))
        assert hit_ids(exact) == [ids[row] for row in np.argsort(-expected, kind="stable")[:5]]
        np.testing.assert_allclose([hit.score for hit in exact], np.sort(expected)[::-1][:5], atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_quantized_passages_are_stored_and_searched(backend, tmp_path, bundled, long_documents):
    ids, texts = long_documents
    stage = PassageStage(dim=256, quantization="scalar")
    with MatryoshkaIndex(make_client(backend, tmp_path), "docs", bundled, passages=stage) as index:
        index.add_texts(texts, ids=ids)
        index.optimize()
        params = index.client.get_collection("docs").config.params.vectors["passages"]
        assert params.multivector_config is not None and params.size == 256
        # int8 copies rank the candidates; the best document still comes first.
        for query in query_texts(3):
            expected = mixed_scores(bundled, query, texts, stage)
            assert hit_ids(index.search(query, limit=1)) == [ids[int(np.argmax(expected))]]
