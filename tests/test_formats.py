"""On-disk layouts: the q4 codec against the spec, save/load round trips, and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from sse_integrations import ModelFormatError, SSEEncoder, SSEWeights
from sse_integrations.formats import dequantize_q4, quantize_q4
from tests.fixtures.build_fixture_models import pack_q4, unpack_q4_reference


def test_q4_codec_matches_the_spec_byte_for_byte():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(37, 64)).astype(np.float32)
    packed, scales = quantize_q4(embedding)
    assert packed.shape == (37, 32) and packed.dtype == np.uint8
    assert packed.tobytes() + scales.astype("<f4").tobytes() == pack_q4(embedding)
    np.testing.assert_array_equal(dequantize_q4(packed, scales), unpack_q4_reference(pack_q4(embedding), 64))


def test_q4_nibble_order_and_levels():
    # Row max 1.0: -1 -> code 0, +1 -> code 15, 0 -> round(7.5) = 8 (half to even).
    row = np.array([[-1.0, 1.0, 0.0, 1.0]], dtype=np.float32)
    packed, scales = quantize_q4(row)
    assert packed.tolist() == [[0x0F, 0x8F]]
    np.testing.assert_allclose(scales, [1.0 + 1e-8])
    np.testing.assert_allclose(dequantize_q4(packed, scales), [[-1.0, 1.0, 8 / 7.5 - 1, 1.0]], atol=1e-6)


def test_q4_error_is_bounded_by_half_a_step():
    rng = np.random.default_rng(1)
    embedding = rng.normal(size=(200, 512)).astype(np.float32)
    restored = dequantize_q4(*quantize_q4(embedding))
    step = np.abs(embedding).max(axis=1, keepdims=True) / 7.5
    assert np.all(np.abs(restored - embedding) <= step / 2 + 1e-6)


@pytest.mark.parametrize("source", ["fp32", "q4", "st_q4", "static_st6"])
@pytest.mark.parametrize("quantize", [None, "q4"])
def test_save_pretrained_round_trip(fixture_models, fixture_texts, tmp_path, source, quantize):
    encoder = SSEEncoder.from_pretrained(fixture_models[source]["path"])
    if quantize == "q4" and not encoder.weights.has_dyt:
        with pytest.raises(ValueError, match="StaticEmbedding"):
            encoder.save_pretrained(tmp_path, quantize=quantize)
        return
    written = encoder.save_pretrained(tmp_path, quantize=quantize)
    names = sorted(path.name for path in written)
    if quantize == "q4":
        assert names == ["embedding.q4_k_m.bin", "model_rest.safetensors", "tokenizer.json"]
        assert sorted(load_file(str(tmp_path / "model_rest.safetensors"))) == ["dyt.alpha", "dyt.beta", "dyt.bias"]
    else:
        assert names == ["model.safetensors", "tokenizer.json"]
        expected_tensors = (
            ["dyt.alpha", "dyt.beta", "dyt.bias", "embedding.weight"]
            if encoder.weights.has_dyt
            else ["embedding.weight"]
        )
        assert sorted(load_file(str(tmp_path / "model.safetensors"))) == expected_tensors
    reloaded = SSEEncoder.from_pretrained(tmp_path)
    original, again = encoder.encode(fixture_texts), reloaded.encode(fixture_texts)
    if quantize == "q4" and encoder.layout != "q4":
        assert float(np.mean(np.sum(original * again, axis=1))) > 0.98  # fresh 4-bit rounding
    else:
        np.testing.assert_allclose(again, original, atol=1e-6)


def test_requantising_a_q4_model_is_lossless(fixture_models, tmp_path):
    source = fixture_models["q4"]["path"]
    SSEEncoder.from_pretrained(source).save_pretrained(tmp_path, quantize="q4")
    assert (tmp_path / "embedding.q4_k_m.bin").read_bytes() == (source / "embedding.q4_k_m.bin").read_bytes()


def test_save_rejects_unknown_quantization(tiny_encoder, tmp_path):
    with pytest.raises(ValueError, match="quantize"):
        tiny_encoder.save_pretrained(tmp_path, quantize="q8")


# --- errors -------------------------------------------------------------------------------


def _copy(fixture_models, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(fixture_models[name]["path"], target)
    return target


def test_missing_folder_names_layouts(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither an existing folder nor a hub id"):
        SSEEncoder.from_pretrained(tmp_path / "nope")


def test_empty_folder_names_the_layouts_tried(tmp_path):
    with pytest.raises(ModelFormatError, match=r"model\.safetensors.*embedding\.q4_k_m\.bin.*Layouts tried: fp32"):
        SSEEncoder.from_pretrained(tmp_path)


@pytest.mark.parametrize("missing", ["model_rest.safetensors", "embedding.q4_k_m.bin"])
def test_q4_missing_one_file_names_it(fixture_models, tmp_path, missing):
    folder = _copy(fixture_models, "q4", tmp_path)
    (folder / missing).unlink()
    with pytest.raises(ModelFormatError, match=f"{missing} is missing.*Layouts tried"):
        SSEEncoder.from_pretrained(folder)


def test_missing_tokenizer_is_named(fixture_models, tmp_path):
    folder = _copy(fixture_models, "fp32", tmp_path)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelFormatError, match="tokenizer.json not found"):
        SSEEncoder.from_pretrained(folder)


@pytest.mark.parametrize("change", [-1, -260, +260, +3])
def test_truncated_or_oversized_q4_names_file_and_sizes(fixture_models, tmp_path, change):
    folder = _copy(fixture_models, "q4", tmp_path)
    path = folder / "embedding.q4_k_m.bin"
    data = path.read_bytes()
    path.write_bytes(data[:change] if change < 0 else data + b"\0" * change)
    with pytest.raises(ModelFormatError) as raised:
        SSEEncoder.from_pretrained(folder)
    message = str(raised.value)
    assert "embedding.q4_k_m.bin" in message
    assert f"has {len(data) + change} bytes, expected {len(data)}" in message
    assert ("truncated" if change < 0 else "oversized") in message


def test_tokenizer_ids_beyond_embedding_rows_fail_at_load(fixture_models, tmp_path):
    folder = _copy(fixture_models, "fp32", tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["embedding.weight"] = tensors["embedding.weight"][:50]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"ids up to \d+ but the embedding has only 50 rows"):
        SSEEncoder.from_pretrained(folder)


def test_dyt_shape_mismatch_is_reported(fixture_models, tmp_path):
    folder = _copy(fixture_models, "fp32", tmp_path)
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["dyt.beta"] = tensors["dyt.beta"][:10]
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"dyt.beta has shape \(10,\), expected \(512,\)"):
        SSEEncoder.from_pretrained(folder)


def test_model_rest_without_dyt_tensors(fixture_models, tmp_path):
    folder = _copy(fixture_models, "q4", tmp_path)
    save_file({"something.else": np.zeros(512, dtype=np.float32)}, str(folder / "model_rest.safetensors"))
    with pytest.raises(ModelFormatError, match="lacks tensors"):
        SSEEncoder.from_pretrained(folder)


def test_invalid_modules_json(fixture_models, tmp_path):
    folder = _copy(fixture_models, "st_q4", tmp_path)
    (folder / "modules.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="modules.json is not valid JSON"):
        SSEEncoder.from_pretrained(folder)


def test_pickle_files_are_never_read(fixture_models, tmp_path):
    # A pytorch_model.bin beside the weights is ignored: only safetensors and the raw q4 file load.
    folder = _copy(fixture_models, "q4", tmp_path)
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04not a pickle we would ever open")
    assert SSEEncoder.from_pretrained(folder).layout == "q4"


def test_weights_validate_shapes():
    with pytest.raises(ModelFormatError, match="DyT needs all of"):
        SSEWeights(np.zeros((4, 8), np.float32), alpha=np.ones(8, np.float32))
    with pytest.raises(ModelFormatError, match="must be 2-D"):
        SSEWeights(np.zeros(8, np.float32))


def test_sentence_transformers_reads_our_static_layout_identically(fixture_models, fixture_texts, tmp_path):
    """sentence-transformers saves a StaticEmbedding folder; we read it and match its vectors."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    fixture = fixture_models["static_st6"]
    tokenizer = Tokenizer.from_file(str(fixture["path"] / "tokenizer.json"))
    module = StaticEmbedding(tokenizer, embedding_weights=fixture["embedding"])
    SentenceTransformer(modules=[module], device="cpu").save(str(tmp_path / "st"))
    theirs = SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(fixture_texts[:9], convert_to_numpy=True)
    ours = SSEEncoder.from_pretrained(tmp_path / "st").encode(fixture_texts[:9], normalize=False)
    modules = json.loads((tmp_path / "st" / "modules.json").read_text())
    assert "StaticEmbedding" in modules[0]["type"]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


