"""training/japanese_readmes.py and build_document_dev_set.py on made-up packages (the real ones come from PyPI/npm)."""

from __future__ import annotations

import importlib
import io
import json
import tarfile
import zipfile
from pathlib import Path

import pytest

from sse_integrations.evaluation import load_beir

BODY = (
    "この節では設定ファイルの書き方を説明します。項目ごとに既定値と指定できる値の範囲を示します。"
    "値を変えたあとはサーバーを再起動してください。再起動しないと古い設定のまま動き続けます。"
    "分からない項目は既定値のままにしておけば問題ありません。"
)
README = f"""# sample-tool

[![PyPI](https://img.shields.io/pypi/v/x)](https://pypi.org/project/x)

## 概要

{BODY} 詳しくは [公式サイト](https://example.com) を見てください。

## 設定ファイルの書き方

`config.toml` に次のように書きます。{BODY}

```toml
# 見出しではありません
[server]
port = 8080
```

## 短い

短すぎる節は文書になりません。

Setext の見出し
---------------

{BODY} {BODY}
"""


@pytest.fixture(scope="module")
def readmes():
    return importlib.import_module("japanese_readmes")


@pytest.fixture(scope="module")
def builder(readmes):
    return importlib.import_module("build_document_dev_set")


def write_wheel(folder: Path, name: str, licence: str, readme: str) -> Path:
    path = folder / f"{name.replace('-', '_')}-1.0-py3-none-any.whl"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\nLicense: {licence}\n\n{readme}"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{name.replace('-', '_')}-1.0.dist-info/METADATA", metadata)
    return path


def write_npm(folder: Path, name: str, licence: str, readme: str) -> Path:
    path = folder / f"{name}-2.0.tgz"
    with tarfile.open(path, "w:gz") as archive:
        for member, text in (
            ("package/package.json", json.dumps({"name": name, "license": licence})),
            ("package/README.md", readme),
        ):
            data = text.encode("utf-8")
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_sections_keep_their_own_body_without_markup(readmes):
    sections = readmes.split_sections("sample-tool", README)
    assert [s.heading for s in sections] == ["概要", "設定ファイルの書き方", "Setext の見出し"]
    overview, config, setext = sections
    assert "img.shields.io" not in overview.text and "https://example.com" not in overview.text
    assert "公式サイト" in overview.text
    # A '#' comment inside a code fence is code, not a heading; the code stays in the section.
    assert "# 見出しではありません" in config.text and "port = 8080" in config.text
    assert "```" not in config.text
    assert "短すぎる" not in " ".join(s.text for s in sections)
    assert setext.text.count(BODY) == 2


def test_long_sections_are_cut_at_a_line_end(readmes):
    long_readme = "## 長い節\n\n" + "\n".join(f"{i}行目: {BODY}" for i in range(20))
    (section,) = readmes.split_sections("long", long_readme)
    assert len(section.text) <= readmes.MAX_SECTION_CHARS
    assert section.text.endswith(BODY)


def test_only_permissive_licences_are_read(readmes, tmp_path):
    write_wheel(tmp_path, "free-tool", "MIT", README)
    write_wheel(tmp_path, "closed-tool", "Proprietary", README)
    write_npm(tmp_path, "npm-tool", "Apache-2.0", README)
    specs = ["pypi:free-tool==1.0", "pypi:closed-tool==1.0", "npm:npm-tool@2.0"]
    by_package = readmes.read_package_sections(tmp_path, specs)
    assert sorted(by_package) == ["free-tool", "npm-tool"]


def test_the_split_depends_on_the_package_name_only(readmes):
    names = [f"package-{i}" for i in range(400)]
    splits = [readmes.split_of(name) for name in names]
    assert splits == [readmes.split_of(name) for name in names]
    share = {split: splits.count(split) / len(names) for split in ("train", "dev", "test")}
    assert 0.5 < share["train"] < 0.7 and 0.12 < share["dev"] < 0.28 and 0.12 < share["test"] < 0.28


def test_generic_headings_are_not_queries_but_their_sections_stay(readmes, builder, tmp_path):
    names = [f"pkg-{i}" for i in range(100)]
    held_out = [n for n in names if readmes.split_of(n) == "dev"][:2] + [
        n for n in names if readmes.split_of(n) == "test"
    ][:2]
    trained = next(n for n in (f"pkg-{i}" for i in range(100)) if readmes.split_of(n) == "train")
    by_package = {
        name: readmes.split_sections(name, README.replace("設定ファイルの書き方", f"設定ファイル{number}番の書き方"))
        for number, name in enumerate(held_out)
    }
    by_package[trained] = readmes.split_sections(trained, README.replace("設定ファイルの書き方", "訓練用の節"))
    corpus, queries, qrels = builder.build(by_package)
    # Every held-out section is a document; nothing of the training package is.
    assert len(corpus) == 3 * len(held_out) and not any(doc_id.startswith(trained) for doc_id in corpus)
    # 概要 and the setext heading occur in several packages: no query; the numbered ones do.
    assert sorted(queries.values()) == sorted(f"設定ファイル{n}番の書き方" for n in range(len(held_out)))
    for split, pairs in qrels.items():
        for query_id, doc_id in pairs.items():
            assert readmes.split_of(doc_id.split("#")[0]) == split
            assert queries[query_id] not in ("概要",)
    builder.write_beir(tmp_path / "set", corpus, queries, qrels)
    for split in ("dev", "test"):
        dataset = load_beir(tmp_path / "set", split, strict=True)
        assert dataset.corpus_texts == list(corpus.values())
        assert set(dataset.relevant_docs) == set(qrels[split])
