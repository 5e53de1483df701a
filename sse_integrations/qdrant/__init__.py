"""Qdrant collections with Matryoshka named vectors and two-stage (coarse -> full) search.

One point per document carries several named vectors, all prefixes of one SSE embedding:
by default ``"coarse"`` (the first 64 dimensions, renormalised, with int8 copies for its graph) and ``"full"`` (all 512).
A search ranks the collection on the cheap coarse vector, keeps ``prefetch_limit``
candidates, and rescores only those with the full vector. More stages (32 -> 128 -> 512)
nest the same way.

Where the collection lives follows the first argument. A folder path runs Qdrant's own engine
in-process (Qdrant Edge, ``qdrant-edge-py``): the collection is an Edge shard at
``FOLDER/COLLECTION_NAME``. A ``QdrantClient`` / ``AsyncQdrantClient`` reaches a Qdrant server
or cluster (or qdrant-client's pure-Python local mode, kept for tests and compatibility). Either
way a search is one Query API request (nested ``prefetch`` -> rescore, sparse, fusion) that
the engine executes; results are Qdrant ``ScoredPoint`` lists, identical across engines.

The package, one job per module:

- :mod:`.layout`: stage (vector) names and sizes, their Qdrant config, layout comparison;
- :mod:`.points`: deterministic point ids, the named vectors, payloads;
- :mod:`.options`: :class:`IndexOptions`, every setting of an index, checked once;
- :mod:`.plans`: the query plans (nested prefetch -> rescore, sparse, fusion), written once as
  generators that yield client calls;
- :mod:`.core`: the index's settings, input checks and write plans;
- :mod:`.records`: plans that read or delete without encoding (by id, by filter, by a vector);
- :mod:`.backends`: the client surface an index calls (a ``Protocol`` both qdrant-client and the
  embedded engine satisfy) and :func:`.backends.backend_of`, the one way to tell backends apart;
- :mod:`.runner`: the two plan runners (sync, async), which the vector stores use too;
- :mod:`.tenancy`: the scope of a tenant's requests (every client call rewritten), payload index
  schemas, tenant-derived point ids;
- :mod:`.tenant_index`: the core's tenant layer (payload indexes, stamped writes, scoped plans,
  ``for_tenant`` handles);
- :mod:`.index`: :class:`MatryoshkaIndex` and :class:`AsyncMatryoshkaIndex`, which only hand
  plans to the runners;
- :mod:`.edge`: the embedded engine, qdrant-client's collection calls answered by Edge shards;
- :mod:`.edge_models`: translation between qdrant-client's models and Edge's types.

No module reads qdrant-client's internals: only its public API and Edge's.

The low-level helpers (:func:`make_stages`, :func:`vectors_config`, :func:`encode_stages`,
:func:`build_points`, :func:`two_stage_query`) serve people who drive their own client.
Nothing here prints: the command line (:mod:`sse_integrations.cli.qdrant`) does.
"""

try:
    import qdrant_client  # noqa: F401  (checked first, so a missing extra is named)
except ImportError as error:  # pragma: no cover - exercised only without the extra
    raise ImportError('sse_integrations.qdrant needs qdrant-client: pip install "sse-integrations[qdrant]"') from error

from ..documents import ID_KEY, TEXT_KEY, TEXT_SUFFIXES, Document, read_documents
from ..search_mode import SearchMode
from .core import IndexingError
from .index import AsyncMatryoshkaIndex, MatryoshkaIndex
from .layout import (
    COARSE_NAME,
    DEFAULT_COARSE_DIM,
    FULL_NAME,
    SPARSE_METADATA_KEY,
    SPARSE_NAME,
    CollectionMismatchError,
    CorruptCollectionError,
    DenseStage,
    QuantizationOption,
    layout_differences,
    make_stages,
    stages_from_collection,
    vectors_config,
)
from .model_record import MODEL_METADATA_KEY, ModelMismatchError, model_record
from .options import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FUSION_FACTOR,
    DEFAULT_PREFETCH_FACTOR,
    Execution,
    Fusion,
    IndexOptions,
)
from .passages import PASSAGES_METADATA_KEY, PASSAGES_NAME, PassageStage, passage_rescore_query
from .plans import prefetch_limits, two_stage_query
from .points import ID_NAMESPACE, DocId, build_points, encode_stages, to_point_id
from .tenancy import TENANCY_METADATA_KEY, TenantError, tenant_point_id
from .tenant_index import TenantHandle

__all__ = [
    "COARSE_NAME",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_COARSE_DIM",
    "DEFAULT_FUSION_FACTOR",
    "DEFAULT_PREFETCH_FACTOR",
    "FULL_NAME",
    "ID_KEY",
    "ID_NAMESPACE",
    "PASSAGES_METADATA_KEY",
    "PASSAGES_NAME",
    "SPARSE_METADATA_KEY",
    "SPARSE_NAME",
    "TENANCY_METADATA_KEY",
    "TEXT_KEY",
    "TEXT_SUFFIXES",
    "AsyncMatryoshkaIndex",
    "CollectionMismatchError",
    "CorruptCollectionError",
    "DenseStage",
    "DocId",
    "Document",
    "Execution",
    "Fusion",
    "IndexOptions",
    "IndexingError",
    "MODEL_METADATA_KEY",
    "ModelMismatchError",
    "MatryoshkaIndex",
    "PassageStage",
    "QuantizationOption",
    "SearchMode",
    "TenantError",
    "TenantHandle",
    "build_points",
    "encode_stages",
    "layout_differences",
    "make_stages",
    "passage_rescore_query",
    "model_record",
    "prefetch_limits",
    "read_documents",
    "stages_from_collection",
    "tenant_point_id",
    "to_point_id",
    "two_stage_query",
    "vectors_config",
]
