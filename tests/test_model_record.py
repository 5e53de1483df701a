"""A collection records the model that wrote it: another model is refused (index, stores, CLI) unless told to migrate."""

from __future__ import annotations

import contextlib
import json
import shutil

import pytest
from qdrant_client import QdrantClient

from sse_integrations import SSEEncoder
from sse_integrations.cli import main
from sse_integrations.qdrant import MODEL_METADATA_KEY, MatryoshkaIndex, ModelMismatchError
from tests.helpers import HYBRID_CORPUS, HYBRID_IDS


@pytest.fixture(scope="module")
def other_encoder(fixture_models):
    """Same tokenizer and 512 dims as the 4-bit fixture, other weights (its full-precision original)."""
    return SSEEncoder.from_pretrained(fixture_models["fp32"]["path"])


@pytest.fixture(params=["client", "edge"])
def where(request, tmp_path):
    return QdrantClient(":memory:") if request.param == "client" else tmp_path / "qdrant"


@contextlib.contextmanager
def opened(where, encoder, **settings):
    """An index on ``where``; a folder's is closed after use (one open index per folder)."""
    index = MatryoshkaIndex(where, "c", encoder, **settings)
    try:
        yield index
    finally:
        if index.owns_client:
            index.close()


def test_another_model_is_refused_and_a_deliberate_change_is_recorded(where, tiny_encoder, other_encoder):
    assert other_encoder.full_dim == tiny_encoder.full_dim
    with opened(where, tiny_encoder) as index:
        index.add_texts(HYBRID_CORPUS, ids=HYBRID_IDS)
    with opened(where, other_encoder) as other:
        with pytest.raises(
            ModelMismatchError, match="was written by the model .*q4.*not by .*fp32.*allow_model_change"
        ):
            other.search(HYBRID_CORPUS[0], limit=1)
        with pytest.raises(ModelMismatchError):
            other.add_texts(["x"], ids=["x"])
    with opened(where, tiny_encoder) as index:
        assert index.count() == len(HYBRID_IDS)  # nothing was written
    # A deliberate migration: accepted, and its first write records the new model.
    with opened(where, other_encoder, allow_model_change=True) as migrating:
        assert migrating.search(HYBRID_CORPUS[0], limit=1)
        migrating.add_texts(HYBRID_CORPUS, ids=HYBRID_IDS)
    with opened(where, other_encoder) as index:
        assert index.search(HYBRID_CORPUS[1], limit=1)
    with opened(where, tiny_encoder) as index, pytest.raises(ModelMismatchError):
        index.search(HYBRID_CORPUS[0], limit=1)


def test_a_moved_model_and_an_old_collection_open_as_before(tmp_path, tiny_model_path, tiny_encoder, other_encoder):
    with MatryoshkaIndex(tmp_path / "qdrant", "c", tiny_encoder) as index:
        index.add_texts(HYBRID_CORPUS, ids=HYBRID_IDS)
    moved = shutil.copytree(tiny_model_path, tmp_path / "moved_model")
    with MatryoshkaIndex(tmp_path / "qdrant", "c", SSEEncoder.from_pretrained(moved)) as index:
        assert index.search(HYBRID_CORPUS[0], limit=1)[0].payload["doc_id"] == HYBRID_IDS[0]
    # A collection made before the record existed: no record, any model opens it.
    manifest = tmp_path / "qdrant" / "c" / "sse_collection.json"
    content = json.loads(manifest.read_text(encoding="utf-8"))
    assert MODEL_METADATA_KEY in content["metadata"]
    del content["metadata"][MODEL_METADATA_KEY]
    manifest.write_text(json.dumps(content), encoding="utf-8")
    with MatryoshkaIndex(tmp_path / "qdrant", "c", other_encoder) as index:
        assert index.count() == len(HYBRID_IDS)


def test_the_stores_refuse_another_model(tmp_path, tiny_encoder, other_encoder):
    from sse_integrations.langchain import MatryoshkaQdrantVectorStore as LangChainStore
    from sse_integrations.llama_index import MatryoshkaQdrantVectorStore as LlamaIndexStore

    client = QdrantClient(":memory:")
    LangChainStore.from_texts(HYBRID_CORPUS, ids=HYBRID_IDS, client=client, collection_name="c", encoder=tiny_encoder)
    store = LangChainStore.from_existing_collection("c", client=client, encoder=other_encoder)
    with pytest.raises(ModelMismatchError, match="allow_model_change"):
        store.similarity_search(HYBRID_CORPUS[0], k=1)
    allowed = LangChainStore.from_existing_collection(
        "c", client=client, encoder=other_encoder, allow_model_change=True
    )
    assert allowed.similarity_search(HYBRID_CORPUS[0], k=1)
    llama = LlamaIndexStore(collection_name="c", client=client, encoder=other_encoder)
    with pytest.raises(ModelMismatchError):
        llama.index.search(HYBRID_CORPUS[0], limit=1)


def test_the_cli_refuses_another_model_in_one_line(tmp_path, fixture_models, capsys):
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(HYBRID_IDS, HYBRID_CORPUS)))
    place = ["--collection", "c", "--qdrant-path", str(tmp_path / "qdrant")]
    q4, fp32 = str(fixture_models["q4"]["path"]), str(fixture_models["fp32"]["path"])
    assert main(["index", str(docs), *place, "--model", q4, "--no-progress"]) == 0
    capsys.readouterr()
    for command in (["search", "猫"], ["index", str(docs), "--no-progress"]):
        assert main([*command, *place, "--model", fp32]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "was written by the model" in err[0] and "--allow-model-change" in err[0], err
    assert main(["search", "猫", *place, "--model", fp32, "--allow-model-change"]) == 0
    assert main(["index", str(docs), *place, "--model", fp32, "--allow-model-change", "--no-progress"]) == 0
    assert main(["search", "猫", *place, "--model", fp32]) == 0
