"""The tenant layer of an index: payload indexes, tenant-derived point ids, and every request of a tenant scoped.

:class:`TenantIndexCore` is :class:`.core.IndexCore` with the hooks of :mod:`.tenancy`: it
creates the declared payload indexes with the collection (and adds missing ones when it opens
one), stamps each written document with its tenant, derives point ids from (tenant, id), and
runs every plan of a tenant through :func:`.tenancy.scoped_plan`. Without ``tenant_field`` (and a
collection that records none) it behaves exactly as :class:`.core.IndexCore`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from qdrant_client import models

from . import records
from .core import IndexCore
from .layout import CollectionMismatchError
from .points import DocId, build_points, named_point_id, point_payloads, to_point_id
from .runner import Call
from .tenancy import (
    TENANCY_METADATA_KEY,
    RequestScope,
    TenantError,
    check_tenant,
    declared_schemas,
    is_tenant_schema,
    schema_record,
    schema_type,
    scoped_plan,
    tenancy_record,
    tenant_point_id,
)

EDGE_SHARD_KEYS = (
    "the embedded engine is one shard: custom shard keys (shard_key_selector) need a Qdrant server or cluster "
    "made with sharding_method=CUSTOM"
)
# The index's methods that take tenant= (what a TenantHandle binds).
TENANT_METHODS = (
    "add_texts",
    "search",
    "search_batch",
    "delete",
    "count",
    "get",
    "scroll",
    "delete_where",
    "search_by_vector",
    "point_id",
)


class TenantIndexCore(IndexCore):
    """:class:`.core.IndexCore` with payload indexes, tenants and custom shard keys (docs/tenancy.md)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.embedded and self.options.shard_key_selector is not None:
            raise ValueError(EDGE_SHARD_KEYS)
        #: The payload field naming each point's tenant: the option's, or the collection's own once opened.
        self.tenant_field: str | None = self.options.tenant_field
        #: The payload indexes this index declares (its options' and the tenant field's), by field.
        self.payload_schemas = declared_schemas(self.options.payload_indexes, self.tenant_field)
        self._opened_info: models.CollectionInfo | None = None

    # scope -----------------------------------------------------------------------------------

    def resolve_tenant(self, tenant: str | None) -> str | None:
        """The tenant of a call: its own, else the index's bound one; another than the bound one is refused."""
        bound = self.options.tenant
        if tenant is None:
            return bound
        check_tenant(tenant)
        if bound is not None and tenant != bound:
            raise TenantError(f"this index is bound to tenant {bound!r}: it does not serve tenant {tenant!r}")
        return tenant

    def request_scope(
        self, tenant: str | None, shard_key_selector: Any = None, *, write: bool = False
    ) -> RequestScope | None:
        """What every client call of one request is confined to (None: nothing to confine)."""
        tenant = self.resolve_tenant(tenant)
        shard = shard_key_selector if shard_key_selector is not None else self.options.shard_key_selector
        if shard is not None and self.embedded:
            raise ValueError(EDGE_SHARD_KEYS)
        if self.tenant_field is None:
            if tenant is not None:
                raise TenantError(
                    f"collection {self.collection_name!r} has no tenant field, so tenant={tenant!r} cannot scope "
                    "it: make the index with tenant_field=..."
                )
            return RequestScope(shard_key_selector=shard) if shard is not None else None
        if tenant is None and not write:
            raise TenantError(
                f"collection {self.collection_name!r} is multi-tenant (tenant field {self.tenant_field!r}): "
                "pass tenant=..., or bind the index with tenant=... or index.for_tenant(...)"
            )
        return RequestScope(self.tenant_field, tenant, shard)

    def scoped(
        self,
        plan: Generator[Call, Any, Any],
        tenant: str | None = None,
        shard_key_selector: Any = None,
        *,
        write: bool = False,
    ) -> Generator[Call, Any, Any]:
        """``plan`` run in its request's scope; the collection is opened first, so its own tenant field counts."""
        if not self._collection_checked and (yield ("collection_exists", {"collection_name": self.collection_name})):
            yield from self.ensure_collection_plan(create=False)
        scope = self.request_scope(tenant, shard_key_selector, write=write)
        if scope is None:
            return (yield from plan)
        return (yield from scoped_plan(plan, scope))

    def for_tenant(self, tenant: str) -> TenantHandle:
        """This index bound to ``tenant``: every call is for it (and a call for another is refused).

        The handle shares the index (its client, encoder, locks and collection state), so one
        index can serve many tenants' handles at once.
        """
        return TenantHandle(self, tenant)

    def with_options(self, **changes: Any) -> Any:
        """A twin of this index on the same client, collection and encoder, some options changed."""
        return type(self)(self.client, self.collection_name, self.encoder, options=replace(self.options, **changes))

    # collection ------------------------------------------------------------------------------

    def _new_collection_settings(self, texts: Sequence[str]) -> dict[str, Any]:
        settings = super()._new_collection_settings(texts)
        if self.payload_schemas:
            settings["metadata"][TENANCY_METADATA_KEY] = tenancy_record(self.tenant_field, self.payload_schemas)
        self._opened_info = None
        return settings

    def _adopt_collection(self, info: models.CollectionInfo) -> None:
        stored = ((getattr(info.config, "metadata", None) or {}).get(TENANCY_METADATA_KEY)) or {}
        stored_field = stored.get("tenant_field")
        wanted = self.options.tenant_field
        if stored_field and wanted and stored_field != wanted:
            raise CollectionMismatchError(
                f"collection {self.collection_name!r} keeps its tenants in {stored_field!r}, this index "
                f"asks for {wanted!r}: open it with tenant_field={stored_field!r} (or leave it out)"
            )
        if stored_field and self.tenant_field is None:
            self.tenant_field = stored_field
            self.payload_schemas = declared_schemas(self.options.payload_indexes, stored_field)
        self._opened_info = info
        super()._adopt_collection(info)

    def ensure_collection_plan(self, create: bool, texts: Sequence[str] = ()) -> Generator[Call, Any, None]:
        opening = not self._collection_checked
        yield from super().ensure_collection_plan(create, texts)
        if opening and self._collection_checked:
            yield from self._payload_index_plan(self._opened_info)
            self._opened_info = None

    def _payload_index_plan(self, info: models.CollectionInfo | None) -> Generator[Call, Any, None]:
        """Create the declared payload indexes the collection lacks (all of them when it was just made).

        qdrant-client's local mode keeps none (it only warns), so there the metadata record alone is kept.
        """
        name = self.collection_name
        metadata = (getattr(info.config, "metadata", None) or {}) if info is not None else {}
        stored = dict((metadata.get(TENANCY_METADATA_KEY) or {}).get("payload_indexes") or {})
        existing: Mapping[str, Any] = stored if self.local_mode else (info.payload_schema or {}) if info else {}
        missing = []
        for field, schema in self.payload_schemas.items():
            have = existing.get(field)
            if have is not None and schema_type(have) != schema_type(schema):
                raise CollectionMismatchError(
                    f"collection {name!r} indexes payload field {field!r} as {schema_type(have)!r}, this index "
                    f"declares {schema_type(schema)!r}"
                )
            if have is None or (is_tenant_schema(schema) and not is_tenant_schema(have)):
                missing.append(field)
        if not self.local_mode:
            for field in missing:
                schema = self.payload_schemas[field]
                yield ("create_payload_index", {"collection_name": name, "field_name": field, "field_schema": schema})
        if info is not None and (missing or any(f not in stored for f in self.payload_schemas)):
            record = tenancy_record(self.tenant_field, {})
            record["payload_indexes"] = {**stored, **{f: schema_record(s) for f, s in self.payload_schemas.items()}}
            yield ("update_collection", {"collection_name": name, "metadata": {TENANCY_METADATA_KEY: record}})

    # writes and ids --------------------------------------------------------------------------

    def _add_plan(
        self,
        texts: Sequence[str],
        ids: Sequence[DocId] | None,
        payloads: Sequence[Mapping[str, Any] | None] | None,
        batch_size: int | None,
        show_progress: bool | None,
        tenant: str | None = None,
    ) -> Generator[Call, Any, list[DocId]]:
        field = self.tenant_field
        if field is None:
            return (yield from super()._add_plan(texts, ids, payloads, batch_size, show_progress))
        tenant = self.resolve_tenant(tenant)
        texts, doc_ids, checked = self._check_inputs(texts, ids, payloads)
        stamped = [self._stamp(dict(checked[row] or {}) if checked else {}, row, tenant) for row in range(len(texts))]
        if ids is not None:
            seen: dict[str, int] = {}
            for row, doc_id in enumerate(doc_ids):
                point_id = tenant_point_id(doc_id, stamped[row][field], self.id_namespace, f"ids[{row}]")
                if point_id in seen:
                    raise ValueError(
                        f"ids[{row}] repeats ids[{seen[point_id]}] ({doc_id!r}) in tenant {stamped[row][field]!r}: "
                        "one text per id"
                    )
                seen[point_id] = row
        return (yield from super()._add_plan(texts, doc_ids, stamped, batch_size, show_progress))

    def _stamp(self, payload: dict[str, Any], row: int, tenant: str | None) -> dict[str, Any]:
        """The payload with its tenant: the write's (a different one is refused), else its own (required)."""
        field = self.tenant_field
        assert field is not None
        value = payload.get(field)
        if tenant is None:
            if value is None:
                raise TenantError(
                    f"payloads[{row}] has no {field!r}: every write to a multi-tenant index carries its tenant "
                    "(pass tenant=..., or set it in each payload)"
                )
            check_tenant(value, f"payloads[{row}][{field!r}]")
        elif value is not None and value != tenant:
            raise TenantError(f"payloads[{row}] sets {field}={value!r}, but this write is for tenant {tenant!r}")
        else:
            payload[field] = tenant
        return payload

    def _check_ids(self, ids: Sequence[DocId], text_count: int) -> list[DocId]:
        if self.tenant_field is None:
            return super()._check_ids(ids, text_count)
        # Repeats are per tenant: the add plan checks them once each document's tenant is known.
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a list, got a bare string")
        doc_ids: list[DocId] = [int(i) if isinstance(i, np.integer) else i for i in ids]
        if len(doc_ids) != text_count:
            raise ValueError(f"got {text_count} texts but {len(doc_ids)} ids")
        for row, doc_id in enumerate(doc_ids):
            named_point_id(doc_id, self.id_namespace, f"ids[{row}]")
        return doc_ids

    def _make_points(
        self,
        texts: list[str],
        doc_ids: list[DocId],
        payloads: list[Mapping[str, Any] | None] | None,
        vectors: dict[str, Any],
    ) -> list[Any]:
        field = self.tenant_field
        if field is None:
            return super()._make_points(texts, doc_ids, payloads, vectors)
        assert payloads is not None  # stamped by the add plan
        tenants = [payload[field] for payload in payloads if payload is not None]
        point_ids = [tenant_point_id(d, t, self.id_namespace) for d, t in zip(doc_ids, tenants)]
        keys = {"text_key": self.text_key, "id_key": self.id_key}
        if self.embedded:
            from .edge_models import edge_points

            return edge_points(point_ids, vectors, point_payloads(doc_ids, texts, payloads, **keys))
        points = build_points(doc_ids, texts, vectors, payloads, namespace=self.id_namespace, **keys)
        for point, point_id in zip(points, point_ids):
            point.id = point_id
        return points

    def tenant_point_ids(self, ids: Sequence[DocId], tenant: str | None) -> list[int | str]:
        """Point ids of caller ids: the tenant's own on a multi-tenant index."""
        if self.tenant_field is None:
            return self.point_ids(ids)
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids must be a list, got a bare string")
        resolved = self.resolve_tenant(tenant)
        if resolved is None:
            raise TenantError(f"collection {self.collection_name!r} is multi-tenant: pass tenant=...")
        return [tenant_point_id(doc_id, resolved, self.id_namespace, f"ids[{i}]") for i, doc_id in enumerate(ids)]

    def point_id(self, doc_id: DocId, tenant: str | None = None) -> int | str:
        """The Qdrant point id of a caller's document id (in ``tenant`` on a multi-tenant index)."""
        if self.tenant_field is None:
            return to_point_id(doc_id, self.id_namespace)
        return self.tenant_point_ids([doc_id], tenant)[0]

    def _delete_plan(self, ids: Sequence[DocId], tenant: str | None = None) -> Generator[Call, Any, None]:
        # Tenant point ids are canonical UUIDs, which the core's id mapping passes through as they are.
        return (yield from super()._delete_plan(self.tenant_point_ids(ids, tenant)))

    def _get_plan(
        self, ids: Sequence[DocId], with_vectors: bool | Sequence[str], tenant: str | None = None
    ) -> Generator[Call, Any, list[models.Record]]:
        return (yield from records.get_plan(self, self.tenant_point_ids(ids, tenant), with_vectors))


