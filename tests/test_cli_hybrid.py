"""Hybrid search from the command line: `index --sparse`, `search --mode`, fusion options, `eval --mode`."""

from __future__ import annotations

import json

import pytest

from sse_integrations.qdrant import MatryoshkaIndex
from tests.helpers import HYBRID_CORPUS as CORPUS
from tests.helpers import HYBRID_IDS as IDS
from tests.helpers import HYBRID_QUERIES as QUERIES


def index_with_the_cli(tmp_path, model_path, capsys) -> tuple[str, list[str]]:
    """``index --sparse`` the test corpus into on-disk storage; returns it and the shared CLI options."""
    from sse_integrations.cli import main

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in zip(IDS, CORPUS)))
    storage = str(tmp_path / "qdrant")
    common = ["--collection", "docs", "--qdrant-path", storage, "--model", str(model_path)]
    assert main(["index", str(corpus), "--sparse", "--no-progress", *common]) == 0
    capsys.readouterr()
    return storage, common


def test_cli_index_sparse_then_search_each_mode(tmp_path, tiny_model_path, capsys):
    from sse_integrations.cli import main

    _, common = index_with_the_cli(tmp_path, tiny_model_path, capsys)
    for mode in ("dense", "sparse", "hybrid"):
        assert main(["search", "東京のホテル", "--mode", mode, "--json", "--limit", "3", *common]) == 0
        hits = json.loads(capsys.readouterr().out)["hits"]
        assert len(hits) == 3 and all(hit["id"] in IDS for hit in hits)


def test_cli_hybrid_on_a_dense_collection_is_refused(tmp_path, tiny_model_path, capsys):
    from sse_integrations.cli import main

    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n".join(CORPUS))
    common = ["--collection", "docs", "--qdrant-path", str(tmp_path / "q"), "--model", str(tiny_model_path)]
    assert main(["index", str(corpus), "--lines", "--no-progress", *common]) == 0
    assert main(["search", "東京", "--mode", "hybrid", *common]) == 2
    assert "indexed with --sparse" in capsys.readouterr().err


def test_eval_modes_report_dense_sparse_and_hybrid(tiny_model_path, capsys):
    from pathlib import Path

    from sse_integrations.cli import main

    data = Path(__file__).parent / "data" / "tatoeba_ja_dev"
    argv = ["eval", str(data), "--model", str(tiny_model_path), "--dims", "64", "--no-progress"]
    assert main([*argv, "--mode", "sparse", "--mode", "hybrid", "--two-stage"]) == 0
    out = capsys.readouterr().out
    for variant in ("two-stage 64->512", "sparse BM25 (Qdrant IDF)", "hybrid: two-stage 64->512 + BM25, RRF"):
        assert f"## {variant}" in out


def test_cli_fusion_options_reach_the_index(tmp_path, tiny_model_path, tiny_encoder, capsys):
    from sse_integrations.cli import main

    storage, common = index_with_the_cli(tmp_path, tiny_model_path, capsys)
    weighted = ["--mode", "hybrid", "--fusion-weights", "0.2,1", "--rrf-k", "10", "--json", "--limit", "5"]
    assert main(["search", QUERIES[0], *weighted, *common]) == 0
    cli_hits = json.loads(capsys.readouterr().out)["hits"]
    with MatryoshkaIndex(storage, "docs", tiny_encoder, sparse=True, fusion_weights=(0.2, 1.0), rrf_k=10) as index:
        expected = index.search(QUERIES[0], limit=5, mode="hybrid")
    assert [hit["id"] for hit in cli_hits] == [hit.payload["doc_id"] for hit in expected]
    assert [hit["score"] for hit in cli_hits] == pytest.approx(
        [hit.score for hit in expected], abs=1e-6
    )  # printed rounded

    with pytest.raises(SystemExit):
        main(["search", QUERIES[0], "--fusion-weights", "1", *common])
    assert "DENSE,SPARSE" in capsys.readouterr().err


def test_eval_labels_weighted_hybrid(tiny_model_path, capsys):
    from pathlib import Path

    from sse_integrations.cli import main

    data = Path(__file__).parent / "data" / "tatoeba_ja_dev"
    argv = ["eval", str(data), "--model", str(tiny_model_path), "--dims", "64", "--no-progress", "--mode", "hybrid"]
    assert main([*argv, "--fusion-weights", "1,0.3", "--rrf-k", "10"]) == 0
    assert "## hybrid: two-stage 64->512 + BM25, RRF weights 1/0.3 k=10" in capsys.readouterr().out
    assert main([*argv, "--fusion", "dbsf", "--fusion-weights", "1,0.3"]) == 2
    assert "rrf' only" in capsys.readouterr().err


def test_index_sparse_writes_as_it_goes(tmp_path, tiny_model_path, capsys, monkeypatch):
    """BM25 counts terms per chunk, not over the whole input first: Ctrl-C after the first chunk keeps it."""
    import sse_integrations.cli.qdrant as cli_qdrant
    from sse_integrations import SSEEncoder
    from sse_integrations.cli import main
    from sse_integrations.qdrant import MatryoshkaIndex

    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(f'{{"id": "d{i}", "text": "猫が寝ている {i}"}}\n' for i in range(7)), encoding="utf-8")
    monkeypatch.setattr(cli_qdrant, "SPARSE_CHUNK", 3)
    real_add = MatryoshkaIndex.add_texts
    calls = []

    def add_then_interrupt(self, texts, *args, **kwargs):
        calls.append(len(texts))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_add(self, texts, *args, **kwargs)

    monkeypatch.setattr(MatryoshkaIndex, "add_texts", add_then_interrupt)
    place = ["--collection", "c", "--qdrant-path", str(tmp_path / "q"), "--model", str(tiny_model_path)]
    assert main(["index", str(docs), *place, "--sparse", "--no-progress"]) == 2
    assert calls == [3, 3]
    capsys.readouterr()
    monkeypatch.setattr(MatryoshkaIndex, "add_texts", real_add)
    with MatryoshkaIndex(tmp_path / "q", "c", SSEEncoder.from_pretrained(tiny_model_path)) as index:
        assert index.count() == 3
    assert main(["index", str(docs), *place, "--sparse", "--no-progress"]) == 0  # the rerun completes it
    assert "the collection holds 7 points" in capsys.readouterr().out
