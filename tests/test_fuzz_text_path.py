"""Property-based fuzzing of the text path: encoder, sparse encoder, and an index on in-memory Qdrant.

Any str goes in: arbitrary Unicode, control and format characters, lone surrogates, huge texts.
The documented results: a text holding a lone surrogate is a ValueError naming its index
(``texts[i]``), as is an id (``ids[i]``) or a payload value (``payloads[i]['key']``); any other text gives a finite vector (unit length, or zero when the text has
no tokens and the model maps that to zero), sparse vectors with sorted unique indices and
finite positive weights (possibly empty), and an index that stores it and answers searches
with finite scores. Examples are derandomised and bounded so the suite stays fast and stable;
raise SSE_FUZZ_EXAMPLES to fuzz longer locally.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from qdrant_client import QdrantClient

from sse_integrations.qdrant import MatryoshkaIndex
from sse_integrations.sparse import SparseEncoder, ignored_token_ids

EXAMPLES = int(os.environ.get("SSE_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every code point, surrogates included, with the troublesome ranges drawn more often.
any_char = st.one_of(
    st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
    st.characters(min_codepoint=0, max_codepoint=0x9F),  # C0/C1 controls
    st.sampled_from(["\ud800", "\udfff", "\u200b", "\ufeff", "\u2028", "饂", "猫", "▁", " "]),
)
texts = st.text(any_char, max_size=40)
huge = st.tuples(texts, st.integers(1, 5_000)).map(lambda pair: pair[0] * pair[1])
text_lists = st.lists(st.one_of(texts, texts, texts, huge), min_size=1, max_size=6)


def first_surrogate(items: list[str]) -> int | None:
    for index, text in enumerate(items):
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            return index
    return None


@FUZZ
@given(items=text_lists)
def test_encoder(tiny_encoder, items):
    bad = first_surrogate(items)
    if bad is not None:
        with pytest.raises(ValueError, match=rf"texts\[{bad}\] holds a lone surrogate"):
            tiny_encoder.encode(items)
        return
    vectors = tiny_encoder.encode(items, truncate_dim=64)
    assert vectors.shape == (len(items), 64) and np.isfinite(vectors).all()
    norms = np.linalg.norm(vectors, axis=1)
    assert np.all((np.abs(norms - 1) < 1e-4) | (norms == 0))


@FUZZ
@given(items=text_lists)
def test_sparse_encoder(tiny_encoder, items):
    encoder = SparseEncoder(tiny_encoder.tokenizer, avg_doc_length=5.0)
    ignored = ignored_token_ids(tiny_encoder.tokenizer)
    bad = first_surrogate(items)
    if bad is not None:
        with pytest.raises(ValueError, match=rf"texts\[{bad}\] holds a lone surrogate"):
            encoder.encode_documents(items)
        return
    for vector in encoder.encode_documents(items) + encoder.encode_queries(items):
        assert vector.indices == sorted(set(vector.indices)) and len(vector.values) == len(vector.indices)
        assert not set(vector.indices) & ignored
        assert all(0 <= i < 2**31 for i in vector.indices)
        assert all(math.isfinite(v) and v > 0 for v in vector.values)


@pytest.fixture(scope="module")
def index(tiny_encoder) -> MatryoshkaIndex:
    index = MatryoshkaIndex(QdrantClient(":memory:"), "fuzz", tiny_encoder, sparse=True, show_progress=False)
    index.add_texts(["猫が寝ている", "犬が走る", "東京駅"], ids=["seed-0", "seed-1", "seed-2"])
    return index


@settings(FUZZ, max_examples=max(10, EXAMPLES // 2))
@given(items=st.lists(texts, min_size=1, max_size=4), query=texts)
def test_index_add_and_search(index, items, query):
    before = index.count()
    bad = first_surrogate(items)
    if bad is not None:
        with pytest.raises(ValueError, match=rf"texts\[{bad}\] holds a lone surrogate"):
            index.add_texts(items)
        assert index.count() == before  # nothing half-written
    else:
        index.add_texts(items)
        assert index.count() == before + len(items)
    if first_surrogate([query]) is not None:
        with pytest.raises(ValueError, match="lone surrogate"):
            index.search(query, limit=3)
        return
    for mode in ("dense", "sparse", "hybrid"):
        hits = index.search(query, limit=3, mode=mode)
        assert len(hits) <= 3 and all(math.isfinite(hit.score) for hit in hits), mode


@settings(FUZZ, max_examples=max(10, EXAMPLES // 2))
@given(ids=st.lists(texts, min_size=1, max_size=4, unique=True), values=st.lists(texts, min_size=4, max_size=4))
# Few random examples draw a surrogate into these short lists: both failures are always tried.
@example(ids=["猫", "x\ud800"], values=["a", "b", "c", "d"])
@example(ids=["猫"], values=["\udc00猫", "b", "c", "d"])
def test_index_ids_and_payload_values(index, ids, values):
    """Any str id and payload value: a lone surrogate is a ValueError naming ids[i] or the payload key."""
    items = [f"猫 {position}" for position in range(len(ids))]
    payloads = [{"title": value, "tags": [value]} for value in values[: len(ids)]]
    before = index.count()
    bad_id, bad_value = first_surrogate(ids), first_surrogate(values[: len(ids)])
    if bad_id is not None or bad_value is not None:
        where = rf"ids\[{bad_id}\]" if bad_id is not None else rf"payloads\[{bad_value}\]\['title'\]"
        with pytest.raises(ValueError, match=rf"{where} holds a lone surrogate"):
            index.add_texts(items, ids=ids, payloads=payloads)
        assert index.count() == before
        if bad_id is not None:
            with pytest.raises(ValueError, match=rf"ids\[{bad_id}\] holds a lone surrogate"):
                index.get(ids)
        return
    index.add_texts(items, ids=ids, payloads=payloads)
    stored = {record.payload["doc_id"]: record.payload for record in index.get(ids)}
    assert set(stored) == set(ids)
    assert all(stored[i]["title"] == p["title"] and stored[i]["tags"] == p["tags"] for i, p in zip(ids, payloads))
    index.delete(ids)
    assert index.count() == before - sum(i in ("seed-0", "seed-1", "seed-2") for i in ids)


def test_add_texts_none_is_a_clear_error(index):
    with pytest.raises(TypeError, match="texts must be a list of strings, got NoneType"):
        index.add_texts(None)  # type: ignore[arg-type]
