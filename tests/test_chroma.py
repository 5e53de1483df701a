"""SSEEmbeddingFunction on real chromadb: embedded PersistentClient, a new process, a real server.

The fixture model has random weights, so these tests check exact behaviour: vectors equal
``SSEEncoder.encode``, query rankings equal a numpy brute force, configs round-trip.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.api.types import validate_embedding_function
from chromadb.config import Settings
from chromadb.utils.embedding_functions import known_embedding_functions

from sse_integrations import SSEEncoder
from sse_integrations.chroma import (
    CONFIG_KEYS,
    SSEEmbeddingFunction,
    get_or_create_collection,
    model_fingerprint,
    update_embedding_function,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SETTINGS = Settings(anonymized_telemetry=False)
DOCS = [
    "東京は日本の首都です。",
    "猫がソファの上で寝ている。",
    "明日は雨が降るでしょう。",
    "私は毎朝コーヒーを飲みます。",
    "この本はとても面白かった。",
    "駅までの道を教えてください。",
    "",
    "富士山は日本で一番高い山です。",
]
IDS = [f"doc-{i}" for i in range(len(DOCS))]
METADATAS = [{"topic": "place" if i % 2 == 0 else "life", "n": i} for i in range(len(DOCS))]
QUERY = "日本の山"


def _stack(embeddings) -> np.ndarray:
    return np.stack([np.asarray(vector) for vector in embeddings])


def _brute_force(encoder: SSEEncoder, dim: int, query: str, keep: list[int]) -> tuple[list[str], np.ndarray]:
    """Ids ranked by cosine distance over ``keep``, and those distances, computed with numpy."""
    docs = encoder.encode([DOCS[i] for i in keep], truncate_dim=dim)
    query_vector = encoder.encode([query], truncate_dim=dim)[0]
    distances = 1.0 - docs @ query_vector
    order = np.argsort(distances, kind="stable")
    return [IDS[keep[i]] for i in order], distances[order]


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ, ANONYMIZED_TELEMETRY="False", HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def function(tiny_model_path) -> SSEEmbeddingFunction:
    return SSEEmbeddingFunction(tiny_model_path, truncate_dim=64)


# --- the function on its own -------------------------------------------------------------


def test_registered_under_sse(function):
    assert SSEEmbeddingFunction.name() == "sse"
    assert known_embedding_functions["sse"] is SSEEmbeddingFunction
    validate_embedding_function(function)  # Chroma's own signature check
    assert not function.is_legacy()


def test_missing_chromadb_names_the_extra():
    code = (
        "import sys; sys.modules['chromadb'] = None\n"
        "import sse_integrations\n"
        "assert 'chromadb' not in [m.split('.')[0] for m in sys.modules if sys.modules[m] is not None]\n"
        "import sse_integrations.chroma"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=_subprocess_env()
    )
    assert completed.returncode != 0
    assert (
        'ImportError: sse_integrations.chroma needs chromadb: pip install "sse-integrations[chroma]"'
        in completed.stderr
    )


@pytest.mark.parametrize("dim", [32, 64, 128, 256, 512, None])
@pytest.mark.parametrize("normalize", [True, False])
def test_vectors_equal_encode(tiny_model_path, tiny_encoder, fixture_texts, dim, normalize):
    function = SSEEmbeddingFunction(tiny_model_path, truncate_dim=dim, normalize=normalize, batch_size=3)
    expected = tiny_encoder.encode(fixture_texts, truncate_dim=dim, normalize=normalize)
    embeddings = function(fixture_texts)
    assert isinstance(embeddings, list) and len(embeddings) == len(fixture_texts)
    assert all(vector.dtype == np.float32 and vector.shape == (dim or 512,) for vector in embeddings)
    np.testing.assert_allclose(_stack(embeddings), expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(_stack(function.embed_query(fixture_texts)), expected, atol=1e-6, rtol=0)


def test_loaded_encoder_is_shared_and_rebuildable(tiny_model_path, tiny_encoder, fixture_texts):
    by_position = SSEEmbeddingFunction(tiny_encoder, truncate_dim=128)
    by_keyword = SSEEmbeddingFunction(encoder=tiny_encoder, truncate_dim=128)
    assert by_position.encoder is tiny_encoder and by_keyword.encoder is tiny_encoder
    config = by_keyword.get_config()
    assert config["model_name_or_path"] == str(Path(tiny_model_path).resolve())
    rebuilt = SSEEmbeddingFunction.build_from_config(config)
    np.testing.assert_allclose(_stack(rebuilt(fixture_texts)), _stack(by_keyword(fixture_texts)), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="not both"):
        SSEEmbeddingFunction(tiny_model_path, encoder=tiny_encoder)


def test_truncate_dim_defaults_to_the_encoders(tiny_model_path):
    encoder = SSEEncoder.from_pretrained(tiny_model_path, truncate_dim=256)
    assert SSEEmbeddingFunction(encoder).truncate_dim == 256
    assert SSEEmbeddingFunction(tiny_model_path).truncate_dim == 512


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"truncate_dim": 32},
        {"truncate_dim": 256},
        {"normalize": False},
        {"batch_size": 7},
        {"truncate_dim": 128, "normalize": False, "batch_size": 1},
    ],
)
def test_config_round_trips_through_json(tiny_model_path, fixture_texts, options):
    function = SSEEmbeddingFunction(tiny_model_path, **options)
    config = function.get_config()
    assert tuple(sorted(config)) == tuple(sorted(CONFIG_KEYS))
    stored = json.loads(json.dumps(config))  # what Chroma persists
    rebuilt = SSEEmbeddingFunction.build_from_config(stored)
    assert rebuilt.get_config() == config
    for key, value in options.items():
        assert getattr(rebuilt, key) == value
    np.testing.assert_allclose(_stack(rebuilt(fixture_texts)), _stack(function(fixture_texts)), atol=1e-6, rtol=0)
    assert not function.is_legacy()


def test_hub_model_is_pinned_to_its_commit(fixture_models, fixture_texts, tmp_path):
    """A hub-loaded encoder records the commit it came from; a new process rebuilds exactly that one."""
    repo_id, old, new = "someone/sse-model", "a" * 40, "b" * 40
    repo = tmp_path / "hub" / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(fixture_models["q4"]["path"], repo / "snapshots" / old)
    shutil.copytree(fixture_models["fp32"]["path"], repo / "snapshots" / new)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(old)
    encoder = SSEEncoder.from_pretrained(repo_id, cache_dir=tmp_path / "hub", local_files_only=True)
    config = SSEEmbeddingFunction(encoder, truncate_dim=32).get_config()
    assert (config["model_name_or_path"], config["revision"]) == (repo_id, old)

    (repo / "refs" / "main").write_text(new)  # the branch moves on; the collection must not
    code = (
        "import json, sys; from sse_integrations.chroma import SSEEmbeddingFunction; "
        "f = SSEEmbeddingFunction.build_from_config(json.loads(sys.argv[1])); "
        "print(json.dumps([[float(x) for x in v] for v in f(json.loads(sys.argv[2]))]))"
    )
    env = dict(_subprocess_env(), HF_HUB_CACHE=str(tmp_path / "hub"))
    completed = subprocess.run(
        [sys.executable, "-c", code, json.dumps(config), json.dumps(fixture_texts[:3])],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr
    np.testing.assert_allclose(
        json.loads(completed.stdout), encoder.encode(fixture_texts[:3], truncate_dim=32), atol=1e-6, rtol=0
    )


def test_bundled_model_is_stored_as_null(tiny_model_path, fixture_texts, monkeypatch):
    """The bundled model lives inside site-packages; its config says null, not that path."""
    import sse_integrations.chroma as chroma_module
    import sse_integrations.encoder as encoder_module

    bundled = Path(tiny_model_path).resolve()
    monkeypatch.setattr(encoder_module, "DEFAULT_MODEL_DIR", bundled)
    monkeypatch.setattr(chroma_module, "_ENCODERS", {})
    by_default = SSEEmbeddingFunction(truncate_dim=64)
    from_encoder = SSEEmbeddingFunction(SSEEncoder.from_pretrained(), truncate_dim=64)
    assert by_default.get_config()["model_name_or_path"] is None
    assert from_encoder.get_config() == by_default.get_config()
    rebuilt = SSEEmbeddingFunction.build_from_config(json.loads(json.dumps(by_default.get_config())))
    np.testing.assert_allclose(_stack(rebuilt(fixture_texts)), _stack(by_default(fixture_texts)), atol=1e-6, rtol=0)


def test_relative_model_path_is_stored_absolute(tiny_model_path, monkeypatch):
    monkeypatch.chdir(Path(tiny_model_path).parent)
    function = SSEEmbeddingFunction(Path(tiny_model_path).name)
    assert function.get_config()["model_name_or_path"] == str(Path(tiny_model_path).resolve())


def test_in_memory_encoder_cannot_be_persisted(tiny_encoder):
    encoder = SSEEncoder(tiny_encoder.tokenizer, tiny_encoder.weights)
    function = SSEEmbeddingFunction(encoder)
    assert len(function(["猫"])) == 1  # usable directly
    with pytest.raises(ValueError, match="save_pretrained"):
        function.get_config()


def test_spaces(function, tiny_model_path):
    assert function.default_space() == "cosine"
    assert function.supported_spaces() == ["cosine", "ip", "l2"]
    assert "ip" not in SSEEmbeddingFunction(tiny_model_path, normalize=False).supported_spaces()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"truncate_dim": True}, "truncate_dim"),
        ({"truncate_dim": 0}, "truncate_dim"),
        ({"batch_size": 0}, "batch_size"),
        ({"normalize": "yes"}, "normalize"),
        ({"model_name_or_path": 3}, "model_name_or_path"),
        ({"typo_key": 1}, "unknown sse config keys"),
    ],
)
def test_validate_config_rejects_bad_values(function, change, message):
    config = {**function.get_config(), **change}
    with pytest.raises(ValueError, match=message):
        SSEEmbeddingFunction.validate_config(config)
    with pytest.raises(ValueError, match=message):
        SSEEmbeddingFunction.build_from_config(config)


def test_build_from_config_refuses_a_non_matryoshka_width(function):
    with pytest.raises(ValueError, match="not a Matryoshka prefix"):
        SSEEmbeddingFunction.build_from_config({**function.get_config(), "truncate_dim": 13})


def test_validate_config_update(function, fixture_models, tiny_model_path, tmp_path):
    old = function.get_config()
    function.validate_config_update(old, {**old, "batch_size": 8})  # allowed
    with pytest.raises(ValueError, match="truncate_dim of an existing collection from 64 to 128"):
        function.validate_config_update(old, SSEEmbeddingFunction(tiny_model_path, truncate_dim=128).get_config())
    with pytest.raises(ValueError, match="cannot change normalize"):
        function.validate_config_update(old, {**old, "normalize": False})
    other_model = SSEEmbeddingFunction(fixture_models["fp32"]["path"], truncate_dim=64).get_config()
    with pytest.raises(ValueError, match="cannot change the SSE model"):
        function.validate_config_update(old, other_model)
    # A moved folder holding the same model is the same model.
    moved = shutil.copytree(tiny_model_path, tmp_path / "moved")
    function.validate_config_update(old, SSEEmbeddingFunction(moved, truncate_dim=64).get_config())
    # Without fingerprints the reference decides.
    bare = {key: value for key, value in old.items() if key != "model_fingerprint"}
    with pytest.raises(ValueError, match="cannot change the SSE model"):
        function.validate_config_update(bare, {**bare, "model_name_or_path": str(moved)})


def test_build_from_config_refuses_a_replaced_model(function, fixture_models, tmp_path):
    folder = shutil.copytree(fixture_models["fp32"]["path"], tmp_path / "replaced")
    config = {**function.get_config(), "model_name_or_path": str(folder)}
    with pytest.raises(ValueError, match="not the model this collection was embedded with"):
        SSEEmbeddingFunction.build_from_config(config)


def test_fingerprint_tracks_weights(tiny_encoder, fixture_models):
    same = SSEEncoder.from_pretrained(fixture_models["q4"]["path"])
    other = SSEEncoder.from_pretrained(fixture_models["fp32"]["path"])
    assert model_fingerprint(same) == model_fingerprint(tiny_encoder) != model_fingerprint(other)


def test_bad_input(function):
    with pytest.raises(TypeError, match=r"texts\[1\] must be a str"):
        function(["猫", 3])
    with pytest.raises(TypeError, match=r"texts\[0\] must be a str"):
        function([None])
    with pytest.raises(TypeError, match="bare str"):
        function("猫")
    with pytest.raises(ValueError, match="empty batch"):
        function([])
    with pytest.raises(ValueError, match="empty batch"):
        function.embed_query([])


# --- embedded PersistentClient, and a new process ------------------------------------------


def test_persistent_collection(function, tiny_encoder, tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=SETTINGS)
    collection = client.create_collection("docs", embedding_function=function)
    collection.add(ids=IDS, documents=DOCS, metadatas=METADATAS)
    assert collection.configuration_json["hnsw"]["space"] == "cosine"
    assert collection.configuration_json["embedding_function"] == {
        "type": "known",
        "name": "sse",
        "config": function.get_config(),
    }

    stored = collection.get(ids=IDS, include=["embeddings"])
    assert stored["embeddings"].shape == (len(DOCS), 64)
    np.testing.assert_allclose(stored["embeddings"], tiny_encoder.encode(DOCS, truncate_dim=64), atol=1e-6, rtol=0)

    keep = [i for i, metadata in enumerate(METADATAS) if metadata["topic"] == "place"]
    expected_ids, expected_distances = _brute_force(tiny_encoder, 64, QUERY, keep)
    reopened = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=SETTINGS).get_collection("docs")
    result = reopened.query(query_texts=[QUERY], n_results=len(keep), where={"topic": "place"})
    assert result["ids"][0] == expected_ids
    np.testing.assert_allclose(result["distances"][0], expected_distances, atol=1e-5)

    # Bad input changes nothing.
    with pytest.raises(ValueError, match="Expected document to be a str"):
        collection.add(ids=["bad-0", "bad-1"], documents=["ok", 3])
    with pytest.raises(ValueError, match="Non-empty lists"):
        collection.add(ids=[], documents=[])
    with pytest.raises(ValueError, match="Non-empty lists"):
        collection.query(query_texts=[])
    assert collection.count() == len(DOCS)


REOPEN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import chromadb
    from chromadb.config import Settings
    {import_line}

    collection = chromadb.PersistentClient(sys.argv[1], settings=Settings(anonymized_telemetry=False)).get_collection("docs")
    result = collection.query(query_texts=[sys.argv[2]], n_results=3, where={{"topic": "place"}})
    collection.add(ids=["new"], documents=["新しい文書"], metadatas=[{{"topic": "new", "n": -1}}])
    added = collection.get(ids=["new"], include=["embeddings"])["embeddings"][0]
    print(json.dumps({{
        "ids": result["ids"][0], "distances": result["distances"][0], "added": [float(x) for x in added],
        "count": collection.count(), "torch": "torch" in sys.modules,
    }}))
    """
)


