"""Tenants and payload indexes: the scope every request of one tenant runs in, and the fields a collection indexes.

Qdrant's convention for many tenants in one collection is a keyword payload field marked
``is_tenant`` (the engine then keeps each tenant's points together), every request filtered by
it, and, for large tenants on a cluster, custom shard keys. Here the scoping is done to the
*requests*, not to the plans that make them: :func:`scoped_plan` rewrites every client call a
plan yields, so no plan (existing or future) can reach the engine unscoped:

- every filter becomes ``must: [tenant condition, the caller's filter]``: the caller's filter is
  nested whole, so none of its ``should``/``must_not``/``min_should`` can undo the tenant
  condition; every prefetch stage (coarse, rescoring, sparse, passages) gets the same filter;
- ``retrieve`` by point id becomes a ``scroll`` filtered by tenant and ``HasId``, and a delete by
  ids a delete by that filter: another tenant's point ids match nothing;
- every upserted point must carry the tenant (the index stamps it; this is the second check);
- a client call the scope does not know is refused instead of passed through.

Point ids of a tenant index are derived from (tenant, document id), so two tenants may both
have document ``"1"`` (:func:`tenant_point_id`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast, get_args

from qdrant_client import models

from .points import ID_NAMESPACE, DocId, named_point_id

# Collection metadata key recording the tenant field and the declared payload indexes, so a
# process that opens the collection without repeating them still scopes every request (and
# qdrant-client's local mode, which keeps no payload indexes, still knows what was declared).
TENANCY_METADATA_KEY = "sse_tenancy"
SCHEMA_TYPES = tuple(kind.value for kind in models.PayloadSchemaType)
SCHEMA_PARAMS: tuple[type, ...] = get_args(models.PayloadSchemaParams)

PayloadIndexOption = str | models.PayloadSchemaType | models.PayloadSchemaParams
PayloadSchema = models.PayloadSchemaType | models.PayloadSchemaParams
Call = tuple[Any, dict[str, Any]]

# Client calls that touch the collection's settings, never its points: they pass unscoped.
COLLECTION_CALLS = frozenset(
    {
        "collection_exists",
        "get_collection",
        "create_collection",
        "update_collection",
        "create_payload_index",
        "flush",
        "optimize",
        "close",
    }
)


class TenantError(ValueError):
    """A request without its tenant, or for another tenant than the index's; nothing was read or written."""


def check_tenant(value: Any, name: str = "tenant") -> str:
    """A tenant value: a non-empty str (the tenant field is a keyword index)."""
    if not isinstance(value, str) or not value:
        raise TenantError(f"{name} must be a non-empty str (the tenant field is a keyword index), got {value!r:.60}")
    return value


def payload_schema(field: str, option: Any) -> PayloadSchema:
    """One declared payload index as a qdrant-client schema: a type name ("keyword", "integer", ...), a
    ``PayloadSchemaType`` or a ``*IndexParams``."""
    if not isinstance(field, str) or not field:
        raise ValueError(f"payload_indexes keys must be non-empty field names, got {field!r}")
    if isinstance(option, models.PayloadSchemaType):
        return option
    if isinstance(option, str):
        if option not in SCHEMA_TYPES:
            raise ValueError(f"payload_indexes[{field!r}] must be one of {list(SCHEMA_TYPES)}, got {option!r}")
        return models.PayloadSchemaType(option)
    if isinstance(option, SCHEMA_PARAMS):
        return cast(PayloadSchema, option)
    raise TypeError(
        f"payload_indexes[{field!r}] must be a type name, a PayloadSchemaType or a qdrant *IndexParams, "
        f"got {type(option).__name__}"
    )


def schema_type(schema: Any) -> str:
    """The index type name of a schema, a stored record or a collection's ``PayloadIndexInfo``."""
    if isinstance(schema, models.PayloadIndexInfo):
        schema = schema.data_type
    if isinstance(schema, Mapping):
        return str(schema.get("type"))
    if isinstance(schema, models.PayloadSchemaType):
        return schema.value
    return str(getattr(schema.type, "value", schema.type))


def is_tenant_schema(schema: Any) -> bool:
    """Whether a schema (or a collection's ``PayloadIndexInfo``) marks its field ``is_tenant``."""
    if isinstance(schema, models.PayloadIndexInfo):
        schema = schema.params
    if isinstance(schema, Mapping):
        return bool(schema.get("is_tenant"))
    return bool(getattr(schema, "is_tenant", False))


