import threading

import pytest

from sse_integrations.qdrant.lookahead import EncodeAhead


def test_results_come_in_order_and_encoding_runs_in_one_worker_thread():
    threads = set()

    def encode(batch):
        threads.add(threading.get_ident())
        return [value * 2 for value in batch]

    with EncodeAhead(encode, [[i, i + 1] for i in range(0, 10, 2)]) as ahead:
        results = [ahead.next() for _ in range(5)]
        with pytest.raises(LookupError, match="every batch was handed out"):
            ahead.next()
    assert results == [[0, 2], [4, 6], [8, 10], [12, 14], [16, 18]]
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_the_next_batch_is_encoded_while_the_caller_holds_this_one():
    second_started = threading.Event()

    def encode(batch):
        if batch == 2:
            second_started.set()
        return batch

    with EncodeAhead(encode, [1, 2]) as ahead:
        assert ahead.next() == 1
        # The caller has not asked for batch 2 yet: the worker got to it on its own.
        assert second_started.wait(timeout=10)
        assert ahead.next() == 2


def test_a_failed_batch_raises_its_error_and_nothing_after_it_is_encoded():
    seen = []

    def encode(batch):
        seen.append(batch)
        if batch == 2:
            raise ValueError("bad batch")
        return batch

    with EncodeAhead(encode, [1, 2, 3, 4]) as ahead:
        assert ahead.next() == 1
        with pytest.raises(ValueError, match="bad batch"):
            ahead.next()
    assert seen == [1, 2]


def test_closing_early_drops_the_queued_batch_and_stops_the_worker():
    release = threading.Event()
    seen = []

    def encode(batch):
        seen.append(batch)
        release.wait(timeout=10)
        return batch

    ahead = EncodeAhead(encode, [1, 2, 3])
    release.set()
    assert ahead.next() == 1
    ahead.close()
    assert seen in ([1], [1, 2])  # batch 2 may have started before close(); batch 3 never
    assert not any(thread.name.startswith("sse-encode-ahead") for thread in threading.enumerate())


def test_a_single_batch_is_encoded_on_the_callers_thread_when_asked_for():
    threads = []

    def encode(batch):
        threads.append(threading.get_ident())
        if batch == "bad":
            raise ValueError("bad batch")
        return batch.upper()

    with EncodeAhead(encode, ["only"]) as ahead:
        assert threads == []  # nothing runs before next()
        assert ahead.next() == "ONLY"
        with pytest.raises(LookupError):
            ahead.next()
    assert threads == [threading.get_ident()]
    with EncodeAhead(encode, ["bad"]) as ahead, pytest.raises(ValueError, match="bad batch"):
        ahead.next()
