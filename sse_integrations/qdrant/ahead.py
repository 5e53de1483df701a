"""Batches prepared ahead on worker threads while the engine writes the batch before them.

``add_texts`` alternates two kinds of work: encoding a batch into points (tokenizer and numpy,
which mostly run without the GIL) and handing them to the engine. Done one after the other, one
core encodes while the other waits for the write. :class:`BatchesAhead` keeps a few batches
encoding on worker threads, in order, so the writes and the encodes overlap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..encoder import usable_cores


class BatchesAhead:
    """Results of ``prepare(**job)`` for each job, in order, computed up to ``ahead`` jobs early.

    ``next_result()`` returns the next job's result or raises its exception. Leaving the ``with``
    block cancels the jobs not started and waits for the running ones: no thread outlives it,
    and nothing is prepared for a batch that will not be written.
    """

    def __init__(self, prepare: Callable[..., Any], jobs: Sequence[dict[str, Any]], workers: int | None = None) -> None:
        self._prepare = prepare
        self._jobs = iter(jobs)
        self._workers = max(1, min(workers or usable_cores(), len(jobs)))
        # One more than the workers: a worker that finishes finds the next batch waiting.
        self._ahead = self._workers + 1
        self._pending: deque[Future[Any]] = deque()
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> BatchesAhead:
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="sse-index")
        self._fill()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._pool is not None
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._pending.clear()

    def _fill(self) -> None:
        assert self._pool is not None
        while len(self._pending) < self._ahead:
            job = next(self._jobs, None)
            if job is None:
                return
            self._pending.append(self._pool.submit(self._prepare, **job))

    def next_result(self) -> Any:
        future = self._pending.popleft()
        self._fill()
        return future.result()
