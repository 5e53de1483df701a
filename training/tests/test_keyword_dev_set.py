"""training/build_keyword_dev_set.py on small made-up inputs (the real sources come from npm)."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest

from sse_integrations.evaluation import load_beir

SCRIPT = Path(__file__).resolve().parents[1] / "build_keyword_dev_set.py"
DOCUMENTS = [  # each with 3+ terms, so each becomes a query source
    "エディターでミニマップを表示するかどうかを制御します。既定では右端に表示されます。",
    "ターミナルのフォント サイズをピクセル単位で指定します。既定値はエディターと同じです。",
    "フォルダーを開くと、ワークスペースの設定ファイルが読み込まれます。変更は即座に反映されます。",
    "拡張機能の識別子は publisher.name の形式で指定します。大文字と小文字は区別されません。",
    "サーバーに接続できない場合は、プロキシ設定を確認してください。認証が必要な場合もあります。",
    "Markdown プレビューでダブルクリックするとエディターに切り替わります。この動作は無効にできます。",
]


@pytest.fixture(scope="module")
def builder():
    spec = importlib.util.spec_from_file_location("build_keyword_dev_set", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_synonym_package(folder: Path) -> Path:
    groups = [
        {
            "items": [
                {"midashi": "フォルダー", "expandControl": 0, "hyoukiYure": "代表表記"},
                {"midashi": "フォルダ", "expandControl": 0, "hyoukiYure": "異表記・表記ゆれ"},
                {"midashi": "folder", "expandControl": 0, "hyoukiYure": "アルファベット表記"},
            ]
        },
        {
            "items": [
                {"midashi": "サーバー", "expandControl": 0, "hyoukiYure": "代表表記"},
                {"midashi": "サーバ", "expandControl": 1, "hyoukiYure": "異表記・表記ゆれ"},
            ]
        },
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sudachi-synonyms-dictionary.json").write_text(json.dumps(groups, ensure_ascii=False), encoding="utf-8")
    return folder


def test_terms_are_runs_of_one_character_class(builder):
    assert builder.document_terms("拡張機能の識別子は publisher.name の形式で{0}指定します。") == [
        "拡張機能",
        "識別子",
        "publisher.name",
        "形式",
        "指定",
    ]


def test_synonyms_skip_latin_forms_and_restricted_ones(builder, tmp_path):
    synonyms = builder.read_synonyms(write_synonym_package(tmp_path / "syn"))
    assert synonyms == {"フォルダー": ["フォルダ"], "フォルダ": ["フォルダー"]}


def test_queries_come_from_their_document_and_the_build_is_seeded(builder, tmp_path):
    assert all(len(builder.document_terms(text)) >= 3 for text in DOCUMENTS)
    synonyms = builder.read_synonyms(write_synonym_package(tmp_path / "syn"))
    first = builder.build(DOCUMENTS, synonyms, random.Random(7))
    assert first == builder.build(DOCUMENTS, synonyms, random.Random(7))
    corpus, queries, qrels, _ = first
    assert set(queries) == set(qrels) and len(queries) == len(DOCUMENTS)
    for query_id, text in queries.items():
        source_terms = builder.document_terms(corpus[qrels[query_id]])
        terms = text.split(" ")
        assert 2 <= len(terms) <= 3 and len(set(terms)) == len(terms)
        for term in terms:
            assert term in source_terms or any(term in synonyms.get(original, []) for original in source_terms)


def test_written_folder_loads_as_beir_with_disjoint_halves(builder, tmp_path):
    corpus, queries, qrels, _ = builder.build(DOCUMENTS, {}, random.Random(1))
    builder.write_beir(tmp_path / "set", corpus, queries, qrels)
    dev, test = load_beir(tmp_path / "set", "dev", strict=True), load_beir(tmp_path / "set", "test", strict=True)
    assert len(dev.relevant_docs) == len(DOCUMENTS) // 2
    assert set(dev.relevant_docs).isdisjoint(test.relevant_docs)
    assert set(dev.relevant_docs) | set(test.relevant_docs) == set(queries)
    assert dev.corpus_texts == list(corpus.values())