def declared_schemas(payload_indexes: Mapping[str, Any], tenant_field: str | None) -> dict[str, PayloadSchema]:
    """Every payload index an index declares: ``payload_indexes``, and the tenant field as a keyword
    index with ``is_tenant=True`` (its own ``on_disk`` kept when it is listed there too)."""
    schemas = {field: payload_schema(field, option) for field, option in payload_indexes.items()}
    if tenant_field is not None:
        listed = schemas.get(tenant_field)
        if listed is not None and schema_type(listed) != "keyword":
            raise ValueError(
                f"the tenant field {tenant_field!r} is a keyword index, but payload_indexes declares it "
                f"{schema_type(listed)!r}"
            )
        on_disk = getattr(listed, "on_disk", None)
        schemas[tenant_field] = models.KeywordIndexParams(
            type=models.KeywordIndexType.KEYWORD, is_tenant=True, on_disk=on_disk
        )
    return schemas


def schema_record(schema: PayloadSchema) -> dict[str, Any]:
    """A schema as the collection metadata records it (JSON)."""
    if isinstance(schema, models.PayloadSchemaType):
        return {"type": schema.value}
    return schema.model_dump(mode="json", exclude_none=True)


def tenancy_record(tenant_field: str | None, schemas: Mapping[str, PayloadSchema]) -> dict[str, Any]:
    """What the collection metadata holds under :data:`TENANCY_METADATA_KEY`."""
    return {"tenant_field": tenant_field, "payload_indexes": {f: schema_record(s) for f, s in schemas.items()}}


@functools.lru_cache(maxsize=4096)
def _tenant_namespace(namespace: uuid.UUID, tenant: str) -> uuid.UUID:
    return uuid.uuid5(namespace, "tenant:" + tenant)


def tenant_point_id(doc_id: DocId, tenant: str, namespace: uuid.UUID = ID_NAMESPACE, name: str = "id") -> str:
    """The point id of ``doc_id`` in ``tenant``: uuid5 in a namespace of the tenant, so tenants never share one.

    Every kind of id maps through uuid5 (an int or a UUID too, which pass through unchanged
    without tenants), keeping the equivalences of :func:`~.points.to_point_id`: the int 1 and the
    string "1" stay two documents, a UUID and its canonical string one.
    """
    canonical = named_point_id(doc_id, namespace, name)  # validates, with the id's place in errors
    if isinstance(canonical, int):
        key = f"int:{canonical}"
    elif isinstance(doc_id, uuid.UUID) or canonical == doc_id:
        key = f"uuid:{canonical}"
    else:
        key = f"str:{doc_id}"
    return str(uuid.uuid5(_tenant_namespace(namespace, tenant), key))


