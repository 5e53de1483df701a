"""The collection layout: named Matryoshka vectors (stages), their Qdrant config, and layout checks.

One point carries several named dense vectors, all prefixes of one SSE embedding (by default
``"coarse"``, 64 dims, and ``"full"``, 512 dims), and optionally a BM25 sparse vector.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import numpy as np
from qdrant_client import models

from ..matryoshka import validate_dim

# The design's coarse stage. Large collections gain from coarse_dim=128 (issue 14, docs/scale.md):
# an exact scan of the 64-dim prefix keeps the true top 10 (by all 512 dims) in its first 500
# candidates 0.965 of the time at 1M documents, the 128-dim prefix in its first 100 candidates
# 0.994 of the time; with int8 copies its graph builds about as fast.
DEFAULT_COARSE_DIM = 64
COARSE_NAME = "coarse"
FULL_NAME = "full"
SPARSE_NAME = "sparse"
# Collection metadata key holding the sparse encoder's settings (its average document length
# above all), so every process that opens the collection weights new documents alike.
SPARSE_METADATA_KEY = "sse_sparse"
QuantizationOption = Union[Literal["binary", "scalar"], "models.QuantizationConfig", None]


class CollectionMismatchError(ValueError):
    """An existing collection's vectors differ from what the index expects; nothing was written."""


class CorruptCollectionError(ValueError):
    """A collection's files on disk (the engine's, or ``sse_collection.json``) cannot be read; the message names them."""


@dataclass(frozen=True)
class DenseStage:
    """One named dense vector of the collection: a Matryoshka prefix of ``dim`` dimensions.

    Args:
        name: the Qdrant vector name.
        dim: prefix width (a Matryoshka dim of the model).
        quantization: None, "binary", "scalar", or a ``models.QuantizationConfig``.
        on_disk: keep the vectors memory-mapped from disk instead of read into RAM. None: on disk
            for the last (rescoring) stage, which only reads the candidates' rows, and for a
            quantized stage (its quantized copies follow: memory-mapped too), in RAM otherwise.
            Reopening a folder then maps its files instead of copying them into memory: the
            engine spent about 4 s of a 1M-document reopen copying the coarse stage's int8 copies
            into RAM (docs/scale.md).
        hnsw: build an HNSW graph on this vector. None (the default) builds one on the first
            stage only: later stages just rescore the candidates of the one before, and a graph
            on the 512-dim vector cost most of the indexing time (benchmarks/scale.py,
            docs/scale.md). Without a graph, a single-stage search of that vector scans it exactly.
    """

    name: str
    dim: int
    quantization: QuantizationOption = None
    on_disk: bool | None = None
    hnsw: bool | None = None


def make_stages(
    full_dim: int,
    coarse_dim: int = DEFAULT_COARSE_DIM,
    *,
    stages: Sequence[int | DenseStage] | None = None,
    coarse_name: str = COARSE_NAME,
    full_name: str = FULL_NAME,
    quantization: QuantizationOption = None,
) -> tuple[DenseStage, ...]:
    """The named vectors of a collection, coarsest first and the rescoring vector last.

    Without ``stages`` this is ``coarse_name`` (``coarse_dim``) and ``full_name`` (``full_dim``).
    Integer entries of ``stages`` are named ``coarse_name`` (first), ``full_name`` (last) and
    ``f"{coarse_name}_{dim}"`` (in between). ``quantization`` applies to the first stage when
    it is given as an int.
    """
    entries: list[int | DenseStage] = list(stages) if stages is not None else [coarse_dim, full_dim]
    if len(entries) < 2:
        raise ValueError(f"a Matryoshka index needs at least two stages (coarse and rescoring), got {entries!r}")
    built: list[DenseStage] = []
    for position, entry in enumerate(entries):
        if isinstance(entry, DenseStage):
            stage = entry
        elif isinstance(entry, (int, np.integer)) and not isinstance(entry, bool):
            if position == 0:
                name = coarse_name
            elif position == len(entries) - 1:
                name = full_name
            else:
                name = f"{coarse_name}_{int(entry)}"
            stage = DenseStage(name, int(entry), quantization if position == 0 else None)
        else:
            raise TypeError(f"stages[{position}] must be an int or a DenseStage, got {type(entry).__name__}")
        validate_dim(stage.dim, full_dim)
        if not isinstance(stage.name, str) or not stage.name:
            raise ValueError(f"stages[{position}] needs a non-empty vector name, got {stage.name!r}")
        built.append(stage)
    names = [stage.name for stage in built]
    if len(set(names)) != len(names):
        raise ValueError(f"vector names must be distinct, got {names}")
    dims = [stage.dim for stage in built]
    if any(later <= earlier for earlier, later in zip(dims, dims[1:])):
        raise ValueError(f"stage dims must increase from coarse to full, got {dims}")
    return tuple(built)


def quantization_config(option: QuantizationOption) -> models.QuantizationConfig | None:
    if option is None:
        return None
    if option == "binary":
        return models.BinaryQuantization(binary=models.BinaryQuantizationConfig())
    if option == "scalar":
        return models.ScalarQuantization(
            scalar=models.ScalarQuantizationConfig(type=models.ScalarType.INT8, quantile=0.99)
        )
    if isinstance(option, (models.BinaryQuantization, models.ScalarQuantization, models.ProductQuantization)):
        return option
    raise ValueError(f"quantization must be None, 'binary', 'scalar' or a qdrant QuantizationConfig, got {option!r}")