# --- stale layouts, file modes, checksums (issue 16, items 9, 10) -------------------------


@pytest.mark.parametrize("first, second", [("q4", None), (None, "q4")])
def test_saving_over_the_other_layout_removes_its_files(tiny_encoder, fixture_texts, tmp_path, first, second):
    tiny_encoder.save_pretrained(tmp_path, quantize=first)
    written = tiny_encoder.save_pretrained(tmp_path, quantize=second)
    weights = {"q4": {"embedding.q4_k_m.bin", "model_rest.safetensors"}, None: {"model.safetensors"}}
    on_disk = {path.name for path in tmp_path.iterdir()}
    assert on_disk == weights[second] | {"tokenizer.json", "sse_checksums.json"}
    assert {path.name for path in written} == weights[second] | {"tokenizer.json"}
    assert SSEEncoder.from_pretrained(tmp_path).layout == ("q4" if second else "fp32")


@pytest.mark.parametrize("quantize", [None, "q4"])
def test_saved_files_have_ordinary_modes(tiny_encoder, tmp_path, quantize):
    old = os.umask(0o022)
    try:
        tiny_encoder.save_pretrained(tmp_path, quantize=quantize)
    finally:
        os.umask(old)
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


@pytest.mark.parametrize(
    "quantize, target", [("q4", "embedding.q4_k_m.bin"), ("q4", "model_rest.safetensors"), (None, "model.safetensors")]
)
def test_corrupt_bytes_fail_the_recorded_checksum(tiny_encoder, tmp_path, quantize, target):
    tiny_encoder.save_pretrained(tmp_path, quantize=quantize)
    record = json.loads((tmp_path / "sse_checksums.json").read_text())["sha256"]
    assert record[target] == hashlib.sha256((tmp_path / target).read_bytes()).hexdigest()
    SSEEncoder.from_pretrained(tmp_path)  # intact: loads
    data = bytearray((tmp_path / target).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)[: len(data[middle : middle + 64])]
    data[middle] ^= 0xFF
    (tmp_path / target).write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match=rf"{re.escape(target)} does not match the sha256"):
        SSEEncoder.from_pretrained(tmp_path)


