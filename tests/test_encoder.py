"""SSEEncoder: parity with an independent reference in every layout, Matryoshka, bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sse_integrations import MATRYOSHKA_DIMS, SSEEncoder
from tests.conftest import reference_embeddings
from tests.helpers import run_in_threads

LAYOUTS = ["fp32", "q4", "st_q4", "st_root", "static_old", "static_st6"]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dim", [None, *MATRYOSHKA_DIMS])
def test_parity_with_reference(fixture_models, fixture_texts, layout, dim):
    fixture = fixture_models[layout]
    encoder = SSEEncoder.from_pretrained(fixture["path"])
    got = encoder.encode(fixture_texts, truncate_dim=dim)
    expected = reference_embeddings(fixture, fixture_texts, dim)
    assert got.dtype == np.float32
    assert got.shape == (len(fixture_texts), dim or 512)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("layout", ["fp32", "static_st6"])
def test_parity_without_normalisation(fixture_models, fixture_texts, layout):
    fixture = fixture_models[layout]
    got = SSEEncoder.from_pretrained(fixture["path"]).encode(fixture_texts, normalize=False, truncate_dim=128)
    np.testing.assert_allclose(
        got, reference_embeddings(fixture, fixture_texts, 128, normalize=False), atol=1e-5, rtol=0
    )


def test_layouts_detected(fixture_models):
    expected = {
        "fp32": "fp32",
        "q4": "q4",
        "st_q4": "q4",
        "st_root": "fp32",
        "static_old": "static",
        "static_st6": "static",
    }
    for name, layout in expected.items():
        assert SSEEncoder.from_pretrained(fixture_models[name]["path"]).layout == layout


def test_empty_string_gives_the_dyt_of_a_zero_bag(fixture_models):
    # Whitespace-only text is whatever the tokenizer makes of it (Metaspace keeps a "▁"
    # piece); the parity tests cover it. Only a truly empty bag pools to zeros.
    weights = fixture_models["fp32"]["weights"]
    encoder = SSEEncoder.from_pretrained(fixture_models["fp32"]["path"])
    vectors = encoder.encode(["", ""], normalize=False)
    expected = weights.beta * np.tanh(weights.bias)
    np.testing.assert_allclose(vectors, [expected, expected], atol=1e-6)


def test_empty_string_on_static_model_is_the_zero_vector_not_nan(fixture_models):
    vectors = SSEEncoder.from_pretrained(fixture_models["static_st6"]["path"]).encode([""])
    assert np.all(vectors == 0)


def test_matryoshka_prefix_is_truncated_then_renormalised(tiny_encoder, fixture_texts):
    full = tiny_encoder.encode(fixture_texts[:4], normalize=False)
    short = tiny_encoder.encode(fixture_texts[:4], truncate_dim=64)
    np.testing.assert_allclose(short, full[:, :64] / np.linalg.norm(full[:, :64], axis=1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(short, axis=1), 1.0, atol=1e-6)


def test_default_truncate_dim_from_constructor(tiny_model_path):
    encoder = SSEEncoder.from_pretrained(tiny_model_path, truncate_dim=64)
    assert encoder.dim == 64 and encoder.full_dim == 512
    assert encoder.encode(["猫"]).shape == (1, 64)
    assert encoder.encode(["猫"], truncate_dim=256).shape == (1, 256)


def test_properties(tiny_encoder, fixture_models):
    assert tiny_encoder.dim == 512
    assert tiny_encoder.vocab_size == fixture_models["q4"]["embedding"].shape[0]
    assert tiny_encoder.matryoshka_dims == (32, 64, 128, 256, 512)


def test_batches_do_not_change_results(tiny_encoder, fixture_texts):
    whole = tiny_encoder.encode(fixture_texts)
    one_by_one = tiny_encoder.encode(fixture_texts, batch_size=1)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-6)


@pytest.mark.parametrize("layout", ["fp32", "q4", "static_st6"])
def test_one_text_is_bit_identical_to_its_row_in_a_batch(fixture_models, fixture_texts, layout):
    """A single text (a query) takes a shorter path; its vector must not differ from the batch's."""
    from sse_integrations.pooling import LONG_BAG

    encoder = SSEEncoder.from_pretrained(fixture_models[layout]["path"])
    long_text = " ".join(fixture_texts) * 20  # more than LONG_BAG pieces: the batch path
    assert len(encoder.tokenizer.encode(long_text, add_special_tokens=False).ids) > LONG_BAG
    texts = [*fixture_texts, "", long_text]
    for dim, normalize in ((None, True), (64, True), (128, False)):
        batch = encoder.encode(texts, truncate_dim=dim, normalize=normalize)
        one_by_one = np.vstack([encoder.encode([text], truncate_dim=dim, normalize=normalize) for text in texts])
        assert np.array_equal(batch, one_by_one), (dim, normalize)


