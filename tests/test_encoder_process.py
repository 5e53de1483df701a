"""The helper encoding process: the same vectors as in-process, errors reported, bulk adds use it."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys

import numpy as np
import pytest

from sse_integrations import SSEEncoder
from sse_integrations.encoder_process import EncoderProcess, EncoderProcessError
from sse_integrations.qdrant import IndexingError, MatryoshkaIndex
from sse_integrations.sparse import SparseEncoder

MIXED_TEXTS = [
    "猫が好きです。",
    "pip install --upgrade sse-integrations で更新します",
    "",
    "東京" * 400,  # a long bag (summed in float64)
    "\u200b制御\x00文字",
    "日本語とEnglishが混ざった文",
]


class SparseFailingOn(SparseEncoder):
    """A sparse encoder that fails on one marker text (module level: the helper process unpickles it)."""

    marker = "この文書で失敗する"

    def encode_documents(self, texts):
        if self.marker in texts:
            raise ValueError("marker text met")
        return super().encode_documents(texts)


class NoisySparse(SparseEncoder):
    """Prints from Python and writes to file descriptor 1 directly, as native code may."""

    def encode_documents(self, texts):
        print("progress: encoding", len(texts))
        os.write(1, b"native output\n")
        return super().encode_documents(texts)


@pytest.fixture(scope="module")
def corpus(dev_corpus):
    ids, texts = dev_corpus
    return ids[:300], texts[:300]


@pytest.fixture(scope="module")
def bundled():
    return SSEEncoder.from_pretrained()


@pytest.mark.parametrize("model", ["bundled", "tiny"])
def test_vectors_from_the_process_equal_the_encoders_bit_for_bit(model, bundled, tiny_encoder, fixture_texts):
    encoder = bundled if model == "bundled" else tiny_encoder
    texts = MIXED_TEXTS + list(fixture_texts)
    sparse = SparseEncoder(encoder.tokenizer, avg_doc_length=12.0)
    with EncoderProcess(encoder, sparse) as process:
        for dim in (None, 64):
            dense, sparse_vectors, _ = process.encode_documents(texts, dim)
            expected = encoder.encode(texts, truncate_dim=dim, normalize=False)
            assert dense.dtype == np.float32 and dense.tobytes() == expected.tobytes()
            assert sparse_vectors == sparse.encode_documents(texts)


def test_without_a_sparse_encoder_the_process_returns_dense_only(tiny_encoder, fixture_texts):
    with EncoderProcess(tiny_encoder) as process:
        dense, sparse_vectors, _ = process.encode_documents(fixture_texts[:3])
    assert sparse_vectors is None and dense.shape == (3, tiny_encoder.full_dim)


def test_pickled_4bit_weights_stay_packed_and_encode_the_same(bundled):
    copy = pickle.loads(pickle.dumps(bundled))
    assert not copy.weights.materialised  # the codes travelled, not a 64 MB table
    assert len(pickle.dumps(bundled)) < 12_000_000
    texts = MIXED_TEXTS * 300  # > 4,096 ids: the copy builds its full table
    assert copy.encode(texts).tobytes() == bundled.encode(texts).tobytes()


def test_a_failing_batch_is_reported_and_the_process_serves_the_next(tiny_encoder):
    sparse = SparseFailingOn(tiny_encoder.tokenizer, avg_doc_length=10.0)
    with EncoderProcess(tiny_encoder, sparse) as process:
        with pytest.raises(EncoderProcessError, match="ValueError: marker text met"):
            process.encode_documents(["猫", SparseFailingOn.marker])
        dense, _, passages = process.encode_documents(["猫"])
        assert passages is None
    assert dense.tobytes() == tiny_encoder.encode(["猫"], normalize=False).tobytes()


def test_output_printed_in_the_process_does_not_break_its_replies(tiny_encoder, fixture_texts):
    sparse = NoisySparse(tiny_encoder.tokenizer, avg_doc_length=10.0)
    with EncoderProcess(tiny_encoder, sparse) as process:
        for _ in range(3):
            dense, vectors, _ = process.encode_documents(fixture_texts[:5])
            assert dense.tobytes() == tiny_encoder.encode(fixture_texts[:5], normalize=False).tobytes()
            assert vectors == sparse.encode_documents(fixture_texts[:5])


def test_a_killed_process_is_an_error_naming_its_exit(tiny_encoder):
    with EncoderProcess(tiny_encoder) as process:
        os.kill(process._child.pid, signal.SIGKILL)
        process._child.wait()
        with pytest.raises(EncoderProcessError, match="exited while encoding.*exit code -9"):
            process.encode_documents(["猫"])


def test_a_process_that_never_answers_is_stopped_after_the_start_timeout(monkeypatch, tiny_encoder, tmp_path):
    import sse_integrations.encoder_process as encoder_process

    # An "interpreter" that hangs before its handshake (and never reads the encoders sent to it).
    hanging = tmp_path / "hanging-python"
    hanging.write_text("#!/bin/sh\nexec sleep 60\n")
    hanging.chmod(0o755)
    monkeypatch.setattr("sys.executable", str(hanging))
    monkeypatch.setattr(encoder_process, "START_TIMEOUT", 1.0)
    with pytest.raises(EncoderProcessError, match="did not start.*exit code -9"):
        EncoderProcess(tiny_encoder)


def test_encoders_that_do_not_pickle_are_refused_before_a_process_starts(tiny_encoder):
    sparse = SparseEncoder(tiny_encoder.tokenizer, avg_doc_length=1.0)
    sparse.callback = lambda: None  # a lambda does not pickle
    with pytest.raises(EncoderProcessError, match="cannot be copied"):
        EncoderProcess(tiny_encoder, sparse)


def test_a_class_the_process_cannot_import_is_a_clear_error(monkeypatch, tiny_encoder):
    # Pickled by reference to the caller's __main__, which the child (a fresh interpreter) lacks.
    main_only = type("MainOnlySparse", (SparseEncoder,), {"__module__": "__main__"})
    monkeypatch.setattr(sys.modules["__main__"], "MainOnlySparse", main_only, raising=False)
    with pytest.raises(EncoderProcessError, match="could not load the encoders: AttributeError: .*MainOnlySparse"):
        EncoderProcess(tiny_encoder, main_only(tiny_encoder.tokenizer, avg_doc_length=1.0))


def test_a_bulk_add_stores_the_same_vectors_as_an_add_in_this_process(tiny_encoder, corpus, tmp_path):
    ids, texts = corpus
    stored = {}
    for name, process_from in (("process", 1), ("thread", None)):
        index = MatryoshkaIndex(
            tmp_path / name, "docs", tiny_encoder, sparse=True, batch_size=64, encode_process_from=process_from
        )
        assert index.add_texts(texts, ids=ids) == ids
        stored[name] = index.get(ids, with_vectors=True)
        index.close()
    for ours, theirs in zip(stored["process"], stored["thread"]):
        assert ours.payload == theirs.payload
        for stage in ("coarse", "full"):
            assert (
                np.asarray(ours.vector[stage], np.float32).tobytes()
                == np.asarray(theirs.vector[stage], np.float32).tobytes()
            )
        assert ours.vector["sparse"] == theirs.vector["sparse"]


def test_a_batch_failing_in_the_process_reports_what_was_written(tiny_encoder, corpus, tmp_path):
    ids, texts = corpus
    texts = list(texts[:200])
    texts[130] = SparseFailingOn.marker
    sparse = SparseFailingOn(tiny_encoder.tokenizer)
    index = MatryoshkaIndex(
        tmp_path / "edge", "docs", tiny_encoder, sparse=sparse, batch_size=50, encode_process_from=1
    )
    with pytest.raises(IndexingError) as caught:
        index.add_texts(texts, ids=ids[:200])
    assert caught.value.written_ids == ids[:100] and caught.value.failed_ids == ids[100:150]
    assert isinstance(caught.value.__cause__, EncoderProcessError)
    assert index.count() == 100
    index.close()


def test_when_no_process_can_start_the_add_encodes_here_and_says_so(
    monkeypatch, tiny_encoder, corpus, tmp_path, caplog
):
    ids, texts = corpus
    monkeypatch.setattr("sys.executable", "")
    index = MatryoshkaIndex(tmp_path / "edge", "docs", tiny_encoder, encode_process_from=1)
    with caplog.at_level(logging.WARNING, logger="sse_integrations.qdrant.lookahead"):
        index.add_texts(texts[:100], ids=ids[:100])
    assert "sys.executable is empty" in caplog.text and "encoding in this process instead" in caplog.text
    assert index.count() == 100
    index.close()


def test_encode_process_from_is_checked(tiny_encoder, tmp_path):
    with pytest.raises(ValueError, match="encode_process_from"):
        MatryoshkaIndex(tmp_path / "edge", "docs", tiny_encoder, encode_process_from=0)


async def test_the_async_index_adds_through_the_process_too(tiny_encoder, corpus, tmp_path):
    from sse_integrations.qdrant import AsyncMatryoshkaIndex

    ids, texts = corpus
    index = AsyncMatryoshkaIndex(
        tmp_path / "edge", "docs", tiny_encoder, sparse=True, batch_size=64, encode_process_from=1
    )
    await index.add_texts(texts, ids=ids)
    assert await index.count() == len(ids)
    stored = await index.get(ids[:3], with_vectors=True)
    expected = tiny_encoder.encode(texts[:3], truncate_dim=512)
    assert np.asarray([r.vector["full"] for r in stored], np.float32).tobytes() == expected.tobytes()
    await index.close()
