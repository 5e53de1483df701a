"""Encode the next batch of an ``add_texts`` while the current one is stored.

Tokenising and pooling release the GIL for most of their time, while building the engine's
points and upserting them hold it; running the encoding of batch i+1 in one worker thread
beside the storing of batch i keeps both cores busy (issue 14). For a bulk add the worker
thread hands each batch to a helper process (:mod:`sse_integrations.encoder_process`), so the
encoding no longer waits for the GIL the storing holds.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Generic, TypeVar

from ..encoder import SSEEncoder, encode_documents
from ..encoder_process import EncoderProcess, EncoderProcessError
from ..sparse import SparseEncoder
from .layout import DenseStage
from .passages import PassageStage
from .points import MultiVectors, stage_vectors

logger = logging.getLogger(__name__)

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


class StageEncoder:
    """A batch of texts -> its vectors by name: each dense stage, the passages and the sparse vector if any.

    With a :class:`EncoderProcess` the child computes the widest dense vectors, the passages and
    the sparse vectors; the prefixes are normalised here either way, so both give the same values.
    """

    def __init__(
        self,
        encoder: SSEEncoder,
        stages: Sequence[DenseStage],
        sparse: tuple[SparseEncoder, str] | None,
        process: EncoderProcess | None = None,
        passages: PassageStage | None = None,
    ) -> None:
        self.encoder, self.stages, self.sparse, self.process = encoder, stages, sparse, process
        self.passages = passages
        self.widest = max(stage.dim for stage in stages)

    def __call__(self, texts: list[str]) -> dict[str, Any]:
        cut = (self.passages.cut, self.passages.dim) if self.passages is not None else None
        if self.process is not None:
            full, sparse_vectors, passage_rows = self.process.encode_documents(texts, self.widest, cut)
        else:
            full, passage_rows = encode_documents(self.encoder, texts, self.widest, cut)
            sparse_vectors = self.sparse[0].encode_documents(texts) if self.sparse is not None else None
        vectors: dict[str, Any] = dict(stage_vectors(full, self.stages))
        if self.passages is not None:
            assert passage_rows is not None
            vectors[self.passages.name] = MultiVectors(*passage_rows)
        if self.sparse is not None:
            vectors[self.sparse[1]] = sparse_vectors
        return vectors


@contextlib.contextmanager
def stage_encoder(
    encoder: SSEEncoder,
    stages: Sequence[DenseStage],
    sparse: tuple[SparseEncoder, str] | None,
    *,
    passages: PassageStage | None = None,
    texts: int,
    process_from: int | None,
) -> Iterator[StageEncoder]:
    """A :class:`StageEncoder` for an add of ``texts`` texts, in a helper process from ``process_from`` on.

    The helper needs a CPU encoder and sparse encoder that pickle; when it cannot start, the add
    encodes in this process (logged as a warning): nothing is written before the first batch.
    """
    process = None
    if process_from is not None and texts >= process_from and encoder.device is None:
        try:
            process = EncoderProcess(encoder, sparse[0] if sparse is not None else None)
        except EncoderProcessError as error:
            logger.warning("%s; encoding in this process instead", error)
    try:
        yield StageEncoder(encoder, stages, sparse, process, passages)
    finally:
        if process is not None:
            process.close()


def progress_bar(description: str, total: int, batches: int, show: bool | None) -> Any:
    """A tqdm bar over ``total`` documents when ``show`` (None: more than 4 batches on a terminal), else a no-op."""
    if show is None:
        show = batches > 4 and sys.stderr.isatty()
    if not show:
        return contextlib.nullcontext()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="doc")
