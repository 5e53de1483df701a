"""LlamaIndex nodes to and from points: what the payload convention keeps of a node."""

from __future__ import annotations

from typing import Any

try:
    from llama_index.core.schema import BaseNode, Document, ImageNode, IndexNode, TextNode
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.llama_index needs llama-index-core: pip install "sse-integrations[llamaindex]"'
    ) from error

from .._payload import NODE_KEY, REF_DOC_KEY, StoredPoint

__all__ = ["node_from_stored", "node_from_point", "node_payload"]

# Left out of the node data: the payload keeps them (text, metadata) or nothing needs them (the embedding).
_NOT_NODE_DATA = {"embedding", "metadata", "text", "text_resource", "id_"}


def node_payload(node: BaseNode) -> dict[str, Any]:
    """The payload of ``node`` besides the text and id, which the index writes."""
    data = node.model_dump(mode="json", exclude=_NOT_NODE_DATA)
    payload: dict[str, Any] = {**node.metadata, NODE_KEY: {"type": node.class_name(), **data}}
    if node.ref_doc_id is not None:
        payload[REF_DOC_KEY] = node.ref_doc_id
    return payload


_NODE_CLASSES = {cls.class_name(): cls for cls in (TextNode, Document, ImageNode, IndexNode)}


def node_from_stored(node_id: str, text: str, metadata: dict[str, Any], node_data: dict[str, Any] | None) -> BaseNode:
    """A node rebuilt from a point: text, id and metadata, plus relationships etc. when the store wrote them."""
    if node_data is None:
        return TextNode(id_=node_id, text=text, metadata=metadata)
    data = dict(node_data)
    node_class = _NODE_CLASSES.get(data.pop("type", ""), TextNode)
    node = node_class.model_validate({**data, "id_": node_id, "metadata": metadata})
    node.set_content(text)
    return node


def node_from_point(point: StoredPoint) -> BaseNode:
    """The node a stored point holds."""
    return node_from_stored(point.id, point.text, point.metadata, point.node)