@dataclass(frozen=True)
class RequestScope:
    """What every client call of one request is confined to: a tenant, a custom shard key, or both.

    ``tenant`` None with a ``tenant_field`` is a write whose documents each carry their own
    tenant (a multi-tenant bulk load): only its upserts are checked.
    """

    tenant_field: str | None = None
    tenant: str | None = None
    shard_key_selector: Any = None

    def condition(self) -> models.FieldCondition | None:
        if self.tenant_field is None or self.tenant is None:
            return None
        return models.FieldCondition(key=self.tenant_field, match=models.MatchValue(value=self.tenant))

    def filter(self, caller: Any) -> Any:
        """``must: [tenant, caller's filter]``: the caller's filter nested whole, so it can only narrow."""
        condition = self.condition()
        if condition is None:
            return caller
        return models.Filter(must=[condition] if caller is None else [condition, caller])

    def prefetch(self, prefetch: Any) -> Any:
        """Every stage of a (nested) prefetch, filtered."""
        if prefetch is None:
            return None
        if isinstance(prefetch, Sequence):
            return [self.prefetch(stage) for stage in prefetch]
        return prefetch.model_copy(
            update={"filter": self.filter(prefetch.filter), "prefetch": self.prefetch(prefetch.prefetch)}
        )

    def request(self, request: models.QueryRequest) -> models.QueryRequest:
        update: dict[str, Any] = {"filter": self.filter(request.filter), "prefetch": self.prefetch(request.prefetch)}
        if self.shard_key_selector is not None:
            update["shard_key"] = self.shard_key_selector
        return request.model_copy(update=update)

    def _shard(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.shard_key_selector is not None:
            kwargs["shard_key_selector"] = self.shard_key_selector
        return kwargs

    def check_points(self, points: Sequence[Any]) -> None:
        """Refuse a point whose payload lacks the tenant, or carries another one."""
        if self.tenant_field is None:
            return
        for position, point in enumerate(points):
            value = (getattr(point, "payload", None) or {}).get(self.tenant_field)
            if self.tenant is not None and value != self.tenant:
                raise TenantError(
                    f"point {position} of the upsert has {self.tenant_field}={value!r}, "
                    f"but this write is for tenant {self.tenant!r}"
                )
            check_tenant(value, f"point {position}'s {self.tenant_field!r}")

    def rewrite(self, method: str, kwargs: dict[str, Any]) -> tuple[Call, Callable[[Any], Any] | None]:
        """The scoped form of one client call, and what turns its result back into the original's."""
        kwargs = dict(kwargs)
        if method in COLLECTION_CALLS:
            return (method, kwargs), None
        if method == "upsert":
            self.check_points(kwargs["points"])
            return (method, self._shard(kwargs)), None
        if method == "query_batch_points":
            kwargs["requests"] = [self.request(request) for request in kwargs["requests"]]
            return (method, kwargs), None
        if method == "query_points":
            kwargs["query_filter"] = self.filter(kwargs.get("query_filter"))
            if kwargs.get("prefetch") is not None:
                kwargs["prefetch"] = self.prefetch(kwargs["prefetch"])
            return (method, self._shard(kwargs)), None
        if method in ("count", "scroll"):
            key = f"{method}_filter"
            kwargs[key] = self.filter(kwargs.get(key))
            return (method, self._shard(kwargs)), None
        if method == "delete":
            return ("delete", self._shard(self._delete(kwargs))), None
        if method == "retrieve":
            return self._retrieve(kwargs)
        raise TenantError(f"no tenant scope is known for the client call {method!r}: refused rather than sent unscoped")

    def _delete(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        selector = kwargs["points_selector"]
        if self.condition() is None:
            return kwargs
        if isinstance(selector, models.PointIdsList):
            by_id = models.Filter(must=[models.HasIdCondition(has_id=list(selector.points))])
            kwargs["points_selector"] = models.FilterSelector(filter=self.filter(by_id))
        elif isinstance(selector, models.FilterSelector):
            kwargs["points_selector"] = models.FilterSelector(filter=self.filter(selector.filter))
        else:
            raise TenantError(f"a tenant's delete takes point ids or a filter, got {type(selector).__name__}")
        return kwargs

    def _retrieve(self, kwargs: dict[str, Any]) -> tuple[Call, Callable[[Any], Any] | None]:
        if self.condition() is None:
            return ("retrieve", self._shard(kwargs)), None
        # By id, but only the tenant's: a scroll filtered by tenant and HasId returns the same records.
        ids = list(kwargs["ids"])
        scroll = {
            "collection_name": kwargs["collection_name"],
            "scroll_filter": self.filter(models.Filter(must=[models.HasIdCondition(has_id=ids)])),
            "limit": max(1, len({str(point_id) for point_id in ids})),
            "offset": None,
            "with_payload": kwargs.get("with_payload", True),
            "with_vectors": kwargs.get("with_vectors", False),
        }
        return ("scroll", self._shard(scroll)), lambda page: page[0]


def scoped_plan(plan: Generator[Call, Any, Any], scope: RequestScope) -> Generator[Call, Any, Any]:
    """``plan`` with each client call rewritten by ``scope`` (CPU work, a callable target, passes as it is).

    A call the scope refuses raises inside ``plan`` at that call, as an engine error would, so
    the plan's own error handling (an add's ``written_ids``) still holds.
    """
    try:
        call = next(plan)
        while True:
            target, kwargs = call
            try:
                if callable(target):
                    result = yield call
                else:
                    rewritten, restore = scope.rewrite(target, kwargs)
                    result = yield rewritten
                    if restore is not None:
                        result = restore(result)
            except Exception as error:
                call = plan.throw(error)
            else:
                call = plan.send(result)
    except StopIteration as stop:
        return stop.value
    finally:
        plan.close()
