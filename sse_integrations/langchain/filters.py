"""LangChain's dict filters as Qdrant filters: :func:`dict_filter_to_qdrant`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

try:
    from qdrant_client import models
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'dict_filter_to_qdrant needs qdrant-client: pip install "sse-integrations[langchain,qdrant]"'
    ) from error

__all__ = ["dict_filter_to_qdrant"]

_RANGES = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


def dict_filter_to_qdrant(filter: Mapping[str, Any] | models.Filter | None) -> models.Filter | None:
    """LangChain's dict filter as a Qdrant filter over the metadata (top-level payload keys).

    ``{"topic": "food"}`` is equality; a value may be an operator dict (``$eq``, ``$ne``,
    ``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$in``, ``$nin``); ``$and``/``$or`` take lists of
    filters, ``$not`` one filter; several keys must all match. A ``models.Filter`` passes through.
    """
    if filter is None or isinstance(filter, models.Filter):
        return filter
    if not isinstance(filter, Mapping):
        raise TypeError(f"filter must be a dict or a qdrant_client.models.Filter, got {type(filter).__name__}")
    conditions: list[Any] = []
    for key, value in filter.items():
        if key in ("$and", "$or"):
            parts = [dict_filter_to_qdrant(part) for part in _as_list(key, value)]
            conditions.append(models.Filter(must=parts) if key == "$and" else models.Filter(should=parts))
        elif key == "$not":
            conditions.append(models.Filter(must_not=[dict_filter_to_qdrant(value)]))
        elif key.startswith("$"):
            raise ValueError(f"unknown filter operator {key!r} (use $and, $or, $not at the top)")
        elif isinstance(value, Mapping):
            conditions.extend(_operator_condition(key, operator, operand) for operator, operand in value.items())
        else:
            conditions.append(_match(key, value))
    return models.Filter(must=conditions)


def _as_list(key: str, value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{key} takes a list of filters, got {value!r}")
    return value


def _match(key: str, value: Any) -> Any:
    if isinstance(value, float):
        # MatchValue takes str/int/bool only; a float equality is the one-point range.
        return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def _operator_condition(key: str, operator: str, operand: Any) -> Any:
    if operator == "$eq":
        return _match(key, operand)
    if operator == "$ne":
        return models.Filter(must_not=[_match(key, operand)])
    if operator in _RANGES:
        if isinstance(operand, bool) or not isinstance(operand, (int, float)):
            raise ValueError(f"filter {key!r} {operator} needs a number, got {operand!r}")
        return models.FieldCondition(key=key, range=models.Range(**{_RANGES[operator]: operand}))
    if operator in ("$in", "$nin"):
        options = [_match(key, option) for option in _as_list(f"{key!r} {operator}", operand)]
        if operator == "$nin":
            return models.Filter(must_not=options)
        # Qdrant ignores an empty `should`; "in []" must match nothing.
        return models.Filter(should=options) if options else models.HasIdCondition(has_id=[])
    raise ValueError(f"unknown filter operator {operator!r} on {key!r}")