def vectors_config(
    stages: Sequence[DenseStage], distance: models.Distance = models.Distance.COSINE
) -> dict[str, models.VectorParams]:
    """``vectors_config`` for ``create_collection``: one cosine ``VectorParams`` per stage.

    A stage without a graph gets ``hnsw_config`` m=0 (Qdrant's way to skip building one); a
    stage with one keeps the collection's HNSW settings. The last stage and quantized stages are
    memory-mapped unless their ``on_disk`` says otherwise (see :class:`DenseStage`).
    """
    last = len(stages) - 1
    return {
        stage.name: models.VectorParams(
            size=stage.dim,
            distance=distance,
            quantization_config=quantization_config(stage.quantization),
            on_disk=stage.on_disk if stage.on_disk is not None else position == last or bool(stage.quantization),
            hnsw_config=None if _has_graph(stage, position) else models.HnswConfigDiff(m=0),
        )
        for position, stage in enumerate(stages)
    }


def _has_graph(stage: DenseStage, position: int) -> bool:
    return stage.hnsw if stage.hnsw is not None else position == 0


def _describe(dense: Mapping[str, Any], sparse: Iterable[str]) -> str:
    parts = [
        f"{name}: {params.size} {str(getattr(params.distance, 'value', params.distance)).lower()}"
        for name, params in dense.items()
    ]
    parts += [f"{name}: sparse" for name in sparse]
    return "{" + ", ".join(parts) + "}"


def layout_differences(
    info: models.CollectionInfo,
    expected: Mapping[str, models.VectorParams],
    expected_sparse: Iterable[str] = (),
) -> list[str]:
    """What differs between an existing collection's vectors and the expected ones (empty = match)."""
    existing: Any = info.config.params.vectors
    if existing is None:
        existing = {}
    elif isinstance(existing, models.VectorParams):
        existing = {"": existing}  # Qdrant's unnamed default vector
    existing_sparse = set((info.config.params.sparse_vectors or {}).keys())
    wanted_sparse = set(expected_sparse)
    problems = []
    for name in expected:
        if name not in existing:
            problems.append(f"vector {name!r} is missing")
    for name in existing:
        if name not in expected:
            label = "an unnamed default vector" if name == "" else f"vector {name!r}"
            problems.append(f"the collection has {label} that this index does not use")
    for name, params in expected.items():
        if name in existing:
            have = existing[name]
            if (getattr(have, "multivector_config", None) is None) != (params.multivector_config is None):
                kinds = ("a multivector", "a single vector")
                wanted, found = kinds if params.multivector_config is not None else kinds[::-1]
                problems.append(f"vector {name!r} is {found}, expected {wanted}")
            if have.size != params.size:
                problems.append(f"vector {name!r} has size {have.size}, expected {params.size}")
            if have.distance != params.distance:
                problems.append(f"vector {name!r} uses {have.distance}, expected {params.distance}")
    for name in sorted(wanted_sparse - existing_sparse):
        problems.append(f"sparse vector {name!r} is missing")
    for name in sorted(existing_sparse - wanted_sparse):
        problems.append(f"the collection has sparse vector {name!r} that this index does not use")
    if problems:
        problems.append(
            f"collection has {_describe(existing, existing_sparse)}, "
            f"this index expects {_describe(expected, wanted_sparse)}"
        )
    return problems


def stages_from_collection(info: models.CollectionInfo) -> tuple[DenseStage, ...]:
    """The dense stages of an existing collection, narrowest first (to search it without repeating options)."""
    vectors = single_vectors(info)
    if len(vectors) < 2:
        raise CollectionMismatchError(
            "the collection has no Matryoshka layout (at least two named dense vectors of different sizes)"
        )
    return tuple(DenseStage(name, params.size) for name, params in sorted(vectors.items(), key=lambda kv: kv[1].size))


def stored_coarse_dim(info: models.CollectionInfo, coarse: DenseStage, full: DenseStage) -> int | None:
    """The coarse width a collection of the default two-stage layout was made with, when it differs from ``coarse``.

    A collection made with another ``coarse_dim`` (say 128, for a large collection) keeps being
    searched with its own prefix by code that does not repeat the setting, instead of being
    refused. None for another layout altogether (refused with the default one as the expectation).
    """
    existing = single_vectors(info)
    if set(existing) != {coarse.name, full.name}:
        return None
    stored, stored_full = existing[coarse.name].size, existing[full.name].size
    return stored if stored_full == full.dim and stored != coarse.dim and 0 < stored < stored_full else None


def single_vectors(info: models.CollectionInfo) -> dict[str, models.VectorParams]:
    """The collection's named dense vectors that hold one vector per point (multivectors left out)."""
    vectors = info.config.params.vectors
    if not isinstance(vectors, Mapping):
        return {}
    return {name: params for name, params in vectors.items() if getattr(params, "multivector_config", None) is None}
