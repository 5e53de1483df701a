"""The vectorised, pipelined encode path gives what the per-text loop it replaced gave.

``loop_reference`` is that loop, frozen here: one gather + float32 sum per text (float64 past
512 ids), mean, DyT, truncate, normalise. Every fast-path branch (empty bags, one-id bags,
equal-length groups split over several gathers, float64 long bags, several pipelined batches)
is compared with it on every Matryoshka dim.
"""

from __future__ import annotations

import os
import random
import threading

import numpy as np
import pytest

from sse_integrations import SSEEncoder, pooling
from sse_integrations.matryoshka import truncate_and_normalize
from tests.helpers import run_in_threads


def loop_reference(encoder: SSEEncoder, texts: list[str], dim: int, normalize: bool = True) -> np.ndarray:
    weights = encoder.weights
    encodings = encoder.tokenizer.encode_batch(texts, add_special_tokens=False)
    pooled = np.zeros((len(texts), weights.dim), dtype=np.float32)
    for row, encoding in enumerate(encodings):
        ids = np.asarray(encoding.ids, dtype=np.int64)
        rows = weights.embedding.take(ids, axis=0)
        if len(ids) > 512:
            pooled[row] = rows.sum(axis=0, dtype=np.float64)
        elif len(ids):
            np.add.reduce(rows, axis=0, out=pooled[row])
        pooled[row] /= np.float32(max(len(ids), 1))
    if weights.has_dyt:
        pooled = weights.beta * np.tanh(weights.alpha * pooled + weights.bias)
    return truncate_and_normalize(pooled, dim, normalize)


def single_token_texts(encoder: SSEEncoder, count: int) -> list[str]:
    found = []
    for token_id in range(encoder.vocab_size):
        # Metaspace prepends "▁" itself, so a "▁word" piece comes back from "word".
        text = encoder.tokenizer.id_to_token(token_id).lstrip("▁")
        if text and len(encoder.tokenizer.encode(text, add_special_tokens=False).ids) == 1:
            found.append(text)
            if len(found) == count:
                break
    return found


@pytest.fixture(params=["false", "true"], ids=["tokenizer threads off", "tokenizer threads on"])
def tokenizer_threads(request, monkeypatch):
    """Both bulk paths: threads that tokenise and pool (off), the tokenise-ahead pipeline (on)."""
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", request.param)
    return request.param


@pytest.fixture(scope="module")
def mixed_texts(fixture_texts, tiny_encoder) -> list[str]:
    """Texts of many lengths, repeated lengths, empties, one-id texts and texts far past 512 ids."""
    rng = random.Random(15)
    words = [text for text in fixture_texts if text.strip() and len(text) < 100]
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(700)]
    # The fixture tokenizer starts nearly every text with a lone "▁" piece: few texts are one id.
    singles = single_token_texts(tiny_encoder, 40) * 10
    assert len(singles) >= 20
    long_texts = [" ".join(rng.choice(words) for _ in range(count)) for count in (60, 61, 200, 200, 900)]
    texts = sentences + singles + long_texts + fixture_texts + ["", "", " "] + sentences[:50]
    rng.shuffle(texts)
    return texts