def test_long_bag_threshold_does_not_change_results(tiny_encoder, monkeypatch, fixture_texts):
    import sse_integrations.encoder as encoder_module

    expected = tiny_encoder.encode(fixture_texts)
    monkeypatch.setattr(encoder_module, "_LONG_BAG", 0)  # every bag through the float64 branch
    np.testing.assert_allclose(tiny_encoder.encode(fixture_texts), expected, atol=1e-6)


def test_empty_list_gives_empty_array(tiny_encoder):
    assert tiny_encoder.encode([]).shape == (0, 512)
    assert tiny_encoder.encode([], truncate_dim=64).shape == (0, 64)


def test_accepts_tuples_and_generators(tiny_encoder):
    expected = tiny_encoder.encode(["猫", "犬"])
    np.testing.assert_array_equal(tiny_encoder.encode(("猫", "犬")), expected)
    np.testing.assert_array_equal(tiny_encoder.encode(text for text in ["猫", "犬"]), expected)


def test_show_progress(tiny_encoder, capsys):
    tiny_encoder.encode(["猫"] * 10, batch_size=3, show_progress=True)
    assert "Encoding" in capsys.readouterr().err


# --- bad input --------------------------------------------------------------------------


def test_bare_string_is_rejected(tiny_encoder):
    with pytest.raises(TypeError, match="bare str"):
        tiny_encoder.encode("猫が寝ている")


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["nested"]])
def test_non_string_element_names_its_index(tiny_encoder, bad):
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        tiny_encoder.encode(["ok", bad, "ok"])


@pytest.mark.parametrize("dim", [0, 100, 1024, -64])
def test_truncate_dim_outside_allowed_set_lists_them(tiny_encoder, dim):
    with pytest.raises(ValueError, match="allowed: 32, 64, 128, 256, 512"):
        tiny_encoder.encode(["猫"], truncate_dim=dim)
    with pytest.raises(ValueError, match="allowed"):
        SSEEncoder.from_pretrained(tiny_encoder.weight_files[0].parent, truncate_dim=dim)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5])
def test_bad_batch_size(tiny_encoder, batch_size):
    with pytest.raises(ValueError, match="batch_size"):
        tiny_encoder.encode(["猫"], batch_size=batch_size)


# --- concurrency ------------------------------------------------------------------------


def test_eight_threads_match_one_thread(tiny_encoder, fixture_texts):
    texts = [f"{text} {index}" for index in range(40) for text in fixture_texts[:4]] + fixture_texts
    expected = tiny_encoder.encode(texts, batch_size=16)
    results: dict[int, np.ndarray] = {}

    def work(worker: int) -> None:
        for _ in range(5):
            results[worker] = tiny_encoder.encode(texts, batch_size=16)

    run_in_threads(work)
    assert len(results) == 8
    for vectors in results.values():
        np.testing.assert_array_equal(vectors, expected)


# --- torch ------------------------------------------------------------------------------


def test_cpu_encoding_never_imports_torch(tiny_model_path):
    code = (
        "import sys; from sse_integrations import SSEEncoder; "
        f"e = SSEEncoder.from_pretrained({str(tiny_model_path)!r}); e.encode(['猫が寝ている']); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("layout", ["q4", "static_st6"])
def test_torch_path_matches_numpy_path(fixture_models, fixture_texts, layout):
    encoder = SSEEncoder.from_pretrained(fixture_models[layout]["path"])
    flat, lengths = encoder.tokenize(fixture_texts)
    via_torch = encoder._embed_ids_torch(flat, lengths, "cpu")
    expected = reference_embeddings(fixture_models[layout], fixture_texts, normalize=False)
    short = lengths < 1000
    np.testing.assert_allclose(via_torch[short], expected[short], atol=1e-5, rtol=0)
    # torch's EmbeddingBag sums in float32 one row after another: over the 20,000-token text
    # that drifts by ~1e-4, while the numpy path (pairwise summation) stays within 1e-6.
    np.testing.assert_allclose(via_torch[~short], expected[~short], atol=5e-4, rtol=0)