def _reopen_in_new_process(path: Path, import_line: str) -> subprocess.CompletedProcess:
    script = REOPEN_SCRIPT.format(import_line=import_line)
    return subprocess.run(
        [sys.executable, "-c", script, str(path), QUERY],
        capture_output=True,
        text=True,
        timeout=120,
        env=_subprocess_env(),
        cwd=path.parent,
    )


def test_reopens_in_a_new_process(function, tiny_encoder, tmp_path):
    path = tmp_path / "db"
    client = chromadb.PersistentClient(path=str(path), settings=SETTINGS)
    client.create_collection("docs", embedding_function=function).add(ids=IDS, documents=DOCS, metadatas=METADATAS)
    del client

    # Negative control: without the import Chroma does not know "sse" and cannot embed the query.
    unregistered = _reopen_in_new_process(path, "")
    assert unregistered.returncode != 0
    assert "sse" in unregistered.stderr and "not found" in unregistered.stderr

    completed = _reopen_in_new_process(path, "import sse_integrations.chroma")
    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout.strip().splitlines()[-1])
    keep = [i for i, metadata in enumerate(METADATAS) if metadata["topic"] == "place"]
    expected_ids, expected_distances = _brute_force(tiny_encoder, 64, QUERY, keep)
    assert output["ids"] == expected_ids[:3]
    np.testing.assert_allclose(output["distances"], expected_distances[:3], atol=1e-5)
    np.testing.assert_allclose(
        output["added"], tiny_encoder.encode(["新しい文書"], truncate_dim=64)[0], atol=1e-6, rtol=0
    )
    assert output["count"] == len(DOCS) + 1
    assert output["torch"] is False  # the numpy encode path; torch is not needed to serve a collection


