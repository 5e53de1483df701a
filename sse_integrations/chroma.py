"""Chroma embedding function for SSE models, registered so persisted collections reopen by themselves.

Chroma stores ``name()`` and ``get_config()`` of a collection's embedding function and, when
the collection is opened again without one, rebuilds it through the registry that
``register_embedding_function`` fills. Importing this module registers
:class:`SSEEmbeddingFunction` under the name ``"sse"``, so in a new process::

    import chromadb
    import sse_integrations.chroma  # registers "sse"

    collection = chromadb.PersistentClient(path).get_collection("docs")
    collection.query(query_texts=["..."])  # embedded with the collection's own SSE model

The config names the model by something JSON-safe (a local folder as an absolute path, a
hub id with its revision, or None for the bundled default model) and carries a fingerprint
of the weights and tokenizer: a model folder may move (same fingerprint, accepted), but a
collection rebuilt from its config never embeds with a different model or width.
Chroma itself compares only the function's name when a collection is opened with an explicit
function, and stores a modified config before validating it; :func:`get_or_create_collection`
and :func:`update_embedding_function` check the stored config first.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

try:
    from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
    from chromadb.utils.embedding_functions import register_embedding_function
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError('sse_integrations.chroma needs chromadb: pip install "sse-integrations[chroma]"') from error

from ._checks import check_positive_int
from .encoder import DEFAULT_BATCH_SIZE, SSEEncoder, model_reference
from .matryoshka import validate_dim

__all__ = [
    "CONFIG_KEYS",
    "SSEEmbeddingFunction",
    "get_or_create_collection",
    "model_fingerprint",
    "update_embedding_function",
]

#: Keys of :meth:`SSEEmbeddingFunction.get_config`, all JSON scalars.
CONFIG_KEYS = ("model_name_or_path", "revision", "truncate_dim", "normalize", "batch_size", "model_fingerprint")

# Chroma rebuilds the function from its config many times (every is_legacy() check calls
# build_from_config), so loaded models are shared per (model, revision), as Chroma's own
# SentenceTransformerEmbeddingFunction shares its models per name.
_ENCODERS: dict[tuple[str | None, str | None], SSEEncoder] = {}
_ENCODERS_LOCK = threading.Lock()
_FINGERPRINTS: weakref.WeakKeyDictionary[SSEEncoder, str] = weakref.WeakKeyDictionary()


def model_fingerprint(encoder: SSEEncoder) -> str:
    """SHA-256 over the tokenizer and every weight tensor: equal iff the encoder computes the same vectors."""
    cached = _FINGERPRINTS.get(encoder)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    digest.update(encoder.tokenizer.to_str().encode())
    for tensor in (encoder.weights.embedding, *encoder.weights.dyt):
        if tensor is None:
            digest.update(b"none")
            continue
        array = np.ascontiguousarray(tensor, dtype=np.float32)
        digest.update(repr(array.shape).encode())
        digest.update(array.data.cast("B"))
    value = digest.hexdigest()
    _FINGERPRINTS[encoder] = value
    return value


def _hub_revision(encoder: SSEEncoder) -> str | None:
    """The commit a hub-loaded encoder came from, read off its cache path (``snapshots/<commit>/``)."""
    for file in encoder.weight_files:
        parts = Path(file).parts
        if "snapshots" in parts[:-1]:
            return parts[parts.index("snapshots") + 1]
    return None


def _load_encoder(model: str | None, revision: str | None) -> SSEEncoder:
    key = (model, revision)
    with _ENCODERS_LOCK:
        encoder = _ENCODERS.get(key)
        if encoder is None:
            encoder = _ENCODERS[key] = SSEEncoder.from_pretrained(model, revision=revision)
        return encoder


class SSEEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma embedding function backed by an SSE model; ``name()`` is ``"sse"``.

    Args:
        model_name_or_path: model folder, hub id, an already loaded :class:`SSEEncoder`, or None
            for the bundled default model.
        truncate_dim: Matryoshka prefix to store (32, 64, ...); None keeps the encoder's default width.
        normalize: L2-normalise after truncation (cosine, dot product and L2 then rank alike).
        batch_size: texts tokenised per step.
        revision: hub branch, tag or commit to pin (hub ids only).
        encoder: an already loaded :class:`SSEEncoder` to share (instead of ``model_name_or_path``).
            It must have been loaded from a folder or hub id (``encoder.source``) so that the
            collection's config can rebuild it.
    """

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | SSEEncoder | None = None,
        truncate_dim: int | None = None,
        normalize: bool = True,
        batch_size: int = DEFAULT_BATCH_SIZE,
        *,
        revision: str | None = None,
        encoder: SSEEncoder | None = None,
    ) -> None:
        if isinstance(model_name_or_path, SSEEncoder):
            if encoder is not None:
                raise ValueError("pass the model either as model_name_or_path or as encoder=, not both")
            model_name_or_path, encoder = None, model_name_or_path
        elif encoder is not None and model_name_or_path is not None:
            raise ValueError("pass the model either as model_name_or_path or as encoder=, not both")
        if not isinstance(normalize, bool):
            raise TypeError(f"normalize must be a bool, got {type(normalize).__name__}")
        check_positive_int(batch_size, "batch_size")

        if encoder is not None:
            self.encoder = encoder
            self.model_name_or_path = model_reference(encoder.source)
            self.revision = revision if revision is not None else _hub_revision(encoder)
        else:
            self.model_name_or_path = model_reference(model_name_or_path)
            self.revision = revision
            self.encoder = _load_encoder(self.model_name_or_path, revision)
        self.truncate_dim = (
            validate_dim(truncate_dim, self.encoder.full_dim) if truncate_dim is not None else self.encoder.dim
        )
        self.normalize = normalize
        self.batch_size = int(batch_size)
        if encoder is not None and encoder.source is not None:
            # Let Chroma's rebuilds from this config reuse the caller's model instead of loading a copy.
            with _ENCODERS_LOCK:
                _ENCODERS.setdefault((self.model_name_or_path, self.revision), encoder)

    # --- embedding ------------------------------------------------------------------------

    def __call__(self, input: Documents) -> Embeddings:
        """Embed documents: one float32 vector of width ``truncate_dim`` per string.

        Raises:
            TypeError: ``input`` is a bare string or holds a non-string (named by its index).
            ValueError: ``input`` is empty; Chroma rejects an empty list of embeddings.
        """
        if not isinstance(input, (str, bytes)) and hasattr(input, "__len__") and len(input) == 0:
            raise ValueError(
                "SSEEmbeddingFunction got an empty batch: Chroma requires at least one document per "
                "call (it rejects an empty list of embeddings)"
            )
        vectors = self.encoder.encode(
            input, truncate_dim=self.truncate_dim, normalize=self.normalize, batch_size=self.batch_size
        )
        return list(vectors)

    def embed_query(self, input: Documents) -> Embeddings:
        """Embed queries; SSE is symmetric, so queries and documents share one encoder."""
        return self(input)

    # --- Chroma contract ------------------------------------------------------------------

    @staticmethod
    def name() -> str:
        return "sse"

    def default_space(self) -> Space:
        # SSE is trained with a cosine objective.
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        # On unit vectors inner product and L2 rank exactly as cosine does; without
        # normalisation the norm would leak into them.
        return ["cosine", "ip", "l2"] if self.normalize else ["cosine", "l2"]

    def get_config(self) -> dict[str, Any]:
        """JSON-safe settings from which :meth:`build_from_config` rebuilds this function."""
        if self.encoder.source is None:
            raise ValueError(
                "this SSEEncoder was built in memory (encoder.source is None), so a Chroma collection "
                "could not rebuild it; save it with encoder.save_pretrained(folder) and load it from there"
            )
        return {
            "model_name_or_path": self.model_name_or_path,
            "revision": self.revision,
            "truncate_dim": self.truncate_dim,
            "normalize": self.normalize,
            "batch_size": self.batch_size,
            "model_fingerprint": model_fingerprint(self.encoder),
        }

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> SSEEmbeddingFunction:
        """Rebuild from :meth:`get_config`; refuses a model whose weights differ from the fingerprint."""
        SSEEmbeddingFunction.validate_config(config)
        function = SSEEmbeddingFunction(
            config.get("model_name_or_path"),
            truncate_dim=config["truncate_dim"],
            normalize=config.get("normalize", True),
            batch_size=config.get("batch_size", DEFAULT_BATCH_SIZE),
            revision=config.get("revision"),
        )
        expected = config.get("model_fingerprint")
        if expected is not None and model_fingerprint(function.encoder) != expected:
            raise ValueError(
                f"the SSE model at {function.encoder.source!r} is not the model this collection was "
                "embedded with (its weights or tokenizer differ from the stored fingerprint); restore "
                "that model, or re-embed the documents into a new collection"
            )
        return function

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        """Check keys and value types of a config (unknown keys are refused, as typos would be silent)."""
        if not isinstance(config, dict):
            raise ValueError(f"an sse config must be a dict, got {type(config).__name__}")
        unknown = sorted(set(config) - set(CONFIG_KEYS))
        if unknown:
            raise ValueError(f"unknown sse config keys {unknown}; allowed: {list(CONFIG_KEYS)}")
        if "truncate_dim" not in config:
            raise ValueError("an sse config needs truncate_dim (the width of the stored vectors)")
        check_positive_int(config["truncate_dim"], "truncate_dim")
        if "batch_size" in config:
            check_positive_int(config["batch_size"], "batch_size")
        if not isinstance(config.get("normalize", True), bool):
            raise ValueError(f"normalize must be a bool, got {config['normalize']!r}")
        for key in ("model_name_or_path", "revision", "model_fingerprint"):
            if not isinstance(config.get(key), (str, type(None))):
                raise ValueError(f"{key} must be a string or null, got {config[key]!r}")

    def validate_config_update(self, old_config: dict[str, Any], new_config: dict[str, Any]) -> None:
        """Refuse a change of model, width or normalisation on an existing collection.

        Its stored vectors were made with the old settings; new ones would not be comparable.
        A moved model folder is accepted when the fingerprints match; ``batch_size`` may change.
        """
        self.validate_config(new_config)
        old_dim, new_dim = old_config.get("truncate_dim"), new_config.get("truncate_dim")
        if old_dim != new_dim:
            raise ValueError(
                f"cannot change truncate_dim of an existing collection from {old_dim} to {new_dim}: its "
                f"stored vectors are {old_dim}-dim; create a new collection for {new_dim}-dim vectors"
            )
        if old_config.get("normalize", True) != new_config.get("normalize", True):
            raise ValueError(
                f"cannot change normalize of an existing collection from {old_config.get('normalize')} to "
                f"{new_config.get('normalize')}: stored and new vectors would not be comparable"
            )
        old_print, new_print = old_config.get("model_fingerprint"), new_config.get("model_fingerprint")
        if old_print is not None and new_print is not None:
            same_model = old_print == new_print
        else:
            same_model = (old_config.get("model_name_or_path"), old_config.get("revision")) == (
                new_config.get("model_name_or_path"),
                new_config.get("revision"),
            )
        if not same_model:
            raise ValueError(
                "cannot change the SSE model of an existing collection (from "
                f"{old_config.get('model_name_or_path') or 'the bundled model'!r} to "
                f"{new_config.get('model_name_or_path') or 'the bundled model'!r}, different weights): its "
                "stored vectors came from the old model; re-embed the documents into a new collection"
            )

    def __repr__(self) -> str:
        return (
            f"SSEEmbeddingFunction(model_name_or_path={self.model_name_or_path!r}, revision={self.revision!r}, "
            f"truncate_dim={self.truncate_dim}, normalize={self.normalize}, batch_size={self.batch_size})"
        )


