"""Encode the next batch of an ``add_texts`` while the current one is stored.

Tokenising and pooling release the GIL for most of their time, while building the engine's
points and upserting them hold it; running the encoding of batch i+1 in one worker thread
beside the storing of batch i keeps both cores busy (issue 14).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Generic, TypeVar

Batch = TypeVar("Batch")
Encoded = TypeVar("Encoded")


class EncodeAhead(Generic[Batch, Encoded]):
    """``encode`` applied to each batch in order, one batch ahead of the caller, in one worker thread.

    :meth:`next` returns the current batch's result (or raises its exception) and queues the
    following batch, which the worker encodes while the caller stores this one: at most two
    batches are encoded and held at a time. A single batch has nothing to overlap with and is
    encoded by :meth:`next` on the caller's thread, without starting one. Use it as a context
    manager (or call :meth:`close`) so the worker stops when the caller stops early (a batch
    queued ahead of a failed upsert was encoded, never stored).
    """

    def __init__(self, encode: Callable[[Batch], Encoded], batches: Sequence[Batch]) -> None:
        self._encode = encode
        self._batches = iter(batches)
        self._pool = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="sse-encode-ahead") if len(batches) > 1 else None
        )
        self._pending: Future[Encoded] | Callable[[], Encoded] | None = self._submit()

    def _submit(self) -> Future[Encoded] | Callable[[], Encoded] | None:
        for batch in self._batches:
            if self._pool is None:
                return partial(self._encode, batch)
            return self._pool.submit(self._encode, batch)
        return None

    def next(self) -> Encoded:
        """The next batch's encoding.

        The following batch is queued only once this one succeeded, so an encoding that fails
        stops the batches after it from being encoded at all.

        Raises:
            LookupError: every batch was handed out already. (Not ``StopIteration``: this
                method runs inside generator plans and asyncio worker threads, where a
                ``StopIteration`` would turn into another error.)
        """
        current = self._pending
        if current is None:
            raise LookupError("every batch was handed out already")
        self._pending = None
        encoded = current.result() if isinstance(current, Future) else current()
        self._pending = self._submit()
        return encoded

    def close(self) -> None:
        """Drop the batch queued ahead (waiting for it if it already runs) and stop the worker."""
        if isinstance(self._pending, Future):
            self._pending.cancel()
        self._pending = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def __enter__(self) -> EncodeAhead[Batch, Encoded]:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