def test_missing_model_folder_is_named_on_reopen(tiny_model_path, tmp_path):
    model = shutil.copytree(tiny_model_path, tmp_path / "model")
    client = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=SETTINGS)
    collection = client.create_collection("docs", embedding_function=SSEEmbeddingFunction(model, truncate_dim=64))
    collection.add(ids=IDS, documents=DOCS, metadatas=METADATAS)
    del client, collection
    shutil.rmtree(model)
    completed = _reopen_in_new_process(tmp_path / "db", "import sse_integrations.chroma")
    assert completed.returncode != 0
    assert "Could not build embedding function sse" in completed.stderr and str(model) in completed.stderr


def test_modify_refuses_a_width_change(function, tiny_model_path, tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=SETTINGS)
    collection = client.create_collection("docs", embedding_function=function)
    collection.add(ids=IDS[:2], documents=DOCS[:2])
    wider = SSEEmbeddingFunction(tiny_model_path, truncate_dim=128)

    with pytest.raises(ValueError, match="cannot change truncate_dim"):
        update_embedding_function(collection, wider)
    assert client.get_collection("docs").configuration_json["embedding_function"]["config"]["truncate_dim"] == 64

    update_embedding_function(collection, SSEEmbeddingFunction(tiny_model_path, truncate_dim=64, batch_size=5))
    assert client.get_collection("docs").configuration_json["embedding_function"]["config"]["batch_size"] == 5

    # Chroma's own modify() runs the same check (it raises, though it has already stored the change).
    with pytest.raises(ValueError, match="cannot change truncate_dim"):
        collection.modify(configuration={"embedding_function": wider})


