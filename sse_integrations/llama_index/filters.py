"""LlamaIndex ``MetadataFilters`` as Qdrant filters: :func:`metadata_filters_to_qdrant`."""

from __future__ import annotations

from typing import Any

try:
    from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'sse_integrations.llama_index needs llama-index-core: pip install "sse-integrations[llamaindex]"'
    ) from error

__all__ = ["metadata_filters_to_qdrant"]


def metadata_filters_to_qdrant(filters: MetadataFilters) -> Any:
    """A LlamaIndex ``MetadataFilters`` as a Qdrant ``models.Filter`` over the payload keys.

    Follows LlamaIndex's own in-memory semantics: a missing key satisfies ``!=`` and ``nin``
    only; ``not`` matches when none of the filters do; ``contains``/``any``/``all`` test list
    values. ``text_match`` becomes Qdrant's ``MatchText`` (whole tokens, not substrings);
    ``text_match_insensitive`` has no Qdrant equivalent and raises ``ValueError``.
    """
    from qdrant_client import models

    conditions = [
        metadata_filters_to_qdrant(item) if isinstance(item, MetadataFilters) else _condition(item, models)
        for item in filters.filters
    ]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return models.Filter(must=conditions)
    if condition == FilterCondition.OR:
        return models.Filter(should=conditions)
    if condition == FilterCondition.NOT:
        return models.Filter(must_not=conditions)
    raise ValueError(f"unsupported filter condition {condition!r}")


def _condition(item: MetadataFilter, models: Any) -> Any:
    key, value, operator = item.key, item.value, item.operator

    def match(value: Any) -> Any:
        # MatchValue takes str/int/bool only; a float equality is the one-point range.
        if isinstance(value, float):
            return models.FieldCondition(key=key, range=models.Range(gte=value, lte=value))
        return models.FieldCondition(key=key, match=models.MatchValue(value=value))

    def values() -> list[Any]:
        if not isinstance(value, list):
            raise ValueError(f"filter {key!r} {operator.value!r} needs a list value, got {value!r}")
        return value

    if operator in (FilterOperator.EQ, FilterOperator.CONTAINS):
        return match(value)
    if operator == FilterOperator.NE:
        return models.Filter(must_not=[match(value)])
    bounds = {FilterOperator.GT: "gt", FilterOperator.GTE: "gte", FilterOperator.LT: "lt", FilterOperator.LTE: "lte"}
    if operator in bounds:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"filter {key!r} {operator.value!r} needs a number, got {value!r}")
        return models.FieldCondition(key=key, range=models.Range(**{bounds[operator]: value}))
    if operator in (FilterOperator.IN, FilterOperator.ANY):
        if not values():
            # Qdrant ignores an empty `should`; "in []" must match nothing, as in LlamaIndex.
            return models.HasIdCondition(has_id=[])
        return models.Filter(should=[match(option) for option in values()])
    if operator == FilterOperator.NIN:
        return models.Filter(must_not=[match(option) for option in values()])
    if operator == FilterOperator.ALL:
        return models.Filter(must=[match(option) for option in values()])
    if operator == FilterOperator.IS_EMPTY:
        return models.IsEmptyCondition(is_empty=models.PayloadField(key=key))
    if operator == FilterOperator.TEXT_MATCH:
        return models.FieldCondition(key=key, match=models.MatchText(text=value))
    raise ValueError(f"filter operator {operator.value!r} has no Qdrant equivalent (filter on {key!r})")
