"""The commands' typed options: each body reads a frozen dataclass, never the argparse namespace.

A dataclass field without a matching flag fails in :meth:`CommandOptions.from_namespace` the
first time the command runs (and so in its tests), instead of falling back to a default.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import Self

    from ..encoder import SSEEncoder


@dataclass(frozen=True)
class CommandOptions:
    """The model every command loads: a folder or hub id (None = the bundled model), and a hub revision."""

    model: str | None
    revision: str | None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> Self:
        """The options of one command from its parsed arguments (every field must be a flag's dest)."""
        values = vars(args)
        return cls(**{field.name: values[field.name] for field in fields(cls)})

    def load_encoder(self) -> SSEEncoder:
        from ..encoder import SSEEncoder

        return SSEEncoder.from_pretrained(self.model, revision=self.revision)


@dataclass(frozen=True)
class FusionChoice:
    """How ``--mode hybrid`` fuses the dense and sparse lists (``MatryoshkaIndex`` keywords)."""

    fusion: str
    fusion_weights: tuple[float, float] | None
    rrf_k: int | None

    def fusion_keywords(self) -> dict[str, Any]:
        return {"fusion": self.fusion, "fusion_weights": self.fusion_weights, "rrf_k": self.rrf_k}


def add_model_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, help="model folder or hub id (default: the bundled model)")
    parser.add_argument("--revision", default=None, help="hub revision to pin (hub ids only)")


def _fusion_weights(text: str) -> tuple[float, float]:
    try:
        weights = tuple(float(part) for part in text.split(","))
    except ValueError:
        weights = ()
    if len(weights) != 2:
        raise argparse.ArgumentTypeError(f"expected two comma-separated weights DENSE,SPARSE, got {text!r}")
    return weights[0], weights[1]


def add_fusion_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fusion", choices=("rrf", "dbsf"), default="rrf", help="how --mode hybrid fuses the lists")
    parser.add_argument(
        "--fusion-weights",
        type=_fusion_weights,
        default=None,
        metavar="DENSE,SPARSE",
        help="weighted RRF, e.g. 1,0.3 (default: equal weights)",
    )
    parser.add_argument("--rrf-k", type=int, default=None, help="RRF rank constant (default: Qdrant's, 2)")