def test_get_or_create_collection_checks_the_stored_model(function, fixture_models, tiny_model_path, tmp_path):
    client = chromadb.PersistentClient(path=str(tmp_path / "db"), settings=SETTINGS)
    created = get_or_create_collection(client, "docs", function)
    created.add(ids=IDS[:2], documents=DOCS[:2])
    # Same settings (another batch size is fine): the existing collection comes back.
    again = get_or_create_collection(
        client, "docs", SSEEmbeddingFunction(tiny_model_path, truncate_dim=64, batch_size=2)
    )
    assert again.id == created.id and again.count() == 2
    # Another model of the same width would mix vectors silently in plain Chroma; here it is refused.
    other = SSEEmbeddingFunction(fixture_models["fp32"]["path"], truncate_dim=64)
    with pytest.raises(ValueError, match="cannot change the SSE model"):
        get_or_create_collection(client, "docs", other)
    with pytest.raises(ValueError, match="truncate_dim of an existing collection from 64 to 32"):
        get_or_create_collection(client, "docs", SSEEmbeddingFunction(tiny_model_path, truncate_dim=32))
    assert client.get_collection("docs").count() == 2


# --- a real Chroma server --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """``chroma run`` on a free loopback port; yields (host, port); stopped afterwards."""
    chroma = Path(sys.executable).with_name("chroma")
    if not chroma.exists():
        pytest.fail(f"the chroma console script is missing next to {sys.executable}")
    root = tmp_path_factory.mktemp("chroma_server")
    port = _free_port()
    log = open(root / "server.log", "wb")
    process = subprocess.Popen(
        [str(chroma), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(root / "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_subprocess_env(),
        cwd=root,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"chroma run exited with {process.returncode}:\n{(root / 'server.log').read_text()[-2000:]}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"chroma run did not answer its heartbeat:\n{(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.mark.integration
def test_http_server_round_trip(chroma_server, tiny_model_path, tiny_encoder):
    host, port = chroma_server
    function = SSEEmbeddingFunction(tiny_model_path, truncate_dim=128)
    client = chromadb.HttpClient(host=host, port=port, settings=SETTINGS)
    collection = client.create_collection("server_docs", embedding_function=function)
    collection.add(ids=IDS, documents=DOCS, metadatas=METADATAS)

    # A fresh client that passes no embedding function gets "sse" back from the server's config.
    reopened = chromadb.HttpClient(host=host, port=port, settings=SETTINGS).get_collection("server_docs")
    assert reopened.configuration_json["embedding_function"]["name"] == "sse"
    assert reopened.configuration_json["embedding_function"]["config"] == function.get_config()
    stored = reopened.get(ids=IDS, include=["embeddings"])["embeddings"]
    assert stored.shape == (len(DOCS), 128)
    np.testing.assert_allclose(stored, tiny_encoder.encode(DOCS, truncate_dim=128), atol=1e-6, rtol=0)

    keep = [i for i, metadata in enumerate(METADATAS) if metadata["topic"] == "life"]
    expected_ids, expected_distances = _brute_force(tiny_encoder, 128, QUERY, keep)
    result = reopened.query(query_texts=[QUERY], n_results=len(keep), where={"topic": "life"})
    assert result["ids"][0] == expected_ids
    np.testing.assert_allclose(result["distances"][0], expected_distances, atol=1e-5)

    with pytest.raises(ValueError, match="cannot change truncate_dim"):
        update_embedding_function(reopened, SSEEmbeddingFunction(tiny_model_path, truncate_dim=64))
    assert (
        client.get_collection("server_docs").configuration_json["embedding_function"]["config"]["truncate_dim"] == 128
    )
    with pytest.raises(ValueError, match="Expected document to be a str"):
        reopened.add(ids=["bad"], documents=[3])
    assert reopened.count() == len(DOCS)


@pytest.mark.integration
async def test_async_http_client(chroma_server, tiny_model_path, tiny_encoder):
    host, port = chroma_server
    client = await chromadb.AsyncHttpClient(host=host, port=port, settings=SETTINGS)
    function = SSEEmbeddingFunction(tiny_model_path, truncate_dim=32)
    collection = await client.create_collection("async_docs", embedding_function=function)
    await collection.add(ids=IDS, documents=DOCS, metadatas=METADATAS)
    reopened = await client.get_collection("async_docs")
    expected_ids, expected_distances = _brute_force(tiny_encoder, 32, QUERY, list(range(len(DOCS))))
    result = await reopened.query(query_texts=[QUERY], n_results=len(DOCS))
    assert result["ids"][0] == expected_ids
    np.testing.assert_allclose(result["distances"][0], expected_distances, atol=1e-5)
