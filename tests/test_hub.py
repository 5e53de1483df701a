"""Hub ids resolve through huggingface_hub: patched downloads and a real on-disk cache, never the network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sse_integrations import SSEEncoder
from sse_integrations.hub import HUB_ALLOW_PATTERNS

REPO_ID = "RikkaBotan/quantized-stable-static-embedding-fast-retrieval-mrl-ja"
OLD_COMMIT = "a" * 40
NEW_COMMIT = "b" * 40


def test_download_is_patched_to_a_local_folder(monkeypatch, fixture_models, fixture_texts):
    calls = []

    def fake_snapshot_download(**kwargs):
        calls.append(kwargs)
        return str(fixture_models["st_q4"]["path"])

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot_download)
    encoder = SSEEncoder.from_pretrained(REPO_ID, revision="v1.0", cache_dir="/some/cache", local_files_only=True)
    assert calls == [
        {
            "repo_id": REPO_ID,
            "revision": "v1.0",
            "cache_dir": "/some/cache",
            "allow_patterns": HUB_ALLOW_PATTERNS,
            "local_files_only": True,
        }
    ]
    assert encoder.layout == "q4" and encoder.source == REPO_ID
    expected = SSEEncoder.from_pretrained(fixture_models["q4"]["path"]).encode(fixture_texts)
    np.testing.assert_array_equal(encoder.encode(fixture_texts), expected)


def test_local_files_only_none_is_left_to_huggingface_hub(monkeypatch, fixture_models):
    calls = []
    monkeypatch.setattr(
        "huggingface_hub.snapshot_download", lambda **kwargs: calls.append(kwargs) or str(fixture_models["q4"]["path"])
    )
    SSEEncoder.from_pretrained(REPO_ID)
    assert "local_files_only" not in calls[0]  # so HF_HUB_OFFLINE decides


def test_only_model_files_are_requested():
    for needed in (
        "tokenizer.json",
        "model.safetensors",
        "model_rest.safetensors",
        "embedding.q4_k_m.bin",
        "modules.json",
        "*/embedding.q4_k_m.bin",
    ):
        assert needed in HUB_ALLOW_PATTERNS
    assert not any(pattern.endswith((".bin", ".pt", ".py")) and "q4" not in pattern for pattern in HUB_ALLOW_PATTERNS)


def test_revision_on_a_local_folder_is_an_error(tiny_model_path):
    with pytest.raises(ValueError, match="revision"):
        SSEEncoder.from_pretrained(tiny_model_path, revision="main")


@pytest.fixture()
def hub_cache(tmp_path, fixture_models) -> Path:
    """A real huggingface_hub cache holding two commits of the repo; refs/main -> the newer one."""
    repo = tmp_path / "cache" / f"models--{REPO_ID.replace('/', '--')}"
    shutil.copytree(fixture_models["q4"]["path"], repo / "snapshots" / OLD_COMMIT)
    shutil.copytree(fixture_models["fp32"]["path"], repo / "snapshots" / NEW_COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(NEW_COMMIT)
    return tmp_path / "cache"


def test_real_cache_resolves_refs_and_pinned_commits(hub_cache):
    latest = SSEEncoder.from_pretrained(REPO_ID, cache_dir=hub_cache, local_files_only=True)
    pinned = SSEEncoder.from_pretrained(REPO_ID, revision=OLD_COMMIT, cache_dir=hub_cache, local_files_only=True)
    assert latest.layout == "fp32" and pinned.layout == "q4"
    assert pinned.weight_files[0].parent.name == OLD_COMMIT


def test_model_missing_from_cache_offline_is_a_clear_error(hub_cache):
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        SSEEncoder.from_pretrained("someone/absent-model", cache_dir=hub_cache, local_files_only=True)


def _load_in_subprocess(repo_id: str, cache: Path) -> subprocess.CompletedProcess:
    code = (
        "from sse_integrations import SSEEncoder; "
        f"e = SSEEncoder.from_pretrained({repo_id!r}, cache_dir={str(cache)!r}); print(e.layout)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_hf_hub_offline_env_is_honoured(hub_cache):
    found = _load_in_subprocess(REPO_ID, hub_cache)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "fp32"
    missing = _load_in_subprocess("someone/absent-model", hub_cache)
    assert missing.returncode != 0
    assert "not in the local Hugging Face cache" in missing.stderr