def test_a_folder_without_a_checksum_record_loads_unchecked(tiny_encoder, tmp_path):
    tiny_encoder.save_pretrained(tmp_path, quantize="q4")
    (tmp_path / "sse_checksums.json").unlink()
    assert SSEEncoder.from_pretrained(tmp_path).layout == "q4"


def test_the_bundled_model_carries_a_checksum_record_that_matches():
    from sse_integrations.encoder import DEFAULT_MODEL_DIR

    record = json.loads((DEFAULT_MODEL_DIR / "sse_checksums.json").read_text())["sha256"]
    assert set(record) == {"embedding.q4_k_m.bin", "model_rest.safetensors"}
    for name, digest in record.items():
        assert hashlib.sha256((DEFAULT_MODEL_DIR / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize("target", ["model_rest.safetensors", "tokenizer.json"])
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_truncated_or_corrupt_files_are_named(tiny_encoder, tmp_path, target, damage):
    tiny_encoder.save_pretrained(tmp_path, quantize="q4")
    (tmp_path / "sse_checksums.json").unlink()  # the parsers themselves must name the file
    data = (tmp_path / target).read_bytes()
    (tmp_path / target).write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 10)
    with pytest.raises(ModelFormatError, match=re.escape(target)):
        SSEEncoder.from_pretrained(tmp_path)
