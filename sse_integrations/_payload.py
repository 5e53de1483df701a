"""The payload convention shared by every reader and writer of a Matryoshka collection.

One point per document (a LangChain ``Document``, a LlamaIndex node, a line of a JSONL file):

- ``index.text_key`` (``"text"``): the text, written by ``MatryoshkaIndex.add_texts``;
- ``index.id_key`` (``"doc_id"``): the caller's document id (LangChain ``Document.id``,
  LlamaIndex ``node_id``), also written by the index;
- every other top-level key is metadata, so one Qdrant filter on ``"topic"`` selects the same
  points for the index, both vector stores and both retrievers;
- two more reserved keys carry what a LlamaIndex node has beyond text and metadata:
  :data:`REF_DOC_KEY` (the source document, for deletion by ``ref_doc_id``) and
  :data:`NODE_KEY` (relationships, excluded keys, templates). Readers that do not know
  them leave them out of the metadata.

Nothing here imports a framework or Qdrant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

NODE_KEY = "_node"
REF_DOC_KEY = "ref_doc_id"
FRAMEWORK_KEYS = (NODE_KEY, REF_DOC_KEY)


class PayloadKeys(Protocol):
    """The payload keys of an index (``MatryoshkaIndex`` and ``AsyncMatryoshkaIndex`` have them)."""

    @property
    def text_key(self) -> str: ...
    @property
    def id_key(self) -> str: ...


class PointLike(Protocol):
    """A Qdrant ``ScoredPoint`` or ``Record``: the parts read here."""

    @property
    def id(self) -> int | str: ...
    @property
    def payload(self) -> Mapping[str, Any] | None: ...
    @property
    def vector(self) -> object: ...


def reserved_keys(index: PayloadKeys) -> tuple[str, ...]:
    """Payload keys that are not metadata for ``index``."""
    return (index.text_key, index.id_key, *FRAMEWORK_KEYS)


def check_metadata(index: PayloadKeys, metadatas: Sequence[Mapping[str, Any] | None]) -> None:
    """Refuse metadata that would overwrite a reserved payload key (the text, the id, ...)."""
    reserved = reserved_keys(index)
    for position, metadata in enumerate(metadatas):
        clash = sorted(key for key in (metadata or {}) if key in reserved)
        if clash:
            raise ValueError(
                f"metadata of document {position} uses the reserved payload key(s) {clash}: "
                f"rename them (the collection keeps the text, the id and node data under {list(reserved)})"
            )


@dataclass(frozen=True)
class StoredPoint:
    """A point read back: the caller's id, the text, the metadata and, for LlamaIndex, the node data."""

    id: str
    text: str
    metadata: dict[str, Any]
    score: float | None = None
    ref_doc_id: str | None = None
    node: dict[str, Any] | None = None
    vector: Any = field(default=None, repr=False)


def read_point(index: PayloadKeys, point: PointLike) -> StoredPoint:
    """A ``ScoredPoint`` or ``Record`` split by the convention above."""
    metadata = dict(point.payload or {})
    text = metadata.pop(index.text_key, "")
    doc_id = metadata.pop(index.id_key, point.id)
    ref_doc_id = metadata.pop(REF_DOC_KEY, None)
    node = metadata.pop(NODE_KEY, None)
    return StoredPoint(
        id=str(doc_id),
        text=text,
        metadata=metadata,
        score=getattr(point, "score", None),
        ref_doc_id=None if ref_doc_id is None else str(ref_doc_id),
        node=node if isinstance(node, dict) else None,
        vector=point.vector,
    )