class TenantHandle:
    """An index bound to one tenant (``index.for_tenant(t)``): its tenant methods take that tenant,
    everything else is the index's own (shared, not copied)."""

    def __init__(self, index: TenantIndexCore, tenant: str) -> None:
        self._index = index
        self.tenant = check_tenant(tenant)
        index.resolve_tenant(tenant)  # an index bound to another tenant refuses now, not at the first call

    def __repr__(self) -> str:
        return f"{type(self._index).__name__}.for_tenant({self.tenant!r}) of {self._index.collection_name!r}"

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._index, name)
        if name not in TENANT_METHODS:
            return attribute
        bound = self.tenant

        def check(kwargs: dict[str, Any]) -> dict[str, Any]:
            asked = kwargs.pop("tenant", None)
            if asked is not None and asked != bound:
                raise TenantError(f"this handle is bound to tenant {bound!r}: it does not serve tenant {asked!r}")
            return {**kwargs, "tenant": bound}

        if inspect.iscoroutinefunction(attribute):

            @functools.wraps(attribute)
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                return await attribute(*args, **check(kwargs))

            return call_async

        @functools.wraps(attribute)
        def call(*args: Any, **kwargs: Any) -> Any:
            return attribute(*args, **check(kwargs))

        return call

    def with_options(self, **changes: Any) -> TenantHandle:
        """:meth:`TenantIndexCore.with_options`, bound to this handle's tenant too."""
        return self._index.with_options(**changes).for_tenant(self.tenant)

    def for_tenant(self, tenant: str) -> TenantHandle:
        if tenant != self.tenant:
            raise TenantError(f"this handle is bound to tenant {self.tenant!r}: it does not serve tenant {tenant!r}")
        return self
