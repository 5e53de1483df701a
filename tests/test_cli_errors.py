"""Every user error the CLI can meet ends in one line on stderr naming the problem, and exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sse_integrations import SSEEncoder
from sse_integrations.cli import build_parser, main
from sse_integrations.qdrant import MatryoshkaIndex

REPO = Path(__file__).resolve().parent.parent


def run_cli(args: list[str], capsys) -> str:
    """Run in-process; assert exit code 2 and a single line on stderr; return that line."""
    assert main(args) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def run_script(args: list[str], stdin: bytes = b"") -> str:
    """The same through a fresh interpreter, where a traceback would really be printed."""
    completed = subprocess.run(
        [sys.executable, "-m", "sse_integrations.cli", *args], input=stdin, capture_output=True, timeout=120
    )
    err = completed.stderr.decode("utf-8", "replace")
    assert completed.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture()
def docs(tmp_path) -> Path:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "text": "猫が寝ている"}\n{"id": "b", "text": "犬が走る"}\n', encoding="utf-8")
    return path


def index_args(tmp_path: Path, model: Path) -> list[str]:
    return ["--collection", "c", "--qdrant-path", str(tmp_path / "qdrant"), "--model", str(model)]


def test_qdrant_path_held_by_another_index(docs, tmp_path, tiny_model_path, capsys):
    # The embedded engine allows one open index per collection folder.
    holder = MatryoshkaIndex(tmp_path / "qdrant", "c", SSEEncoder.from_pretrained(tiny_model_path))
    holder.add_texts(["猫が寝ている"], ids=["held"])  # the shard exists and is open
    try:
        line = run_cli(["index", str(docs), *index_args(tmp_path, tiny_model_path)], capsys)
    finally:
        holder.close()
    assert "in use by another process" in line and str(tmp_path / "qdrant") in line


def test_qdrant_url_without_a_server(docs, tiny_model_path):
    # Port 9 (discard) has no listener here: the connection is refused at once.
    url = "http://127.0.0.1:9"
    line = run_script(["index", str(docs), "--collection", "c", "--qdrant-url", url, "--model", str(tiny_model_path)])
    assert f"cannot reach a Qdrant server at {url}" in line


@pytest.mark.parametrize("target", ["model_rest.safetensors", "tokenizer.json"])
def test_truncated_model_file_is_named(tiny_model_path, tmp_path, capsys, target):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    data = (model / target).read_bytes()
    (model / target).write_bytes(data[: len(data) // 2])
    line = run_cli(["encode", "猫", "--model", str(model)], capsys)
    assert target in line


def test_ctrl_c_during_index_gives_the_resume_hint(docs, tmp_path, tiny_model_path, capsys, monkeypatch):
    from sse_integrations.qdrant import MatryoshkaIndex

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MatryoshkaIndex, "add_texts", interrupted)
    line = run_cli(["index", str(docs), *index_args(tmp_path, tiny_model_path)], capsys)
    assert "interrupted" in line and "run the same command again to resume" in line


def test_invalid_utf8_in_a_text_file_names_it(tmp_path, tiny_model_path, capsys):
    (tmp_path / "bad.txt").write_bytes(b"\xe7\x8c\xab\xff")
    line = run_cli(["index", str(tmp_path / "bad.txt"), *index_args(tmp_path, tiny_model_path)], capsys)
    assert "bad.txt" in line and "not valid UTF-8" in line
    assert not (tmp_path / "qdrant").exists()


def test_invalid_utf8_on_encode_stdin_names_the_line(tiny_model_path):
    line = run_script(["encode", "--model", str(tiny_model_path)], stdin="猫\n".encode() + b"\xff\n")
    assert "stdin line 2: not valid UTF-8" in line


def test_lone_surrogate_names_the_place_and_promises_no_resume(tmp_path, tiny_model_path, capsys):
    (tmp_path / "s.jsonl").write_text('{"text": "ok"}\n{"text": "\\ud800"}\n', encoding="utf-8")
    line = run_cli(["index", str(tmp_path / "s.jsonl"), *index_args(tmp_path, tiny_model_path)], capsys)
    assert "s.jsonl:2" in line and "lone surrogate" in line and "resume" not in line
    line = run_cli(["encode", "ok", "\ud800", "--model", str(tiny_model_path)], capsys)
    assert "texts[1] holds a lone surrogate" in line


def test_empty_jsonl_says_no_documents(tmp_path, tiny_model_path, capsys):
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    line = run_cli(["index", str(tmp_path / "empty.jsonl"), *index_args(tmp_path, tiny_model_path)], capsys)
    assert "no documents" in line and "empty.jsonl" in line


def test_search_on_a_missing_path_creates_nothing(tmp_path, tiny_model_path, capsys):
    missing = tmp_path / "nowhere"
    line = run_cli(["search", "猫", "--collection", "c", "--qdrant-path", str(missing)], capsys)
    assert str(missing) in line and not missing.exists()


# --- polish (item 12) ----------------------------------------------------------------------


def test_index_prints_no_progress_bar_off_a_terminal(tmp_path, tiny_model_path, capsys):
    rows = [json.dumps({"id": str(i), "text": f"猫が{i}回鳴いた"}, ensure_ascii=False) for i in range(12)]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    args = ["index", str(tmp_path / "d.jsonl"), *index_args(tmp_path, tiny_model_path), "--batch-size", "1"]
    assert main([*args, "--sparse"]) == 0
    captured = capsys.readouterr()
    assert "\r" not in captured.err and "\r" not in captured.out
    assert "sparse" in captured.out.splitlines()[-1]


def _option_help(command: str, flag: str) -> str | None:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    sub = subparsers.choices[command]
    return next(a.help for a in sub._actions if flag in a.option_strings)


@pytest.mark.parametrize(
    "command, flag",
    [
        ("search", "--limit"),
        ("demo", "--limit"),
        ("index", "--batch-size"),
        ("encode", "--batch-size"),
        ("info", "--revision"),
    ],
)
def test_options_have_help(command, flag):
    assert _option_help(command, flag)


def test_top_level_help_shows_no_rst_markup():
    assert "``" not in build_parser().format_help()


def test_crlf_on_stdin_is_a_line_ending(tiny_model_path):
    completed = subprocess.run(
        [sys.executable, "-m", "sse_integrations.cli", "encode", "--model", str(tiny_model_path)],
        input="猫\r\n犬\n".encode(),
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert [json.loads(line)["text"] for line in completed.stdout.decode().splitlines()] == ["猫", "犬"]


def test_readme_outputs_are_ignored_by_git():
    ignored = (REPO / ".gitignore").read_text().split()
    assert {"chroma_db/", "my_model/", "qdrant_data/"} <= set(ignored)


def test_qdrant_path_naming_a_file(docs, tmp_path, tiny_model_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for command in (["index", str(docs)], ["search", "猫"]):
        line = run_cli(
            [*command, "--collection", "c", "--qdrant-path", str(a_file), "--model", str(tiny_model_path)], capsys
        )
        assert f"{a_file} is a file, not a folder" in line, line
    assert a_file.read_text() == "not a folder"


def _overwrite(path: Path, at: int = 0, data: bytes = b"\xff\xfe\x00garbage") -> None:
    content = bytearray(path.read_bytes())
    content[at : at + len(data)] = data
    path.write_bytes(bytes(content))


def _truncate_segments(collection: Path) -> None:
    for path in (collection / "segments").rglob("*"):
        if path.is_file() and path.stat().st_size > 16:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


CORRUPTIONS = {
    "wal": lambda c: [_overwrite(p, 8) for p in (c / "wal").iterdir() if p.is_file()],
    "edge_config": lambda c: _overwrite(c / "edge_config.json"),
    "segments": _truncate_segments,
}


@pytest.mark.parametrize("damage", [*CORRUPTIONS, "manifest", "manifest_json"])
def test_corrupt_collection_files_are_one_line(docs, tmp_path, tiny_model_path, capsys, damage):
    assert main(["index", str(docs), *index_args(tmp_path, tiny_model_path), "--no-progress"]) == 0
    capsys.readouterr()
    collection = tmp_path / "qdrant" / "c"
    if damage == "manifest":
        _overwrite(collection / "sse_collection.json")
    elif damage == "manifest_json":
        (collection / "sse_collection.json").write_text('{"format": ', encoding="utf-8")
    else:
        CORRUPTIONS[damage](collection)
    for command in (["search", "猫"], ["index", str(docs)]):
        line = run_cli([*command, *index_args(tmp_path, tiny_model_path)], capsys)
        if damage.startswith("manifest"):
            assert f"{collection / 'sse_collection.json'} is damaged" in line, line
        else:
            assert f"the collection at {collection} is damaged" in line and "the engine said:" in line, line


def test_a_binary_file_in_a_folder_is_refused_unless_skip_bad(tmp_path, tiny_model_path, capsys):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("猫が寝ている", encoding="utf-8")
    (folder / "b.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    (folder / "c.md").write_text("犬が走る", encoding="utf-8")
    (folder / "d.txt").write_bytes(b"\xff\xd8\xff")
    line = run_cli(["index", str(folder), *index_args(tmp_path, tiny_model_path)], capsys)  # strict by default
    assert "b.txt" in line and "not valid UTF-8" in line
    assert main(["index", str(folder), *index_args(tmp_path, tiny_model_path), "--skip-bad", "--no-progress"]) == 0
    captured = capsys.readouterr()
    skipped = [line for line in captured.err.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == 2 and "b.txt" in skipped[0] and "d.txt" in skipped[1], captured.err
    assert "indexed 2 documents" in captured.out and "skipped 2 unreadable files" in captured.out, captured.out
    index = MatryoshkaIndex(tmp_path / "qdrant", "c", SSEEncoder.from_pretrained(tiny_model_path))
    assert index.count() == 2
    index.close()
