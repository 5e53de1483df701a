"""The SSE torch module, for GPU encoding and for training.

State-dict names match the published checkpoints: ``embedding.weight``, ``dyt.alpha``,
``dyt.beta``, ``dyt.bias``. Importing this module imports torch; the CPU encoder never does.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .formats import SSEWeights


class SeparableDyT(nn.Module):
    """Per-dimension ``beta * tanh(alpha * x + bias)``."""

    def __init__(self, dim: int, alpha_init: float = 1.0) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((dim,), float(alpha_init)))
        self.beta = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.beta * torch.tanh(self.alpha * x + self.bias)


class SSE(nn.Module):
    """EmbeddingBag(mean) over token ids followed by SeparableDyT.

    ``forward(input_ids, offsets)`` takes a flat 1-D id tensor and the start of each bag, like
    ``nn.EmbeddingBag``; an empty bag pools to zeros. ``dyt=False`` builds a plain
    StaticEmbedding (identity normalisation).
    """

    def __init__(self, vocab_size: int, dim: int = 512, *, dyt: bool = True) -> None:
        super().__init__()
        self.embedding = nn.EmbeddingBag(vocab_size, dim, mode="mean")
        self.dyt = SeparableDyT(dim) if dyt else None

    def forward(self, input_ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        pooled = self.embedding(input_ids, offsets)
        return self.dyt(pooled) if self.dyt is not None else pooled

    @classmethod
    def from_weights(cls, weights: SSEWeights) -> SSE:
        module = cls(weights.vocab_size, weights.dim, dyt=weights.has_dyt)
        state = {"embedding.weight": torch.from_numpy(np.ascontiguousarray(weights.embedding))}
        if weights.has_dyt:
            state.update(
                {
                    f"dyt.{name}": torch.from_numpy(np.ascontiguousarray(value))
                    for name, value in zip(("alpha", "beta", "bias"), weights.dyt)
                }
            )
        module.load_state_dict(state)
        return module

    def to_weights(self) -> SSEWeights:
        """Detached float32 numpy copies of the parameters."""

        def to_numpy(tensor: torch.Tensor) -> np.ndarray:
            return tensor.detach().float().cpu().numpy().copy()

        if self.dyt is None:
            return SSEWeights(to_numpy(self.embedding.weight))
        return SSEWeights(
            to_numpy(self.embedding.weight), to_numpy(self.dyt.alpha), to_numpy(self.dyt.beta), to_numpy(self.dyt.bias)
        )
