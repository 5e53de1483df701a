"""Bulk encoding in a helper Python process, beside a thread that holds the GIL.

Storing documents in an in-process engine (building Qdrant Edge points, upserting them) holds
the GIL, and so do the encoder's short Python steps between its GIL-free tokenising and
pooling; in one process each waits for the other (issue 14: a 100k-document ``add_texts``
spent 8.3 s where its encodes alone take 4.7 s and its storing 5.3 s). A child process with
its own interpreter encodes while the parent stores.

The child runs this module's :func:`main` in a new interpreter (the parent's ``sys.executable``),
so it never re-imports the caller's ``__main__`` (as multiprocessing's spawn does) and nothing
is forked from a process that runs other threads. It receives a pickled copy of the encoders once
(4-bit weights travel as their codes), then answers one request at a time over its stdin and
stdout: the un-normalised dense matrix of a list of texts, and their BM25 document vectors when
it holds a sparse encoder. Its vectors are bit-identical to the parent's: the same code runs on
the same weights.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from .encoder import encode_documents

_HEADER = struct.Struct("<Q")
# Seconds a child gets to load the encoders and answer the handshake, and to exit after close().
START_TIMEOUT = 120.0
EXIT_TIMEOUT = 10.0


class EncoderProcessError(RuntimeError):
    """The helper process could not start, failed on a batch, or exited."""


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    """The next message, or None when the other side closed the stream."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


class EncoderProcess:
    """An :class:`~sse_integrations.SSEEncoder` (and optionally a ``SparseEncoder``) copied into a child process.

    ``encode_documents`` may be called from any thread, one call at a time (calls queue on a
    lock). Use it as a context manager, or call :meth:`close`: the child exits when its stdin
    closes. Raises :class:`EncoderProcessError` when the encoders do not pickle or the child
    does not start (the caller can then encode in-process: nothing was written yet).
    """

    def __init__(self, encoder: Any, sparse_encoder: Any = None) -> None:
        try:
            setup = pickle.dumps({"encoder": encoder, "sparse": sparse_encoder}, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            raise EncoderProcessError(f"the encoders cannot be copied to a helper process: {error}") from error
        if not sys.executable or getattr(sys, "frozen", False):
            # A frozen application's executable is the application itself, not an interpreter.
            raise EncoderProcessError(
                "no Python interpreter to start a helper process with (sys.executable is empty or frozen)"
            )
        self._lock = threading.Lock()
        self._stderr = tempfile.TemporaryFile()
        # The child imports this very package (a source checkout may shadow an installed copy),
        # then takes the folder off sys.path again so it shadows nothing else.
        bootstrap = (
            f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r}); "
            f"import {__name__} as child; sys.path.pop(0); child.main()"
        )
        # One core for the child: the parent's storing thread takes the other.
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-c", bootstrap],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
            )
        except OSError as error:
            self._stderr.close()
            raise EncoderProcessError(f"the helper process did not start: {error}") from error
        reply = self._handshake(setup)
        if reply != ("ready",):
            self._stop()
            detail = self._exit_detail()
            self._stderr.close()
            if isinstance(reply, tuple) and reply[:1] == ("error",):
                raise EncoderProcessError(f"the helper process could not load the encoders: {reply[1]}: {reply[2]}")
            raise EncoderProcessError(f"the helper process did not start{detail}")

    def _handshake(self, setup: bytes) -> Any:
        """Send the encoders; the child's first reply, or None if none came within START_TIMEOUT seconds.

        Both steps wait on the child (the setup fills the pipe until it reads), so both run on a
        thread this one stops waiting for; a child that takes too long is killed, which ends them.
        """
        replies: list[Any] = []

        def exchange() -> None:
            assert self._child.stdin is not None
            try:
                self._child.stdin.write(_HEADER.pack(len(setup)))
                self._child.stdin.write(setup)
                self._child.stdin.flush()
            except OSError:
                replies.append(None)
                return
            replies.append(self._reply_or_none())

        talker = threading.Thread(target=exchange, daemon=True)
        talker.start()
        talker.join(START_TIMEOUT)
        if talker.is_alive():
            self._child.kill()
            talker.join()
            return None
        return replies[0]

    def _reply_or_none(self) -> Any:
        assert self._child.stdout is not None
        try:
            return _receive(self._child.stdout)
        except (pickle.UnpicklingError, EOFError):
            return None

    def _exit_detail(self) -> str:
        code = self._child.poll()
        self._stderr.seek(0)
        tail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-8:]
        detail = f" (exit code {code})" if code is not None else ""
        return detail + (": " + " | ".join(tail) if tail else "")

    def encode_documents(
        self, texts: Sequence[str], truncate_dim: int | None = None, passages: tuple[Any, int | None] | None = None
    ) -> tuple[np.ndarray, list | None, tuple[np.ndarray, np.ndarray] | None]:
        """(un-normalised float32 vectors of ``texts`` at ``truncate_dim``, their sparse vectors or None,
        with ``passages`` = (``PassageCut``, width) the passages' (vectors, counts), else None)."""
        request = (list(texts), truncate_dim, passages)
        with self._lock:
            if self._child.stdin is None or self._child.stdin.closed:
                raise EncoderProcessError("the helper process is closed")
            try:
                _send(self._child.stdin, request)
            except OSError:
                reply = None
            else:
                reply = self._reply_or_none()
        if reply is None:
            self._stop()  # a child that is still running after a broken reply is killed, not waited on forever
            raise EncoderProcessError(f"the helper process exited while encoding{self._exit_detail()}")
        if reply[0] == "error":
            _, kind, message = reply
            raise EncoderProcessError(f"encoding in the helper process failed: {kind}: {message}")
        return reply[1], reply[2], reply[3]

    def _stop(self) -> None:
        with self._lock:
            if self._child.stdin is not None and not self._child.stdin.closed:
                try:
                    self._child.stdin.close()
                except OSError:
                    pass
            try:
                self._child.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                self._child.kill()
                self._child.wait()
            if self._child.stdout is not None:
                self._child.stdout.close()

    def close(self) -> None:
        """Let the child exit (killing it if it does not within EXIT_TIMEOUT seconds)."""
        self._stop()
        self._stderr.close()

    def __enter__(self) -> EncoderProcess:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """The child's loop: the encoders, a handshake, then one reply per request until stdin closes."""
    try:
        setup = _receive(stdin)
    except Exception as error:  # e.g. a class defined in the caller's __main__, which the child cannot import
        _send(stdout, ("error", type(error).__name__, str(error)))
        return
    if setup is None:
        return
    encoder, sparse = setup["encoder"], setup["sparse"]
    _send(stdout, ("ready",))
    while (request := _receive(stdin)) is not None:
        texts, truncate_dim, passages = request
        try:
            # One batch: encoded on this thread alone, as the parent holds the other core.
            dense, passage_rows = encode_documents(encoder, texts, truncate_dim, passages)
            reply: tuple = ("ok", dense, sparse.encode_documents(texts) if sparse is not None else None, passage_rows)
        except Exception as error:  # reported to the parent, which raises it for its batch
            reply = ("error", type(error).__name__, str(error))
        _send(stdout, reply)


def main() -> None:
    # Replies go out on a private copy of file descriptor 1, which then points at stderr: what
    # a library prints, from Python or from native code, cannot land in the reply stream.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        _serve(sys.stdin.buffer, replies)
    finally:
        replies.close()


if __name__ == "__main__":
    main()
