"""The SSE torch module: reference tensor names, conversion both ways, same vectors as numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sse_integrations import SSEEncoder
from sse_integrations.model import SSE


def test_state_dict_names_match_the_published_checkpoints():
    assert sorted(SSE(10, 8).state_dict()) == ["dyt.alpha", "dyt.beta", "dyt.bias", "embedding.weight"]
    assert sorted(SSE(10, 8, dyt=False).state_dict()) == ["embedding.weight"]


@pytest.mark.parametrize("layout", ["fp32", "static_st6"])
def test_weights_round_trip(fixture_models, layout):
    weights = SSEEncoder.from_pretrained(fixture_models[layout]["path"]).weights
    again = SSE.from_weights(weights).to_weights()
    for original, restored in zip((weights.embedding, *weights.dyt), (again.embedding, *again.dyt)):
        if original is None:
            assert restored is None
        else:
            np.testing.assert_array_equal(original, restored)


def test_forward_is_embeddingbag_mean_then_dyt(fixture_models):
    weights = SSEEncoder.from_pretrained(fixture_models["fp32"]["path"]).weights
    module = SSE.from_weights(weights)
    ids = torch.tensor([3, 5, 7, 2])
    offsets = torch.tensor([0, 3, 3])  # bags [3,5,7], [], [2]
    with torch.no_grad():
        out = module(ids, offsets).numpy()
    mean = weights.embedding[[3, 5, 7]].mean(axis=0)
    zeros = np.zeros(weights.dim, np.float32)
    for row, pooled in zip(out, (mean, zeros, weights.embedding[2])):
        np.testing.assert_allclose(row, weights.beta * np.tanh(weights.alpha * pooled + weights.bias), atol=1e-6)


def test_trainable_and_back_to_an_encoder(fixture_models, fixture_texts, tmp_path):
    encoder = SSEEncoder.from_pretrained(fixture_models["fp32"]["path"])
    module = encoder.to_torch()
    optimiser = torch.optim.SGD(module.parameters(), lr=0.1)
    module(torch.tensor([1, 2, 3]), torch.tensor([0])).sum().backward()
    optimiser.step()
    trained = SSEEncoder(encoder.tokenizer, module.to_weights())
    trained.save_pretrained(tmp_path, quantize="q4")
    reloaded = SSEEncoder.from_pretrained(tmp_path)
    assert reloaded.layout == "q4"
    assert not np.allclose(reloaded.weights.alpha, encoder.weights.alpha)
    assert reloaded.encode(fixture_texts).shape == (len(fixture_texts), 512)
