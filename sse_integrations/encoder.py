"""SSEEncoder: load an SSE checkpoint and turn texts into Matryoshka embeddings.

On the CPU the whole path is tokenizers + numpy, so importing and loading stay cheap (no
torch import). Any other device goes through the torch module in :mod:`sse_integrations.model`.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._checks import as_text_list, check_positive_int
from .formats import ModelFormatError, SSEWeights, read_model_folder, write_model_folder
from .hub import looks_like_hub_id, resolve_hub
from .matryoshka import l2_normalize, matryoshka_dims, validate_dim
from .passages import PassageCut
from .pooling import LONG_BAG, flatten_ids, mean_blocks

if TYPE_CHECKING:
    from tokenizers import Tokenizer

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "assets" / "default_model"
DEFAULT_BATCH_SIZE = 1024
# Bags longer than this are summed in float64 (see pooling.mean_blocks).
_LONG_BAG = LONG_BAG
# Token ids in a batch up to which 4-bit weights dequantise only the rows the batch uses.
_ROWS_ON_DEMAND = 4096
# Batches in the tokenizer at once while its own threads are on (see SSEEncoder._tokenized).
_TOKENIZING_THREADS = 2
# tokenizers reads this on every batch call; these values (any case) turn its threads off.
PARALLELISM_VARIABLE = "TOKENIZERS_PARALLELISM"
_PARALLELISM_OFF = ("", "off", "false", "f", "no", "n", "0")
_parallelism_choice = threading.Lock()


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _tokenizer_threads_off() -> bool:
    """Whether tokenizers encodes a batch on the calling thread alone; unset means: make it so.

    Left on, tokenizers spreads every batch over all cores (rayon), whose idle workers spin
    while our threads pool, and a bulk encode stays below model2vec's (measured in
    docs/benchmarks.md). Like transformers' pipelines and model2vec, which run threads of
    their own, a bulk encode turns it off when the user has not chosen, by setting
    TOKENIZERS_PARALLELISM=false for the process (once); a value the user set is kept.
    """
    with _parallelism_choice:
        value = os.environ.get(PARALLELISM_VARIABLE)
        if value is None:
            os.environ[PARALLELISM_VARIABLE] = "false"
            return True
    return value.lower() in _PARALLELISM_OFF  # tokenizers compares the value as is, lower-cased


def model_reference(name_or_path: str | os.PathLike | None) -> str | None:
    """How to name a model so it loads again from any process: None for the bundled default
    model, an absolute path for a folder (valid from any working directory), a hub id as is."""
    if name_or_path is None:
        return None
    path = Path(name_or_path).expanduser()
    if path.exists():
        resolved = path.resolve()
        return None if resolved == DEFAULT_MODEL_DIR else str(resolved)
    return str(name_or_path)


class SSEEncoder:
    """A Stable Static Embedding model: token ids -> mean of rows -> ``beta * tanh(alpha*x + bias)``.

    Args:
        tokenizer: a ``tokenizers.Tokenizer``; special tokens are never added.
        weights: the model tensors.
        truncate_dim: default Matryoshka prefix for :meth:`encode` (None = full width).
        device: None or "cpu" encodes with numpy; "cuda", "mps", ... encode through torch.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        weights: SSEWeights,
        *,
        truncate_dim: int | None = None,
        device: str | None = None,
        layout: str | None = None,
        source: str | None = None,
        weight_files: Sequence[Path] = (),
    ) -> None:
        vocab_needed = tokenizer.get_vocab_size(with_added_tokens=True)
        if vocab_needed > weights.vocab_size:
            raise ModelFormatError(
                f"the tokenizer produces ids up to {vocab_needed - 1} but the embedding has only "
                f"{weights.vocab_size} rows: tokenizer and weights belong to different models"
            )
        # Padding would add pad ids to every bag and change the mean.
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        self.weights = weights
        self.truncate_dim = validate_dim(truncate_dim, weights.dim)
        self.device = None if device in (None, "cpu") else str(device)
        self.layout = layout or ("fp32" if weights.has_dyt else "static")
        self.source = source
        self.weight_files = tuple(Path(path) for path in weight_files)
        self._torch_modules: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        # torch modules are per-device caches, rebuilt on use; the tokenizer pickles as its JSON.
        state = dict(self.__dict__)
        state["_torch_modules"] = {}
        return state

    # --- loading and saving --------------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike | None = None,
        *,
        revision: str | None = None,
        truncate_dim: int | None = None,
        device: str | None = None,
        local_files_only: bool | None = None,
        cache_dir: str | os.PathLike | None = None,
    ) -> SSEEncoder:
        """Load a model from a local folder, a Hugging Face hub id, or (None) the bundled default.

        Args:
            name_or_path: folder, hub id (``owner/name``), or None for the bundled model.
            revision: hub branch, tag or commit to pin (hub ids only).
            truncate_dim: default Matryoshka prefix for :meth:`encode`.
            device: None/"cpu" for numpy, or a torch device such as "cuda".
            local_files_only: use only the hub cache; None defers to ``HF_HUB_OFFLINE``.
            cache_dir: hub cache folder.
        """
        folder = cls._resolve_folder(name_or_path, revision, local_files_only, cache_dir)
        loaded = read_model_folder(folder)
        return cls(
            loaded.tokenizer,
            loaded.weights,
            truncate_dim=truncate_dim,
            device=device,
            layout=loaded.layout,
            source=str(name_or_path) if name_or_path is not None else str(folder),
            weight_files=loaded.weight_files,
        )

    @staticmethod
    def _resolve_folder(name_or_path, revision, local_files_only, cache_dir) -> Path:
        if name_or_path is None:
            if not (DEFAULT_MODEL_DIR / "tokenizer.json").is_file():
                raise FileNotFoundError(
                    f"the bundled default model is not in this installation ({DEFAULT_MODEL_DIR}); "
                    "pass a model folder or hub id to from_pretrained()"
                )
            return DEFAULT_MODEL_DIR
        path = Path(name_or_path).expanduser()
        if path.exists():
            if revision is not None:
                raise ValueError(f"revision={revision!r} applies to hub ids, but {path} is a local folder")
            return path
        name = str(name_or_path)
        if looks_like_hub_id(name):
            return resolve_hub(name, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        raise FileNotFoundError(f"{name!r} is neither an existing folder nor a hub id of the form 'owner/name'")

    def save_pretrained(self, path: str | os.PathLike, *, quantize: str | None = None) -> list[Path]:
        """Write the published layout: fp32 ``model.safetensors`` or (``quantize="q4"``) the 4-bit files.

        The other layout's weight files in ``path`` are removed, and ``sse_checksums.json``
        records the weights' sha256, which :meth:`from_pretrained` verifies (a corrupt or
        replaced file is a :class:`ModelFormatError` naming it). Returns the tokenizer and
        weight files written.
        """
        return write_model_folder(Path(path), self.weights, self.tokenizer.to_str(), quantize=quantize)

    # --- properties ----------------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Width of the vectors :meth:`encode` returns by default."""
        return self.truncate_dim

    @property
    def full_dim(self) -> int:
        return self.weights.dim

    @property
    def vocab_size(self) -> int:
        return self.weights.vocab_size

    @property
    def matryoshka_dims(self) -> tuple[int, ...]:
        return matryoshka_dims(self.weights.dim)

    def __repr__(self) -> str:
        return (
            f"SSEEncoder(source={self.source!r}, layout={self.layout!r}, vocab_size={self.vocab_size}, "
            f"dim={self.full_dim}, truncate_dim={self.truncate_dim})"
        )

    # --- encoding ------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of ``texts`` without special tokens, as (flat ids, length per text)."""
        # encode_batch_fast skips the character offsets nobody here reads (~1.3x faster).
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        return flatten_ids(encode(list(texts), add_special_tokens=False))

    def encode(
        self,
        texts: Sequence[str],
        *,
        truncate_dim: int | None = None,
        normalize: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        show_progress: bool = False,
    ) -> np.ndarray:
        """Embed ``texts``.

        Args:
            texts: a list of strings (an empty string gives ``beta * tanh(bias)``, normalised).
            truncate_dim: Matryoshka prefix to keep (default: the encoder's ``truncate_dim``).
            normalize: L2-normalise after truncation (an all-zero vector stays zero).
            batch_size: texts tokenised per step.
            show_progress: show a tqdm bar.

        Returns:
            float32 array of shape (len(texts), dim).
        """
        items = as_text_list(texts)
        dim = validate_dim(truncate_dim, self.full_dim) if truncate_dim is not None else self.truncate_dim
        check_positive_int(batch_size, "batch_size")
        output = np.empty((len(items), dim), dtype=np.float32)
        if len(items) == 1 and self.device is None and self._encode_single(items[0], output, dim, normalize):
            return output
        batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
        progress = None
        if show_progress:
            from tqdm.auto import tqdm

            progress = tqdm(total=len(batches), desc="Encoding", unit="batch")
        if len(batches) > 1 and self.device is None and _tokenizer_threads_off():
            self._encode_on_threads(batches, output, dim, normalize, progress)
        else:
            start = 0
            for flat, lengths in self._tokenized(batches):
                self._pool_into(flat, lengths, output[start : start + len(lengths)], dim, normalize)
                start += len(lengths)
                if progress is not None:
                    progress.update()
        if progress is not None:
            progress.close()
        return output

    def encode_with_passages(
        self,
        texts: Sequence[str],
        cut: PassageCut | None = None,
        *,
        truncate_dim: int | None = None,
        passage_dim: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Whole-document vectors and the vectors of each document's passages, from one tokenisation.

        Args:
            texts: a list of strings.
            cut: how documents are cut into passages (default :class:`PassageCut`).
            truncate_dim: width of the whole-document vectors (default: the encoder's).
            passage_dim: width of the passage vectors (default: ``truncate_dim``).
            batch_size: texts tokenised per step.

        Returns:
            (documents, passages, counts): the documents' vectors, un-normalised, exactly those of
            ``encode(texts, normalize=False)``; the passages' vectors, L2-normalised, one
            document's after another; and the number of passages of each document.
        """
        items = as_text_list(texts)
        cut = cut or PassageCut()
        dim = validate_dim(truncate_dim, self.full_dim) if truncate_dim is not None else self.truncate_dim
        passage_dim = validate_dim(passage_dim, self.full_dim) if passage_dim is not None else dim
        check_positive_int(batch_size, "batch_size")
        documents = np.empty((len(items), dim), dtype=np.float32)
        passage_blocks: list[np.ndarray] = []
        count_blocks: list[np.ndarray] = []
        batches = [items[start : start + batch_size] for start in range(0, len(items), batch_size)]
        start = 0
        for flat, lengths in self._tokenized(batches):
            self._pool_into(flat, lengths, documents[start : start + len(lengths)], dim, normalize=False)
            spans = cut.spans(lengths)
            passages = np.empty((len(spans.lengths), passage_dim), dtype=np.float32)
            self._pool_into(spans.gather(flat), spans.lengths, passages, passage_dim, normalize=True)
            passage_blocks.append(passages)
            count_blocks.append(spans.counts(len(lengths)))
            start += len(lengths)
        if not passage_blocks:
            return documents, np.zeros((0, passage_dim), dtype=np.float32), np.zeros(0, dtype=np.int64)
        return documents, np.concatenate(passage_blocks), np.concatenate(count_blocks)

    def _encode_single(self, text: str, out: np.ndarray, dim: int, normalize: bool) -> bool:
        """One text that is not long (a query) into ``out`` without the batch machinery; False if long.

        The same arithmetic as a batch (rows summed one after another in float32, divided by the
        count, DyT, normalisation), so the vector is bit-identical to the text's row in a batch.
        ``Tokenizer.encode`` runs on this thread: waking the tokenizer's thread pool for one text
        cost more than tokenising it (0.46 vs 0.19 ms after a short idle, issue 14).
        """
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        if len(ids) > _LONG_BAG:
            return False
        if ids:
            rows = self.weights.rows(np.asarray(ids, dtype=np.int64))
            # Summing axis 1 of (1, length, dim): the order mean_blocks adds a bag's rows in.
            vector = np.add.reduce(rows[None], axis=1)[:, :dim]
            vector /= np.float32(len(ids))
        else:
            vector = np.zeros((1, dim), dtype=np.float32)
        self._dyt_in_place(vector)
        if normalize:
            l2_normalize(vector)
        out[:] = vector
        return True

    def _pool_into(self, flat: np.ndarray, lengths: np.ndarray, out: np.ndarray, dim: int, normalize: bool) -> None:
        """Embeddings of one tokenised batch into ``out`` (its rows, in input order)."""
        for indices, vectors in self._embedded_blocks(flat, lengths, dim):
            if normalize:
                l2_normalize(vectors)
            out[indices] = vectors

    def _encode_on_threads(
        self, batches: list[list[str]], output: np.ndarray, dim: int, normalize: bool, progress: Any
    ) -> None:
        """One thread per usable core, each tokenising and pooling whole batches into its rows of ``output``.

        With the tokenizer's own threads off, tokenising a batch runs on the calling thread and
        releases the GIL, and so do numpy's large gathers and sums: the threads keep every core
        busy without handing batches between stages.
        """
        # Imported here: a query never needs it, and it costs cold start ~15 ms.
        from concurrent.futures import ThreadPoolExecutor

        ends = np.cumsum([len(batch) for batch in batches]).tolist()
        # Set by the first failing batch: the workers may be far ahead of the caller's wait on it.
        failed = threading.Event()

        def encode_batch(number: int) -> None:
            if failed.is_set():
                return
            try:
                flat, lengths = self.tokenize(batches[number])
                start = ends[number] - len(lengths)
                self._pool_into(flat, lengths, output[start : ends[number]], dim, normalize)
            except BaseException:
                failed.set()
                raise

        threads = min(_usable_cores(), len(batches))
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sse-encode") as pool:
            done = [pool.submit(encode_batch, number) for number in range(len(batches))]
            try:
                for batch_done in done:
                    batch_done.result()
                    if progress is not None:
                        progress.update()
            except BaseException:
                for batch_done in done:  # the first failure ends the encode: batches not started never run
                    batch_done.cancel()
                raise

    def _tokenized(self, batches: list[list[str]]) -> Iterable[tuple[np.ndarray, np.ndarray]]:
        """Tokenised batches in order; the following batches are tokenised while the caller pools this one.

        Used while the tokenizer's own threads are on (the user set TOKENIZERS_PARALLELISM to
        true) or on a torch device. The tokenizer releases the GIL and so do numpy's large
        gathers and sums, so the stages overlap instead of taking turns. Two batches are in the
        tokenizer at once: while one thread turns a finished batch into Python objects and id
        arrays (GIL held), the other keeps the tokenizer's threads busy. A single batch (a
        query) runs inline: a thread would only add latency.
        """
        if len(batches) <= 1:
            yield from map(self.tokenize, batches)
            return
        # Imported here: a query never needs it, and it costs cold start ~15 ms.
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=_TOKENIZING_THREADS, thread_name_prefix="sse-tokenize") as tokenizing:
            pending = deque(tokenizing.submit(self.tokenize, batch) for batch in batches[:_TOKENIZING_THREADS])
            for following in batches[_TOKENIZING_THREADS:]:
                ready = pending.popleft().result()
                pending.append(tokenizing.submit(self.tokenize, following))
                yield ready
            while pending:
                yield pending.popleft().result()

    def embed_ids(self, flat_ids: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Full-width, un-normalised embeddings of pre-tokenised bags (flat ids + bag lengths)."""
        return self._embed_ids(np.asarray(flat_ids, dtype=np.int64), np.asarray(lengths, dtype=np.int64))

    def _embed_ids(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        pooled = np.empty((len(lengths), self.full_dim), dtype=np.float32)
        for indices, vectors in self._embedded_blocks(flat, lengths, self.full_dim):
            pooled[indices] = vectors
        return pooled

    def _embedded_blocks(
        self, flat: np.ndarray, lengths: np.ndarray, dim: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(bag indices, first ``dim`` columns of their embeddings) in blocks, in no fixed order."""
        if self.device is not None:
            yield np.arange(len(lengths)), self._embed_ids_torch(flat, lengths, self.device)[:, :dim]
            return
        table, flat = self._rows_for(flat)
        for indices, means in mean_blocks(table, flat, lengths, long_bag=_LONG_BAG):
            # DyT works column by column, so the dropped Matryoshka tail never needs it.
            vectors = means[:, :dim]
            self._dyt_in_place(vectors)
            yield indices, vectors

    def _dyt_in_place(self, vectors: np.ndarray) -> None:
        """``beta * tanh(alpha * x + bias)`` on the leading columns ``vectors`` holds; a plain StaticEmbedding has none."""
        alpha, beta, bias = self.weights.dyt
        if alpha is None or beta is None or bias is None:
            return
        dim = vectors.shape[1]
        vectors *= alpha[:dim]
        vectors += bias[:dim]
        np.tanh(vectors, out=vectors)
        vectors *= beta[:dim]

    def _rows_for(self, flat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The embedding rows ``flat`` refers to, as (table, ids into it).

        4-bit weights not yet dequantised serve a small batch (a query, a few texts) from just
        its distinct rows, so a new process answers its first query without building the full
        table; the first larger batch builds it once. Same values either way: each row is
        dequantised by the same formula, and the pooling sums them in the same order.
        """
        if self.weights.materialised or len(flat) > _ROWS_ON_DEMAND:
            return self.weights.embedding, flat
        distinct, positions = np.unique(flat, return_inverse=True)
        return self.weights.rows(distinct), positions.reshape(-1)

    def to_torch(self, device: str | None = None):
        """The model as an :class:`sse_integrations.model.SSE` torch module (for GPU or training)."""
        from .model import SSE

        return SSE.from_weights(self.weights).to(device or "cpu")

    def _embed_ids_torch(self, flat: np.ndarray, lengths: np.ndarray, device: str) -> np.ndarray:
        import torch

        module = self._torch_modules.get(device)
        if module is None:
            module = self._torch_modules.setdefault(device, self.to_torch(device).eval())
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(lengths) else np.zeros(0, dtype=np.int64)
        with torch.inference_mode():
            result = module(
                torch.as_tensor(flat, dtype=torch.long, device=device),
                torch.as_tensor(offsets, dtype=torch.long, device=device),
            )
        return result.float().cpu().numpy()


def encode_documents(
    encoder: SSEEncoder, texts: Sequence[str], truncate_dim: int | None, passages: tuple[PassageCut, int | None] | None
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Un-normalised document vectors at ``truncate_dim`` and, with ``passages`` (cut, width), the passages'
    (vectors, counts) from the same tokenisation: what an index stores, in this process or a helper one."""
    if passages is None:
        return encoder.encode(texts, truncate_dim=truncate_dim, normalize=False, batch_size=max(1, len(texts))), None
    documents, vectors, counts = encoder.encode_with_passages(
        texts, passages[0], truncate_dim=truncate_dim, passage_dim=passages[1], batch_size=max(1, len(texts))
    )
    return documents, (vectors, counts)


def resolve_encoder(encoder: SSEEncoder | None, name_or_path: str | os.PathLike | None) -> SSEEncoder:
    """The shared ``encoder``, or one loaded from ``name_or_path`` (None = the bundled default)."""
    if encoder is None:
        return SSEEncoder.from_pretrained(name_or_path)
    if not isinstance(encoder, SSEEncoder):
        raise TypeError(f"encoder must be an SSEEncoder, got {type(encoder).__name__}")
    if name_or_path is not None and model_reference(name_or_path) != model_reference(encoder.source):
        # Two different models named at once: refuse rather than guess which one embeds.
        raise ValueError(
            f"got both a model ({str(name_or_path)!r}) and an encoder loaded from {encoder.source!r}; pass one"
        )
    return encoder
