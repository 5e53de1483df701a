"""The `sse-integrations` command: info and encode, in-process and as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from sse_integrations.cli import main


def test_info_reports_layout_vocab_dims_and_size(tiny_model_path, capsys):
    assert main(["info", str(tiny_model_path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "q4"
    assert info["dim"] == 512 and info["matryoshka_dims"] == [32, 64, 128, 256, 512]
    q4_size = (tiny_model_path / "embedding.q4_k_m.bin").stat().st_size
    rest_size = (tiny_model_path / "model_rest.safetensors").stat().st_size
    assert info["vocab_size"] == q4_size // (512 // 2 + 4)
    assert info["weight_bytes"] == q4_size + rest_size


def test_info_text_output(tiny_model_path, capsys):
    assert main(["info", str(tiny_model_path)]) == 0
    out = capsys.readouterr().out
    assert "layout: q4" in out and "embedding.q4_k_m.bin" in out and "size on disk" in out


def test_encode_arguments_give_json_lines(tiny_encoder, tiny_model_path, capsys):
    assert main(["encode", "猫が寝ている", "犬が走る", "--model", str(tiny_model_path), "--dim", "64"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["猫が寝ている", "犬が走る"]
    expected = tiny_encoder.encode(["猫が寝ている", "犬が走る"], truncate_dim=64)
    np.testing.assert_allclose([line["embedding"] for line in lines], expected, atol=1e-6)


def test_encode_reads_stdin_through_the_console_script(tiny_encoder, tiny_model_path):
    script = shutil.which("sse-integrations", path=str(Path(sys.executable).parent))
    assert script, "console script not installed"
    result = subprocess.run(
        [script, "encode", "--model", str(tiny_model_path)],
        input="一行目\n二行目\n",
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == ["一行目", "二行目"]
    np.testing.assert_allclose(
        [line["embedding"] for line in lines], tiny_encoder.encode(["一行目", "二行目"]), atol=1e-6
    )


def test_bad_dim_is_reported_without_traceback(tiny_model_path, capsys):
    assert main(["encode", "x", "--dim", "100", "--model", str(tiny_model_path)]) == 2
    assert "allowed: 32, 64, 128, 256, 512" in capsys.readouterr().err


def test_missing_model_is_reported_without_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "neither an existing folder nor a hub id" in capsys.readouterr().err