@pytest.mark.parametrize("layout", ["q4", "fp32", "static_st6"])
@pytest.mark.parametrize("dim", [32, 64, 128, 256, 512])
def test_matches_the_per_text_loop(fixture_models, mixed_texts, layout, dim, tokenizer_threads):
    encoder = SSEEncoder.from_pretrained(fixture_models[layout]["path"])
    got = encoder.encode(mixed_texts, truncate_dim=dim, batch_size=256)
    np.testing.assert_allclose(got, loop_reference(encoder, mixed_texts, dim), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dim", [64, 512])
def test_matches_the_per_text_loop_without_normalisation(tiny_encoder, mixed_texts, dim):
    got = tiny_encoder.encode(mixed_texts, truncate_dim=dim, normalize=False)
    np.testing.assert_allclose(got, loop_reference(tiny_encoder, mixed_texts, dim, normalize=False), atol=1e-6, rtol=0)


def test_bundled_model_matches_the_per_text_loop(fixture_texts):
    encoder = SSEEncoder.from_pretrained(None)
    rng = random.Random(150)
    pieces = [encoder.tokenizer.id_to_token(rng.randrange(encoder.vocab_size)).lstrip("▁") for _ in range(5000)]
    texts = ["".join(pieces[start : start + rng.randint(0, 40)]) for start in range(0, 4000, 4)]
    texts += single_token_texts(encoder, 50) + fixture_texts
    assert (encoder.tokenize(texts)[1] == 1).sum() >= 50
    for dim in encoder.matryoshka_dims:
        np.testing.assert_allclose(
            encoder.encode(texts, truncate_dim=dim), loop_reference(encoder, texts, dim), atol=1e-6, rtol=0
        )


@pytest.mark.parametrize("gather_rows", [1, 7, 512])
def test_gather_size_does_not_change_sums(tiny_encoder, mixed_texts, monkeypatch, gather_rows):
    flat, lengths = tiny_encoder.tokenize(mixed_texts)
    expected = pooling.mean_pool(tiny_encoder.weights.embedding, flat, lengths)
    monkeypatch.setattr(pooling, "_GATHER_ROWS", gather_rows)
    np.testing.assert_array_equal(pooling.mean_pool(tiny_encoder.weights.embedding, flat, lengths), expected)


def test_empty_bags_pool_to_zeros_and_blocks_cover_every_bag(tiny_encoder):
    embedding = tiny_encoder.weights.embedding
    lengths = np.array([0, 3, 0, 1, 3], dtype=np.int64)
    flat = np.array([5, 6, 7, 9, 1, 2, 3], dtype=np.int64)
    seen = []
    for indices, means in pooling.mean_blocks(embedding, flat, lengths, block_rows=2):
        assert len(indices) == len(means) <= 2
        seen.extend(indices.tolist())
    assert sorted(seen) == [0, 1, 2, 3, 4]
    pooled = pooling.mean_pool(embedding, flat, lengths)
    assert not pooled[[0, 2]].any()
    np.testing.assert_allclose(pooled[3], embedding[9], rtol=0, atol=0)
    np.testing.assert_allclose(pooled[4], embedding[[1, 2, 3]].mean(axis=0), atol=1e-7)


def test_no_text_at_all(tiny_encoder):
    flat, lengths = tiny_encoder.tokenize([])
    assert flat.shape == lengths.shape == (0,)
    assert pooling.mean_pool(tiny_encoder.weights.embedding, flat, lengths).shape == (0, 512)


def test_embed_ids_matches_encode(tiny_encoder, mixed_texts):
    flat, lengths = tiny_encoder.tokenize(mixed_texts)
    full = tiny_encoder.embed_ids(flat, lengths)
    np.testing.assert_allclose(full, loop_reference(tiny_encoder, mixed_texts, 512, normalize=False), atol=1e-6, rtol=0)


def test_pipelined_batches_keep_input_order(tiny_encoder, mixed_texts, tokenizer_threads):
    whole = tiny_encoder.encode(mixed_texts, batch_size=len(mixed_texts))
    for batch_size in (1, 3, 97):
        np.testing.assert_array_equal(tiny_encoder.encode(mixed_texts, batch_size=batch_size), whole)


def test_a_failing_batch_raises_and_leaves_no_thread_behind(tiny_encoder, monkeypatch, tokenizer_threads):
    before = threading.active_count()
    calls = []

    def tokenize(texts):
        calls.append(texts)
        if texts[0] == "batch 2":
            raise RuntimeError("tokenizer failed on batch 2")
        return SSEEncoder.tokenize(tiny_encoder, texts)

    monkeypatch.setattr(tiny_encoder, "tokenize", tokenize)
    texts = [f"batch {number}" for number in range(200) for _ in range(3)]
    with pytest.raises(RuntimeError, match="batch 2"):
        tiny_encoder.encode(texts, batch_size=3)
    assert threading.active_count() == before
    # Batches after the failure are not tokenised: at most those in flight when it happened run.
    from sse_integrations.encoder import _usable_cores

    assert len(calls) <= 3 + 2 * _usable_cores()


def test_eight_threads_on_many_batches_match_one_thread(tiny_encoder, mixed_texts, tokenizer_threads):
    expected = tiny_encoder.encode(mixed_texts, batch_size=64, truncate_dim=128)
    results: dict[int, list[np.ndarray]] = {}

    def work(worker: int) -> None:
        results[worker] = [tiny_encoder.encode(mixed_texts, batch_size=64, truncate_dim=128) for _ in range(3)]

    run_in_threads(work)
    assert len(results) == 8
    for runs in results.values():
        for vectors in runs:
            np.testing.assert_array_equal(vectors, expected)


def test_a_bulk_encode_turns_the_tokenizer_threads_off_only_when_the_user_has_not_chosen(
    tiny_encoder, mixed_texts, monkeypatch
):
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    tiny_encoder.encode(mixed_texts[:5])  # one batch: no threads of ours, nothing to choose
    assert "TOKENIZERS_PARALLELISM" not in os.environ
    chosen = tiny_encoder.encode(mixed_texts, batch_size=50)
    assert os.environ["TOKENIZERS_PARALLELISM"] == "false"
    for users_value in ("true", "1", "False"):
        monkeypatch.setenv("TOKENIZERS_PARALLELISM", users_value)
        np.testing.assert_array_equal(tiny_encoder.encode(mixed_texts, batch_size=50), chosen)
        assert os.environ["TOKENIZERS_PARALLELISM"] == users_value


# --- 4-bit rows on demand -----------------------------------------------------------------


def test_a_fresh_four_bit_encoder_serves_small_batches_from_their_rows(tiny_model_path, fixture_texts):
    """A new process's first queries dequantise only their rows, with the full table's exact values."""
    from sse_integrations import encoder as encoder_module

    fresh = SSEEncoder.from_pretrained(tiny_model_path)
    reference = SSEEncoder.from_pretrained(tiny_model_path)
    for text in [text for text in fixture_texts if len(text) < 1_000]:  # not the 20,000-character one
        for dim in (32, 512):
            np.testing.assert_array_equal(
                fresh.encode([text], truncate_dim=dim), loop_reference(reference, [text], dim)
            )
    assert not fresh.weights.materialised
    assert fresh.weights.rows(np.array([3, 1, 3])).shape == (3, fresh.full_dim)
    big = [f"{text} {index}" for index in range(400) for text in fixture_texts[:6]]
    assert sum(len(e.ids) for e in fresh.tokenizer.encode_batch(big)) > encoder_module._ROWS_ON_DEMAND
    np.testing.assert_array_equal(fresh.encode(big), loop_reference(reference, big, 512))
    assert fresh.weights.materialised  # the first large batch built the table once


def test_eight_threads_building_the_four_bit_table_at_once_agree(tiny_model_path, fixture_texts):
    short_texts = [text for text in fixture_texts if len(text) < 1_000]
    fresh = SSEEncoder.from_pretrained(tiny_model_path)
    expected = SSEEncoder.from_pretrained(tiny_model_path).encode(short_texts * 200)
    results: dict[int, np.ndarray] = {}

    def work(worker: int) -> None:
        # Half the threads start with small batches (rows on demand) while the others build the table.
        texts = short_texts if worker % 2 else short_texts * 200
        small = fresh.encode(texts)
        results[worker] = fresh.encode(short_texts * 200)
        np.testing.assert_array_equal(small, expected[: len(small)])

    run_in_threads(work)
    assert all(np.array_equal(vectors, expected) for vectors in results.values()) and len(results) == 8


def _unbounded_long_bag_mean(embedding: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The long-bag mean as one gather of every row summed in float64 (the sums before issue 31)."""
    # As mean_blocks: the float64 sum is stored as float32, then divided by the count.
    return embedding.take(ids, axis=0).sum(axis=0, dtype=np.float64).astype(np.float32) / np.float32(len(ids))


def test_long_bags_are_summed_in_bounded_blocks_with_the_same_vectors(tiny_encoder, monkeypatch):
    """One text of ~1M tokens (about a 4.6 MB Japanese text) costs the pooling a few MB, not a row per token."""
    import tracemalloc

    embedding = tiny_encoder.weights.embedding
    rng = np.random.default_rng(31)
    # Lengths around the block size and the threshold catch an off-by-one in the blocking.
    lengths = np.array([1_000_000, pooling.LONG_BAG + 1, 3 * pooling._GATHER_ROWS + 1, 5, 0], dtype=np.int64)
    flat = rng.integers(0, embedding.shape[0], int(lengths.sum()))
    tracemalloc.start()
    try:
        pooled = pooling.mean_pool(embedding, flat, lengths)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A row per token would be 2 GB (1M x 512 float32); the blocks stay in cache-sized buffers.
    assert peak < 16 * 2**20, f"pooling one long text peaked at {peak / 2**20:.0f} MB of numpy allocations"
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    for row, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist())):
        if length > pooling.LONG_BAG:
            expected = _unbounded_long_bag_mean(embedding, flat[start : start + length])
            assert np.array_equal(pooled[row], expected), row
    # The block size is a buffer size, not part of the arithmetic.
    monkeypatch.setattr(pooling, "_GATHER_ROWS", 7)
    tail = flat[-2000:]
    assert np.array_equal(
        pooling.mean_pool(embedding, tail, np.array([2000]))[0], _unbounded_long_bag_mean(embedding, tail)
    )
