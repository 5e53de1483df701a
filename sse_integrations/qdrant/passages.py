"""The passage stage of a collection: a multivector of each document's passages, scored in the engine.

A static model's mean over a long document drowns the pieces that match a query; scoring the
best passage beside the whole document lifts retrieval on long documents (docs/passages.md).
The collection holds, beside the Matryoshka stages, one multivector per point (MAX_SIM, no
graph, on disk), and a search rescores the coarse candidates by
``(1 - weight) * whole-document cosine + weight * best-passage cosine`` with Qdrant's score
formula, in one Query API request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from qdrant_client import models

from ..matryoshka import validate_dim
from ..passages import DEFAULT_MAX_PASSAGES, DEFAULT_PASSAGE_STRIDE, DEFAULT_PASSAGE_TOKENS, PassageCut
from .layout import CollectionMismatchError, DenseStage, QuantizationOption, quantization_config

PASSAGES_NAME = "passages"
# Collection metadata key holding the passage stage (its cut above all), so every process that
# opens the collection cuts new documents alike and searches with the same weight.
PASSAGES_METADATA_KEY = "sse_passages"
# The passage score's share of a document's score; the whole document's is 1 - weight. Chosen
# on the document dev set's dev half (benchmarks/passage_quality.py, docs/passages.md).
DEFAULT_PASSAGE_WEIGHT = 0.5


@dataclass(frozen=True)
class PassageStage:
    """The passage multivector: each document's passages, scored by their best match (MAX_SIM).

    A search rescores the coarse candidates by ``(1 - weight) * cosine(query, whole document) +
    weight * max over passages of cosine(query, passage)``, in the engine. A document of at most
    ``tokens`` ids is one passage equal to the whole document, so it scores as without passages.

    Args:
        name: the Qdrant vector name.
        dim: width of the passage vectors (a Matryoshka dim); None: the full width, which keeps a
            one-passage document's score exactly its whole-document cosine. 256 halves the
            storage for nearly the same ranking (docs/passages.md).
        tokens, stride, max_passages: the cut (:class:`~sse_integrations.passages.PassageCut`):
            ``tokens``-id windows every ``stride`` ids; a document needing more than
            ``max_passages`` windows gets ``max_passages`` equal windows covering it instead.
        weight: the best passage's share of the score, in [0, 1].
        quantization: None, "binary", "scalar", or a ``models.QuantizationConfig``.
        on_disk: keep the passage vectors memory-mapped from disk (only candidates are read).
    """

    name: str = PASSAGES_NAME
    dim: int | None = None
    tokens: int = DEFAULT_PASSAGE_TOKENS
    stride: int = DEFAULT_PASSAGE_STRIDE
    max_passages: int = DEFAULT_MAX_PASSAGES
    weight: float = DEFAULT_PASSAGE_WEIGHT
    quantization: QuantizationOption = None
    on_disk: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"the passage vector needs a non-empty name, got {self.name!r}")
        PassageCut(self.tokens, self.stride, self.max_passages)  # checks the cut now, not at the first add
        weight = self.weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"passage weight must be a number in [0, 1], got {weight!r}")
        object.__setattr__(self, "weight", float(weight))
        quantization_config(self.quantization)  # a bad option fails here, not at collection creation

    @property
    def cut(self) -> PassageCut:
        return PassageCut(self.tokens, self.stride, self.max_passages)

    def layout(self) -> dict[str, Any]:
        """What the collection records (the metadata under ``PASSAGES_METADATA_KEY``)."""
        return {
            "name": self.name,
            "dim": self.dim,
            "tokens": self.tokens,
            "stride": self.stride,
            "max_passages": self.max_passages,
            "weight": self.weight,
        }

    @classmethod
    def from_layout(cls, stored: Mapping[str, Any]) -> PassageStage:
        fields = ("name", "dim", "tokens", "stride", "max_passages", "weight")
        return cls(**{key: stored[key] for key in fields if key in stored})


def passage_stage(option: bool | PassageStage | None, full_dim: int) -> PassageStage | None:
    """The index's passage stage from its ``passages`` option, with the width resolved."""
    if option is None or option is False:
        return None
    if option is True:
        option = PassageStage()
    if not isinstance(option, PassageStage):
        raise TypeError(f"passages must be True, False or a PassageStage, got {type(option).__name__}")
    dim = validate_dim(option.dim, full_dim) if option.dim is not None else full_dim
    return replace(option, dim=dim)


