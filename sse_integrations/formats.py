"""Read and write the on-disk layouts of SSE checkpoints (hub ids resolve in :mod:`.hub`).

Only safetensors and the raw 4-bit file are ever read: nothing is unpickled and no remote
code runs. Layouts (see DESIGN.md):

- ``fp32``: ``model.safetensors`` with ``embedding.weight`` and ``dyt.alpha/beta/bias``.
- ``q4``: ``model_rest.safetensors`` (the ``dyt.*`` tensors) + ``embedding.q4_k_m.bin``.
- ``static``: a sentence-transformers ``StaticEmbedding`` (``embedding.weight`` only; the
  normalisation is the identity).
- any of them inside a sentence-transformers folder whose ``modules.json`` names the module
  folder (``""`` for the root).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

TOKENIZER_FILE = "tokenizer.json"
FP32_FILE = "model.safetensors"
Q4_REST_FILE = "model_rest.safetensors"
Q4_EMBEDDING_FILE = "embedding.q4_k_m.bin"
MODULES_FILE = "modules.json"
# Written by save_pretrained next to the weights: {"sha256": {file name: hex digest}}.
CHECKSUM_FILE = "sse_checksums.json"

EMBEDDING_TENSOR = "embedding.weight"
DYT_TENSORS = ("dyt.alpha", "dyt.beta", "dyt.bias")

LAYOUTS_TRIED = (
    f"fp32 ({FP32_FILE} with {EMBEDDING_TENSOR} and dyt.*)",
    f"q4 ({Q4_REST_FILE} + {Q4_EMBEDDING_FILE})",
    f"sentence-transformers StaticEmbedding ({FP32_FILE} with {EMBEDDING_TENSOR} only)",
    f"any of these in the module folder named by {MODULES_FILE}",
)

# Q4 file: 4-bit codes, two per byte, then one float32 scale per row.
Q4_LEVELS = 7.5  # codes 0..15 map to [-1, 1] as q / 7.5 - 1
Q4_SCALE_EPS = 1e-8


class ModelFormatError(ValueError):
    """A model folder that is missing files or whose files disagree with each other."""


class SSEWeights:
    """The tensors of an SSE model as float32 numpy arrays.

    ``alpha``, ``beta`` and ``bias`` are None for a plain StaticEmbedding model, whose
    normalisation is the identity. Weights read from the 4-bit layout (:meth:`from_q4`) keep
    the packed codes and dequantise rows on use: :meth:`rows` gives just the rows asked for,
    and the full ``embedding`` table is built on first access (once, thread-safe), so a
    process that embeds a few queries never pays for, nor holds, the 64 MB float32 table.
    """

    def __init__(
        self,
        embedding: np.ndarray | None,
        alpha: np.ndarray | None = None,
        beta: np.ndarray | None = None,
        bias: np.ndarray | None = None,
        *,
        packed_q4: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        if (embedding is None) == (packed_q4 is None):
            raise ValueError("pass the embedding table or its packed 4-bit rows (packed_q4), exactly one")
        self._embedding = embedding
        self._q4 = packed_q4
        self._materialising = threading.Lock()
        self.alpha, self.beta, self.bias = alpha, beta, bias
        if len(self.shape) != 2:
            raise ModelFormatError(f"{EMBEDDING_TENSOR} must be 2-D, got shape {self.shape}")
        present = [name for name, value in zip(DYT_TENSORS, self.dyt) if value is not None]
        if present and len(present) != 3:
            raise ModelFormatError(f"DyT needs all of {', '.join(DYT_TENSORS)}; only {present} given")
        for name, value in zip(DYT_TENSORS, self.dyt):
            if value is not None and value.shape != (self.dim,):
                raise ModelFormatError(
                    f"{name} has shape {tuple(value.shape)}, expected ({self.dim},) to match {EMBEDDING_TENSOR}"
                )

    def __getstate__(self) -> dict[str, Any]:
        # Pickles (e.g. to a helper process) as 4-bit codes when it has them: the receiver
        # dequantises every row by the same formula, to the same bits, and 8 MB travel, not 64.
        state = dict(self.__dict__)
        del state["_materialising"]
        if state["_q4"] is not None:
            state["_embedding"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._materialising = threading.Lock()

    @classmethod
    def from_q4(
        cls, packed: np.ndarray, scales: np.ndarray, alpha: np.ndarray, beta: np.ndarray, bias: np.ndarray
    ) -> SSEWeights:
        """Weights over packed 4-bit rows (vocab, dim // 2) and their float32 scales (vocab,)."""
        return cls(None, alpha, beta, bias, packed_q4=(packed, scales))

    @property
    def shape(self) -> tuple[int, ...]:
        """(vocab, dim), read from the table or the packed rows without dequantising them."""
        if self._embedding is not None:
            return tuple(self._embedding.shape)
        assert self._q4 is not None
        packed = self._q4[0]
        return (packed.shape[0], packed.shape[1] * 2)

    @property
    def embedding(self) -> np.ndarray:
        """The (vocab, dim) float32 table."""
        if self._embedding is None:
            with self._materialising:
                if self._embedding is None and self._q4 is not None:
                    self._embedding = dequantize_q4(*self._q4)
        assert self._embedding is not None
        return self._embedding

    @property
    def materialised(self) -> bool:
        """Whether the full float32 table exists (always, except 4-bit weights not yet used in bulk)."""
        return self._embedding is not None

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """Embedding rows ``ids``, float32, equal to ``embedding[ids]`` bit for bit."""
        if self._embedding is not None or self._q4 is None:
            return self.embedding.take(ids, axis=0)
        packed, scales = self._q4
        return dequantize_q4(packed.take(ids, axis=0), scales.take(ids))

    @property
    def dyt(self) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        return self.alpha, self.beta, self.bias

    @property
    def has_dyt(self) -> bool:
        return self.alpha is not None

    @property
    def vocab_size(self) -> int:
        return int(self.shape[0])

    @property
    def dim(self) -> int:
        return int(self.shape[1])


@dataclass(frozen=True)
class LoadedModel:
    """What a model folder holds: weights, the tokenizer, and where they came from."""

    weights: SSEWeights
    tokenizer: Any  # tokenizers.Tokenizer
    tokenizer_path: Path
    layout: str  # "fp32", "q4" or "static"
    module_dir: Path
    weight_files: tuple[Path, ...]


# --- 4-bit codec -------------------------------------------------------------------------


def quantize_q4(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quantise rows to 4-bit codes with one absmax scale per row.

    Returns (packed uint8 of shape (vocab, dim // 2), scales float32 of shape (vocab,)).
    The high nibble holds the even column, the low nibble the odd one.
    """
    weights = np.asarray(embedding, dtype=np.float32)
    if weights.ndim != 2 or weights.shape[1] % 2:
        raise ValueError(f"q4 needs a 2-D embedding with an even width, got shape {weights.shape}")
    scales = (np.abs(weights).max(axis=1) + np.float32(Q4_SCALE_EPS)).astype(np.float32)
    codes = np.clip(np.round((weights / scales[:, None] + 1) * np.float32(Q4_LEVELS)), 0, 15).astype(np.uint8)
    packed = (codes[:, 0::2] << 4) | codes[:, 1::2]
    return packed, scales


def dequantize_q4(packed: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quantize_q4`: ``w = (q / 7.5 - 1) * scale[row]`` in float32."""
    vocab, half = packed.shape
    codes = np.empty((vocab, half * 2), dtype=np.float32)
    codes[:, 0::2] = packed >> 4
    codes[:, 1::2] = packed & 0x0F
    codes /= np.float32(Q4_LEVELS)
    codes -= np.float32(1.0)
    codes *= scales.astype(np.float32)[:, None]
    return codes


def q4_bytes_per_row(dim: int) -> int:
    return dim // 2 + 4


def read_q4_packed(
    path: Path, dim: int, expected_vocab: int | None = None, content: bytearray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``embedding.q4_k_m.bin`` as (packed codes, scales); vocab comes from the file size, then is checked.

    ``content``: the file's bytes when the caller has already read them.
    """
    size = path.stat().st_size if content is None else len(content)
    per_row = q4_bytes_per_row(dim)
    if expected_vocab is not None and size != expected_vocab * per_row:
        raise ModelFormatError(
            f"{path} has {size} bytes, expected {expected_vocab * per_row} "
            f"({expected_vocab} rows x {per_row} bytes for dim {dim}): the file is "
            f"{'truncated' if size < expected_vocab * per_row else 'oversized'} or belongs to another model"
        )
    if size == 0 or size % per_row:
        raise ModelFormatError(
            f"{path} has {size} bytes, not a multiple of {per_row} bytes per row (dim {dim}): "
            "the file is truncated or belongs to another model"
        )
    vocab = size // per_row
    raw = np.fromfile(path, dtype=np.uint8) if content is None else np.frombuffer(content, dtype=np.uint8)
    return raw[: vocab * dim // 2].reshape(vocab, dim // 2), raw[vocab * dim // 2 :].view("<f4")


def write_q4_embedding(path: Path, embedding: np.ndarray) -> None:
    packed, scales = quantize_q4(embedding)
    with open(path, "wb") as handle:
        handle.write(np.ascontiguousarray(packed).tobytes())
        handle.write(scales.astype("<f4").tobytes())


# --- checksums ---------------------------------------------------------------------------


def read_bytes(path: Path) -> bytearray:
    """The whole file in one writable buffer (the read releases the GIL)."""
    with open(path, "rb") as handle:
        content = bytearray(os.fstat(handle.fileno()).st_size)
        handle.readinto(content)
    return content


def sha256_of(path: Path, content: bytes | bytearray | None = None) -> str:
    """sha256 of ``path``, or of ``content`` when the file has already been read."""
    if content is not None:
        # One update over the whole buffer releases the GIL for all of it.
        return hashlib.sha256(content).hexdigest()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checksums(folder: Path, files: list[Path]) -> Path:
    """Record the sha256 of ``files`` (by name) in ``folder/sse_checksums.json``."""
    path = Path(folder) / CHECKSUM_FILE
    record = {"sha256": {file.name: sha256_of(file) for file in files}}
    path.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def verify_checksums(folder: Path, files: tuple[Path, ...], contents: dict[Path, bytearray] | None = None) -> None:
    """Check ``files`` against ``folder/sse_checksums.json`` when it exists and lists them.

    A folder without the record (a published checkpoint, an older save) loads unchecked.
    ``contents``: bytes of some of the files, already read (hashed instead of reading them again).
    """
    path = Path(folder) / CHECKSUM_FILE
    if not path.is_file():
        return
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))["sha256"]
        if not isinstance(recorded, dict):
            raise TypeError("'sha256' is not an object")
    except (ValueError, KeyError, TypeError) as error:
        raise ModelFormatError(
            f"{path} is not a checksum record ({error}); delete it or save the model again"
        ) from None
    for file in files:
        expected = recorded.get(file.name)
        if expected is not None and sha256_of(file, (contents or {}).get(file)) != expected:
            raise ModelFormatError(
                f"{file} does not match the sha256 recorded in {path.name}: the file is corrupt or was "
                "replaced without save_pretrained(); restore it or save the model again"
            )


# --- folders -----------------------------------------------------------------------------


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
    except Exception as error:  # safetensors raises its own error types, and OSError, for bad files
        raise ModelFormatError(f"{path} is not a readable safetensors file (truncated or corrupt?): {error}") from None
    return {name: np.asarray(array, dtype=np.float32) for name, array in tensors.items()}


def _read_and_verify(module_dir: Path, files: tuple[Path, ...], read_first: bool) -> dict[Path, bytearray]:
    """Verify ``files`` against the checksum record; with ``read_first``, the first file's bytes are kept."""
    contents = {files[0]: read_bytes(files[0])} if read_first else {}
    verify_checksums(module_dir, files, contents)
    return contents


class _OnThread:
    """``function(*args)`` running on a daemon thread; :meth:`result` waits and returns or re-raises.

    A plain thread, not concurrent.futures: that import alone costs a cold start ~15 ms.
    """

    def __init__(self, function: Any, *args: Any) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(function, args), daemon=True, name="sse-read-weights")
        self._thread.start()

    def _run(self, function: Any, args: tuple[Any, ...]) -> None:
        try:
            self._value = function(*args)
        except BaseException as error:  # handed to the caller of result()
            self._error = error

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _read_tokenizer(path: Path) -> Any:
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # tokenizers reports a bad file as a bare Exception
        raise ModelFormatError(f"{path} is not a readable tokenizer (truncated or corrupt?): {error}") from None


def _module_dir(root: Path) -> Path:
    """The folder holding the weights: the root, or the module named in modules.json."""
    modules_path = root / MODULES_FILE
    if not modules_path.is_file():
        return root
    try:
        modules = json.loads(modules_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ModelFormatError(f"{modules_path} is not valid JSON: {error}") from error
    if not isinstance(modules, list):
        raise ModelFormatError(f"{modules_path} must hold a list of modules")
    weight_names = (FP32_FILE, Q4_REST_FILE, Q4_EMBEDDING_FILE)
    for module in modules:
        candidate = root / str(module.get("path", ""))
        if any((candidate / name).is_file() for name in weight_names):
            return candidate
    return root


def _find_tokenizer(module_dir: Path, root: Path) -> Path:
    for folder in (module_dir, root):
        if (folder / TOKENIZER_FILE).is_file():
            return folder / TOKENIZER_FILE
    raise ModelFormatError(
        f"{TOKENIZER_FILE} not found in {module_dir}" + ("" if module_dir == root else f" or {root}")
    )


def _missing(root: Path, detail: str) -> ModelFormatError:
    return ModelFormatError(f"No SSE model in {root}: {detail}. Layouts tried: " + "; ".join(LAYOUTS_TRIED))


def read_model_folder(root: Path) -> LoadedModel:
    """Read the tokenizer and whichever weight layout ``root`` holds."""
    root = Path(root)
    if not root.is_dir():
        raise _missing(root, "the folder does not exist")
    module_dir = _module_dir(root)
    has_weights = any((module_dir / name).is_file() for name in (FP32_FILE, Q4_REST_FILE, Q4_EMBEDDING_FILE))
    if not has_weights:
        raise _missing(root, f"neither {FP32_FILE} nor {Q4_EMBEDDING_FILE} found in {module_dir}")
    tokenizer_path = _find_tokenizer(module_dir, root)
    rest_path, q4_path, fp32_path = (module_dir / Q4_REST_FILE, module_dir / Q4_EMBEDDING_FILE, module_dir / FP32_FILE)
    q4_layout = q4_path.is_file() or rest_path.is_file()
    if q4_layout:
        for needed in (rest_path, q4_path):
            if not needed.is_file():
                raise _missing(
                    root, f"{needed.name} is missing beside {(q4_path if needed is rest_path else rest_path).name}"
                )
    # Building the tokenizer holds the GIL for ~0.1 s without ever dropping it, while reading a
    # file releases it: the weights are read on a thread meanwhile (~20 ms off a cold start),
    # and hashed from that one buffer instead of being read twice.
    weights_read = _OnThread(
        _read_and_verify, module_dir, (q4_path, rest_path) if q4_layout else (fp32_path,), q4_layout
    )
    tokenizer = _read_tokenizer(tokenizer_path)
    contents = weights_read.result()
    # The q4 file carries no shape: its size must match the tokenizer's vocabulary exactly.
    tokenizer_vocab_size = tokenizer.get_vocab_size(with_added_tokens=True)

    if q4_layout:
        rest = _read_safetensors(rest_path)
        missing = [name for name in DYT_TENSORS if name not in rest]
        if missing:
            raise ModelFormatError(f"{rest_path} lacks tensors {missing}; found {sorted(rest)}")
        dim = int(rest["dyt.alpha"].shape[0])
        packed, scales = read_q4_packed(q4_path, dim, tokenizer_vocab_size, contents.get(q4_path))
        weights = SSEWeights.from_q4(packed, scales, *(rest[name] for name in DYT_TENSORS))
        return LoadedModel(weights, tokenizer, tokenizer_path, "q4", module_dir, (q4_path, rest_path))

    tensors = _read_safetensors(fp32_path)
    if EMBEDDING_TENSOR not in tensors:
        raise ModelFormatError(f"{fp32_path} lacks tensor {EMBEDDING_TENSOR}; found {sorted(tensors)}")
    dyt = [tensors.get(name) for name in DYT_TENSORS]
    layout = "fp32" if dyt[0] is not None else "static"
    weights = SSEWeights(tensors[EMBEDDING_TENSOR], *dyt)
    return LoadedModel(weights, tokenizer, tokenizer_path, layout, module_dir, (fp32_path,))


def write_model_folder(
    folder: Path, weights: SSEWeights, tokenizer_json: str, quantize: str | None = None
) -> list[Path]:
    """Write ``weights`` in the published layout (q4 or fp32, StaticEmbedding if no DyT).

    The other layout's weight files are removed (the loader would otherwise pick the stale
    one), and the sha256 of the weights is recorded in ``sse_checksums.json`` for the loader.
    """
    from safetensors.numpy import save

    if quantize not in (None, "q4"):
        raise ValueError(f"quantize must be None or 'q4', got {quantize!r}")
    if quantize == "q4" and not weights.has_dyt:
        raise ValueError("the q4 layout stores dyt.* in model_rest.safetensors; a StaticEmbedding model has none")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TOKENIZER_FILE).write_text(tokenizer_json, encoding="utf-8")
    dyt = {
        name: np.ascontiguousarray(value, dtype=np.float32)
        for name, value in zip(DYT_TENSORS, weights.dyt)
        if value is not None
    }
    if quantize == "q4":
        stale, written = [FP32_FILE], [folder / Q4_REST_FILE, folder / Q4_EMBEDDING_FILE]
        # safetensors' save_file creates 0600 files; open() honours the umask like every other file.
        written[0].write_bytes(save(dyt))
        write_q4_embedding(written[1], weights.embedding)
    else:
        stale, written = [Q4_REST_FILE, Q4_EMBEDDING_FILE], [folder / FP32_FILE]
        written[0].write_bytes(
            save({EMBEDDING_TENSOR: np.ascontiguousarray(weights.embedding, dtype=np.float32), **dyt})
        )
    for name in stale:
        (folder / name).unlink(missing_ok=True)
    write_checksums(folder, written)
    return [folder / TOKENIZER_FILE, *written]
