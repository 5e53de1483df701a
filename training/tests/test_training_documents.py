"""Training-only material of the v2 build: the pinned package list and the catalogue readers."""

from __future__ import annotations

import importlib
import json
import random
import zipfile

import document_training as docs
import japanese_catalogues as catalogues
import japanese_readmes as readmes
import numpy as np


def test_no_training_only_package_is_in_the_dev_set_list():
    held = {readmes.normalised_name(readmes.package_name(s)) for s in readmes.pinned_packages()}
    training = readmes.training_packages()
    assert training, "the training-only list is empty"
    assert len(set(training)) == len(training)
    for spec in training:
        assert spec.startswith(("pypi:", "npm:")) and ("==" in spec or "@" in spec.split(":", 1)[1][1:]), spec
        assert readmes.normalised_name(readmes.package_name(spec)) not in held, spec


PO = r"""
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: app/views.py:10 app/other.py:3
msgid "Save the file"
msgstr "ファイルを保存します"

#: app/views.py:12
msgid "One item"
msgid_plural "%d items"
msgstr[0] "%d 個の項目"

#: app/models.py:1
msgid "Untranslated"
msgstr ""

#: app/models.py:2
msgid ""
"A long "
"message"
msgstr ""
"長い"
"メッセージ"
"""


def test_parse_po_keeps_translated_entries_with_their_first_source_file():
    assert catalogues.parse_po(PO) == [
        ("app/views.py", "ファイルを保存します"),
        ("app/views.py", "%d 個の項目"),
        ("app/models.py", "長いメッセージ"),
    ]


def test_string_page_pairs_query_a_page_by_keywords_of_one_of_its_strings():
    strings = [f"オプション --opt{i} を付けると file{i}.txt を保存します" for i in range(60)]
    pairs = docs.string_page_pairs([("app", strings)], random.Random(0), "strings", page_chars=200)
    assert pairs and {p.source for p in pairs} == {"strings"}
    for pair in pairs:
        assert pair.group == "strings:app"
        assert all(term in pair.document for term in pair.query.split())
        assert len(pair.document) < 200 + 40


def test_bm25_negatives_are_lexically_close_documents_other_than_the_positive():
    from sse_integrations import SSEEncoder

    tokenizer = SSEEncoder.from_pretrained().tokenizer
    sections = [
        "サーバーのポートを --port で指定します。既定は 8080 です。",
        "サーバーのホスト名を設定ファイルに書きます。",
        "画像を PNG で保存します。",
        "ログの出力先を変更します。",
    ]
    pairs = [docs.Pair(f"query {i}", text, "g", "readme") for i, text in enumerate(sections)]
    pairs[0] = docs.Pair("サーバー ポート", sections[0], "g", "readme")
    mined = docs.bm25_negatives(pairs, list(range(len(pairs))), tokenizer, depth=2)
    assert mined[0][0] == sections[1]
    assert all(sections[number] not in negatives for number, negatives in mined.items())
    # A document scoring as high as the positive is left out (likely an unlabelled positive).
    twin = [docs.Pair("サーバー ポート", sections[0], "g", "readme"), docs.Pair("x", sections[0] + " ", "g", "readme")]
    assert docs.bm25_negatives(twin, [0, 1], tokenizer, depth=2).get(0) is None


def test_structure_distillation_is_zero_when_the_student_matches_the_teacher():
    import torch

    generator = torch.Generator().manual_seed(0)
    teacher = torch.nn.functional.normalize(torch.randn(8, 16, generator=generator), dim=1)
    same = docs.matryoshka_structure(teacher * 3.0, teacher, 0.05, 0.05, ((16, 1.0),))
    assert same.item() < 1e-5
    other = docs.matryoshka_structure(
        torch.randn(8, 16, generator=generator), teacher, 0.05, 0.05, ((8, 1.0), (16, 1.0))
    )
    assert other.item() > 0.01