register_embedding_function(SSEEmbeddingFunction)


def _check_stored_config(collection: Any, embedding_function: SSEEmbeddingFunction) -> None:
    """Raise unless ``embedding_function`` may write to and query ``collection`` as it is stored."""
    stored = collection.configuration_json.get("embedding_function") or {}
    if stored.get("type") != "known":
        return
    if stored.get("name") != embedding_function.name():
        raise ValueError(
            f"collection {collection.name!r} was embedded with {stored.get('name')!r}, not "
            f"{embedding_function.name()!r}; re-embed the documents into a new collection"
        )
    embedding_function.validate_config_update(stored.get("config") or {}, embedding_function.get_config())


def get_or_create_collection(client: Any, name: str, embedding_function: SSEEmbeddingFunction, **kwargs: Any) -> Any:
    """``client.get_or_create_collection`` that refuses an existing collection of another SSE model or width.

    Chroma compares only the function's name with the stored one, so opening a collection with
    an explicit function of another model or width would otherwise go unnoticed (until a
    dimension error, or never when the widths agree). ``kwargs`` go to Chroma unchanged.
    """
    collection = client.get_or_create_collection(name, embedding_function=embedding_function, **kwargs)
    _check_stored_config(collection, embedding_function)
    return collection


def update_embedding_function(collection: Any, embedding_function: SSEEmbeddingFunction) -> None:
    """Persist a new SSE config on ``collection`` (e.g. another ``batch_size``), validating it first.

    ``collection.modify(configuration={"embedding_function": ...})`` in chromadb 1.5 stores the
    new config and only then runs ``validate_config_update``: a refused change (another model
    or width) raises, but is already persisted. This checks before writing.
    """
    _check_stored_config(collection, embedding_function)
    collection.modify(configuration={"embedding_function": embedding_function})