def check_passage_name(stage: PassageStage, other_names: Sequence[str]) -> None:
    if stage.name in other_names:
        raise ValueError(f"the passage vector's name {stage.name!r} is also the name of another vector")


def passage_vector_params(
    stage: PassageStage, distance: models.Distance = models.Distance.COSINE
) -> models.VectorParams:
    """The multivector's ``VectorParams``: MAX_SIM over the passages, no graph (it only rescores candidates)."""
    assert stage.dim is not None
    return models.VectorParams(
        size=stage.dim,
        distance=distance,
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM),
        quantization_config=quantization_config(stage.quantization),
        on_disk=stage.on_disk,
        hnsw_config=models.HnswConfigDiff(m=0),
    )


def stored_passage_stage(
    info: models.CollectionInfo,
    option: bool | PassageStage,
    current: PassageStage | None,
    full_dim: int,
    collection_name: str,
) -> PassageStage | None:
    """The passage stage an index takes from an existing collection (None: the collection records none).

    ``passages=True`` (or nothing) follows the collection; a :class:`PassageStage` must match its
    layout (name, width, cut), while its ``weight``, a search setting, stays the caller's.
    """
    metadata = getattr(info.config, "metadata", None) or {}
    stored_layout = metadata.get(PASSAGES_METADATA_KEY)
    if stored_layout is None:
        return None  # no passages, or not made here: layout_differences names what differs
    stored = passage_stage(PassageStage.from_layout(stored_layout), full_dim)
    assert stored is not None
    if not isinstance(option, PassageStage):
        return stored
    assert current is not None
    if current.layout() | {"weight": stored.weight} != stored.layout():
        raise CollectionMismatchError(
            f"collection {collection_name!r} stores passages as {stored.layout()}, this index asks for "
            f"{current.layout()}: open it with passages=True to follow the collection"
        )
    return current


def passage_formula(weight: float) -> models.FormulaQuery:
    """``(1 - weight) * $score[0] + weight * $score[1]``: the whole document's and the best passage's cosine."""
    return models.FormulaQuery(
        formula=models.SumExpression(
            sum=[
                models.MultExpression(mult=[1.0 - weight, "$score[0]"]),
                models.MultExpression(mult=[weight, "$score[1]"]),
            ]
        )
    )


def passage_rescore_query(
    query_vectors: Mapping[str, Sequence[float] | np.ndarray],
    candidates: models.Prefetch,
    full: DenseStage,
    passages: PassageStage,
    *,
    limit: int,
) -> dict[str, Any]:
    """Query API arguments that rescore ``candidates`` by the whole document and its best passage.

    Both branches rescore the same candidates and keep all of them, so every candidate has both
    scores when the formula mixes them; the engine runs the whole plan.
    """
    pool = candidates.limit if candidates.limit is not None else limit
    whole = models.Prefetch(prefetch=candidates, query=_as_list(query_vectors[full.name]), using=full.name, limit=pool)
    best = models.Prefetch(
        prefetch=candidates, query=[_as_list(query_vectors[passages.name])], using=passages.name, limit=pool
    )
    return {"prefetch": [whole, best], "query": passage_formula(passages.weight), "limit": limit}


def _as_list(vector: Sequence[float] | np.ndarray) -> list[float]:
    return vector.tolist() if isinstance(vector, np.ndarray) else list(vector)