class _FixedEncoder:
    """Stands in for the mE5 engine in TeacherCache.fill: a fixed vector per text."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def query(self, texts):
        import numpy as np

        return np.array([self.vectors[t] for t in texts])

    passage = query


def test_teacher_ranked_passages_follow_the_teacher_scores_without_the_positive(tmp_path):
    vectors = {
        "q0": [1.0, 0.0, 0.0],
        "q1": [0.0, 1.0, 0.0],
        "d0": [0.9, 0.1, 0.0],
        "d1": [0.1, 0.9, 0.0],
        "d2": [0.7, 0.7, 0.0],
        "d3": [0.0, 0.0, 1.0],
    }
    cache = docs.TeacherCache(tmp_path / "teacher")
    encoder = _FixedEncoder(vectors)
    cache.fill(encoder, "query", ["q0", "q1"])
    cache.fill(encoder, "passage", ["d0", "d1", "d2", "d3"])
    pairs = [docs.Pair(f"q{i}", f"d{i}", "g", "readme") for i in range(2)] + [
        docs.Pair("q0", "d2", "g", "readme"),
        docs.Pair("q1", "d3", "g", "readme"),
    ]
    ranked = docs.teacher_ranked_passages(pairs, [0, 1, 2, 3], cache, depth=2)
    assert ranked[0] == ["d2", "d1"]
    assert ranked[1] == ["d2", "d0"]
    assert ranked[2] == ["d0", "d1"]  # its own document d2 left out
    assert ranked[3][0] == "d1"


def test_the_4bit_pull_covers_every_row_the_step_used():
    import pytest
    from tokenizers import Tokenizer

    from sse_integrations.encoder import DEFAULT_MODEL_DIR

    tokenizer = Tokenizer.from_file(str(DEFAULT_MODEL_DIR / "tokenizer.json"))
    anchor = "猫が窓の外を見ている。"
    query, document = "インストール方法", "pip install で入れます。"
    bags = docs.Bags(tokenizer, [anchor, query, document])
    ids = {name: set(bags.batch([text])[0].tolist()) for name, text in (("anchor", anchor), ("query", query))}
    step = set(docs.rows_to_pull("step", bags, [query, document, anchor], [document], 32768).tolist())
    distilled = set(docs.rows_to_pull("distilled", bags, [query, document, anchor], [document], 32768).tolist())
    assert ids["anchor"] <= step and ids["query"] <= step
    anchor_only = ids["anchor"] - set(bags.batch([document])[0].tolist())
    assert anchor_only and anchor_only.isdisjoint(distilled)
    assert len(docs.rows_to_pull("table", bags, [], [], 32768)) == 32768
    with pytest.raises(ValueError, match="quantisation_pull_scope"):
        docs.rows_to_pull("rows", bags, [], [], 32768)


def test_prefix_agreement_is_zero_when_the_prefix_ranks_as_the_full_vector():
    import torch

    generator = torch.Generator().manual_seed(0)
    head = torch.randn(6, 8, generator=generator)
    queries, documents = torch.cat([head, torch.zeros(6, 8)], dim=1), torch.cat([head * 2, torch.zeros(6, 8)], dim=1)
    assert docs.prefix_agreement(queries, documents, 0.05, ((8, 1.0),)).item() < 1e-6
    tails = torch.randn(6, 8, generator=generator) * 3
    queries = torch.cat([head, tails], dim=1).requires_grad_()
    loss = docs.prefix_agreement(queries, torch.cat([head, -tails], dim=1), 0.05, ((8, 1.0),), detached=True)
    assert loss.item() > 0.01
    loss.backward()
    # Detached: the full-vector ranking is the target, so only the prefix (first 8 dims) learns.
    assert queries.grad[:, 8:].abs().max().item() == 0.0
    assert queries.grad[:, :8].abs().max().item() > 0.0


def test_the_dyt_tail_learns_at_its_own_rate():
    import torch

    from sse_integrations.model import SeparableDyT

    def one_step(config):
        torch.manual_seed(0)
        dyt = SeparableDyT(16)
        optimiser = torch.optim.Adam(dyt.parameters(), lr=config.dyt_learning_rate)
        start = [p.detach().clone() for p in dyt.parameters()]
        (dyt(torch.randn(4, 16)) ** 2).sum().backward()
        docs.step_dyt(dyt, optimiser, config)
        return [p.detach() - s for p, s in zip(dyt.parameters(), start)]

    everywhere = one_step(docs.DocumentTrainConfig(dyt_learning_rate=1e-2))
    tail_slow = one_step(
        docs.DocumentTrainConfig(dyt_learning_rate=1e-2, dyt_tail_start=6, dyt_tail_learning_rate=1e-4)
    )
    for full, split in zip(everywhere, tail_slow):
        assert torch.equal(full[:6], split[:6])
        assert torch.allclose(split[6:], full[6:] / 100, rtol=1e-3, atol=1e-9)
        assert full[6:].abs().max().item() > 0.0
    beta_only = one_step(
        docs.DocumentTrainConfig(
            dyt_learning_rate=1e-2, dyt_tail_start=6, dyt_tail_learning_rate=1e-4, dyt_tail_parameters="beta"
        )
    )
    alpha, beta, bias = beta_only
    assert torch.equal(alpha, everywhere[0]) and torch.equal(bias, everywhere[2])
    assert torch.allclose(beta[6:], everywhere[1][6:] / 100, rtol=1e-3, atol=1e-9)


def test_the_lexical_mix_leaves_the_teacher_alone_at_zero_and_moves_to_bm25_with_weight():
    import numpy as np
    import torch

    teacher = torch.tensor([[0.82, 0.80, 0.79], [0.70, 0.75, 0.72]])
    bm25 = np.array([[0.0, 9.0, 1.0], [5.0, 0.0, 0.0]])
    assert torch.equal(docs.lexical_mix(teacher, bm25, 0.0), teacher)
    mixed = docs.lexical_mix(teacher, bm25, 2.0)
    assert mixed.argmax(dim=1).tolist() == [1, 0]
    # The same BM25 row ten times larger mixes in the same way: only its ranking shape counts.
    assert torch.allclose(docs.lexical_mix(teacher, bm25 * 10, 2.0), mixed, atol=1e-5)


def test_the_teacher_to_student_map_recovers_a_linear_relation_up_to_the_norm():
    rng = np.random.default_rng(0)
    teacher = rng.normal(size=(400, 6))
    truth = rng.normal(size=(6, 9))
    student = (teacher @ truth) * rng.uniform(0.5, 3.0, size=(400, 1))  # scale per text is dropped
    mapped = teacher @ docs.teacher_to_student_map(teacher, student, ridge=1e-6)
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    expected = student / np.linalg.norm(student, axis=1, keepdims=True)
    assert np.mean(np.sum(mapped * expected, axis=1)) > 0.97


def test_chunk_targets_keep_only_chunks_the_teacher_encoded_and_need_an_anchor_to_fit_on(tmp_path):
    import pytest

    vectors = {"a0": [1.0, 0.0], "a1": [0.0, 1.0], "a2": [1.0, 1.0], "c0": [2.0, 0.0], "c1": [0.0, 3.0]}
    second_teacher = _FixedEncoder({text: [1.0, *vector] for text, vector in vectors.items()})
    second_teacher.encode = second_teacher.query
    cache = docs.TeacherCache(tmp_path / "teacher")
    with pytest.raises(ValueError, match="anchor sentences"):
        docs.chunk_regression_targets(cache, second_teacher, ["c0"], ["a0"], np.ones((1, 4), np.float32))
    cache.fill(_FixedEncoder(vectors), "query", ["a0", "a1", "a2", "c0", "c1"])
    anchor = np.array([[1, 0, 0, 0], [0, 2, 0, 0], [1, 2, 0, 0]], np.float32)
    kept, targets = docs.chunk_regression_targets(
        cache, second_teacher, ["c0", "missing", "c1"], ["a0", "a1", "a2"], anchor
    )
    assert kept == ["c0", "c1"]
    assert targets.shape == (2, 4) and targets.dtype == np.float32
    assert np.argmax(targets[0]) == 0 and np.argmax(targets[1]) == 1


def test_documentation_chunks_join_whole_sentences_of_training_packages_only():
    train = next(f"pkg{n}" for n in range(100) if readmes.split_of(f"pkg{n}") == "train")
    held = next(f"pkg{n}" for n in range(100) if readmes.split_of(f"pkg{n}") == "test")
    text = "設定ファイルを読みます。" * 3 + "\n--verbose で詳しく表示します。\n" + "長い文" * 70 + "。"
    sections = {
        train: [readmes.Section(train, "h", text)],
        held: [readmes.Section(held, "h", "これはテスト用の文書です。")],
    }
    chunks = docs.documentation_chunks(sections, limit=40)
    assert chunks[0] == "設定ファイルを読みます。 設定ファイルを読みます。 設定ファイルを読みます。"
    assert chunks[1] == "--verbose で詳しく表示します。"
    assert chunks[2] == "長い文" * 70 + "。"  # longer than the limit: a chunk of its own, not cut
    assert len(chunks) == 3  # nothing of the test package
    assert "これはテスト用の文書です。" in docs.documentation_chunks(sections, all_train=True, limit=40)


def test_package_shares_are_nested_and_about_their_size():
    names = [f"package-{n}" for n in range(2_000)]
    half = {name for name in names if docs.in_package_share(name, 0.5)}
    quarter = {name for name in names if docs.in_package_share(name, 0.25)}
    assert quarter <= half
    assert 900 < len(half) < 1_100 and 400 < len(quarter) < 600
    assert all(docs.in_package_share(name, 1.0) for name in names)


def test_the_package_finder_keeps_japanese_permissive_pure_wheels_only(monkeypatch):
    import io
    import json

    finder = importlib.import_module("find_japanese_packages")
    japanese = "このパッケージはファイルを読み込んで設定を表示します。" * 10
    chinese = "这个软件包读取文件并显示设置。" * 20
    projects = {
        "ja-tool": (japanese, "MIT", "ja_tool-1.0-py3-none-any.whl"),
        "zh-tool": (chinese, "MIT", "zh_tool-1.0-py3-none-any.whl"),
        "gpl-tool": (japanese, "GPL-3.0", "gpl_tool-1.0-py3-none-any.whl"),
        "native-tool": (japanese, "MIT", "native_tool-1.0-cp311-cp311-linux_x86_64.whl"),
    }

    def fake_urlopen(url, timeout):
        name = url.rstrip("/").split("/")[-2]
        if name not in projects:
            raise OSError("404")
        description, licence, wheel = projects[name]
        body = {
            "info": {"name": name, "version": "1.0", "description": description, "license": licence},
            "urls": [{"filename": wheel}],
        }
        return io.BytesIO(json.dumps(body).encode())

    monkeypatch.setattr(finder.urllib.request, "urlopen", fake_urlopen)
    assert finder.candidate("ja-tool", 150) == ("ja-tool", "1.0", japanese)
    assert finder.candidate("zh-tool", 150) is None  # no kana
    assert finder.candidate("gpl-tool", 150) is None
    assert finder.candidate("native-tool", 150) is None
    assert finder.candidate("missing", 150) is None
    assert finder.candidate("ja-tool", 10_000) is None


DOCSTRING_MODULE = '''
def load_config(path: str, *, strict: bool = True):
    """設定ファイルを読み込み、検証した結果を
    辞書で返す。見つからないときは既定値を使う。

    Args:
        path (str): 読み込む設定ファイルのパス。相対パスは作業ディレクトリから解決する。
        strict (bool): True なら未知のキーをエラーにする。False なら警告だけ出して読み飛ばす。
    """


class Cache:
    """読み込んだ設定を覚えておくキャッシュ。

    同じパスを二度読まないように、最後に読んだ時刻と内容を保持する。期限が切れたら読み直す。
    時刻はモノトニック時計で測るので、システム時計を戻しても期限は正しく判定される。
    容量を超えたときは最も古く使われた項目から捨て、捨てた件数は統計として数えておく。
    """


def english_only(x):
    """Return x unchanged: an English docstring long enough to pass the length bound but with no Japanese at all."""
'''


def test_docstring_sections_use_the_summary_as_heading_and_the_signature_and_rest_as_text(tmp_path):
    path = tmp_path / "sample_tool-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr("sample_tool/config.py", DOCSTRING_MODULE)
        wheel.writestr("sample_tool/broken.py", "def (:\n")
    sections = readmes.docstring_sections(path, "sample-tool")
    assert [s.heading for s in sections] == [
        "設定ファイルを読み込み、検証した結果を辞書で返す。",
        "読み込んだ設定を覚えておくキャッシュ。",
    ]
    function, cls = sections
    assert function.package == "sample-tool"
    assert function.text.splitlines()[:2] == [
        "load_config(path: str, *, strict: bool=True)",
        "見つからないときは既定値を使う。",
    ]
    assert "path (str): 読み込む設定ファイルのパス。" in function.text
    assert cls.text.startswith("class Cache\n同じパスを二度読まないように")
    assert readmes.docstring_sections(path, "sample-tool", limit=1) == sections[:1]
    assert readmes.docstring_sections(tmp_path / "sample-tool-2.0.tgz", "sample-tool") == []


def test_split_summary_joins_wrapped_japanese_without_spaces_and_latin_with_one():
    assert readmes.split_summary("設定を\n読む。\n\n詳細") == ("設定を読む。", "詳細")
    assert readmes.split_summary("Config を\nload する。残り") == ("Config を load する。", "残り")
    assert readmes.split_summary("句点なしの要約") == ("句点なしの要約", "")


def test_sections_sharing_a_long_line_with_the_document_dev_set_are_dropped(tmp_path):
    build = importlib.import_module("build_default_model")
    held = "この行は評価用の文書と同じ三十文字以上の長さを持つ一行です。"
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "d1", "text": f"見出し\n{held}"}, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    copy = readmes.Section("a", "h", f"前置き\n{held}")
    own = readmes.Section("a", "h2", "評価用の文書にはない本文です。" * 3)
    short = readmes.Section("b", "h", "見出し\n別の本文")  # shares only a line under 30 characters
    assert build.without_held_lines({"a": [copy, own], "b": [short]}, tmp_path) == {"a": [own], "b": [short]}
