"""Which model wrote a collection: a fingerprint in the collection's metadata, checked on open.

Two 512-dim models fit one layout, so the layout check alone let a second model search (wrong
hits) and write (two vector spaces in one collection, issue 31). The record is written when an
index creates the collection; a collection made before it existed carries none and opens as
before.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Generator, Mapping
from typing import Any

import numpy as np

from ..encoder import SSEEncoder
from .layout import CollectionMismatchError

MODEL_METADATA_KEY = "sse_model"

_RECORDS: weakref.WeakKeyDictionary[SSEEncoder, dict[str, Any]] = weakref.WeakKeyDictionary()


class ModelMismatchError(CollectionMismatchError):
    """The collection was written by another model; nothing was read or written."""


def model_record(encoder: SSEEncoder) -> dict[str, Any]:
    """The model's identity: weights checksum, tokenizer checksum, dims, vocabulary and where it came from."""
    cached = _RECORDS.get(encoder)
    if cached is not None:
        return dict(cached)
    tokenizer = hashlib.sha256(encoder.tokenizer.to_str().encode()).hexdigest()
    weights = hashlib.sha256()
    if encoder.weight_files:
        # The files' bytes: the same model moved or copied keeps its checksum, and the 4-bit
        # table is never dequantised just to name it (a query's cold start stays as it was).
        for path in sorted(encoder.weight_files, key=lambda p: p.name):
            weights.update(path.name.encode())
            weights.update(path.read_bytes())
    else:  # built in memory: the tensors themselves
        for tensor in (encoder.weights.embedding, *encoder.weights.dyt):
            array = np.ascontiguousarray(tensor if tensor is not None else np.zeros(0), dtype=np.float32)
            weights.update(repr(array.shape).encode() + array.data.cast("B"))
    record = {
        "weights_sha256": weights.hexdigest(),
        "tokenizer_sha256": tokenizer,
        "dims": encoder.full_dim,
        "vocab_size": encoder.vocab_size,
        "source": str(encoder.source),
    }
    _RECORDS[encoder] = record
    return dict(record)


def check_model(metadata: Mapping[str, Any], encoder: SSEEncoder, collection: str, allow_change: bool) -> bool:
    """Refuse ``encoder`` on a collection another model wrote, unless ``allow_change``; True when the record must be rewritten."""
    stored = metadata.get(MODEL_METADATA_KEY)
    if not isinstance(stored, Mapping):
        return False  # made before the record existed
    current = model_record(encoder)
    keys = ("weights_sha256", "tokenizer_sha256", "dims", "vocab_size")
    differs = [key for key in keys if stored.get(key) != current[key]]
    if not differs:
        return False
    if allow_change:
        return True
    raise ModelMismatchError(
        f"collection {collection!r} was written by the model {stored.get('source')!r} "
        f"(dims {stored.get('dims')}, vocab {stored.get('vocab_size')}), not by {current['source']!r} "
        f"(dims {current['dims']}, vocab {current['vocab_size']}; {', '.join(differs)} differ): open it with that "
        "model, or pass allow_model_change=True (CLI: --allow-model-change) to migrate it deliberately"
    )


def record_model_plan(collection: str, encoder: SSEEncoder) -> Generator[Any, Any, bool]:
    """Record ``encoder`` as the collection's model (a migration's first write); False: nothing left to record."""
    metadata = {MODEL_METADATA_KEY: model_record(encoder)}
    yield ("update_collection", {"collection_name": collection, "metadata": metadata})
    return False
