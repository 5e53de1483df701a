"""Shared fixtures: tiny seeded SSE models in every on-disk layout and a dev-set corpus, built once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer

from tests.fixtures.build_fixture_models import FIXTURE_TEXTS, build_all
from tests.helpers import BACKENDS, SERVER_SKIP_REASON, Engine, distinct_corpus


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory) -> dict[str, dict]:
    return build_all(tmp_path_factory.mktemp("fixture_models"))


@pytest.fixture(scope="session")
def fixture_texts() -> list[str]:
    return list(FIXTURE_TEXTS)


@pytest.fixture(scope="session")
def tiny_model_path(fixture_models) -> Path:
    """The 4-bit fixture: the published layout of the flagship checkpoint."""
    return fixture_models["q4"]["path"]


@pytest.fixture(scope="session")
def tiny_encoder(tiny_model_path):
    from sse_integrations import SSEEncoder

    return SSEEncoder.from_pretrained(tiny_model_path)


@pytest.fixture(scope="session")
def dev_corpus(tiny_encoder) -> tuple[list[str], list[str]]:
    """400 dev-set documents with distinct fixture embeddings, as (ids, texts); modules take prefixes."""
    return distinct_corpus(tiny_encoder, 400)


def _engine(request, folder: Path):
    import os

    if request.param == "server" and not os.environ.get("QDRANT_URL"):
        pytest.skip(SERVER_SKIP_REASON)
    engine = Engine(request.param, folder)
    yield engine
    engine.remove_collections()


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    """Each backend in turn, for one test: local mode, the embedded engine, a Qdrant server (QDRANT_URL)."""
    yield from _engine(request, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def module_engine(request, tmp_path_factory):
    """:func:`engine` for module-scoped fixtures (a store filled once per backend)."""
    yield from _engine(request, tmp_path_factory.mktemp("engine"))


def reference_embeddings(fixture: dict, texts: list[str], dim: int | None = None, normalize: bool = True) -> np.ndarray:
    """Independent SSE computation, text by text in float64, from the fixture's own tensors."""
    path = Path(fixture["path"])
    tokenizer_file = next(path.rglob("tokenizer.json"))
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    embedding = fixture["embedding"].astype(np.float64)
    weights = fixture["weights"]
    width = embedding.shape[1]
    rows = []
    for text in texts:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        pooled = embedding[ids].mean(axis=0) if ids else np.zeros(width)
        if fixture["kind"] == "dyt":
            pooled = weights.beta.astype(np.float64) * np.tanh(weights.alpha.astype(np.float64) * pooled + weights.bias)
        prefix = pooled[: dim or width]
        norm = np.linalg.norm(prefix)
        rows.append(prefix / norm if normalize and norm > 0 else prefix)
    return np.array(rows)
