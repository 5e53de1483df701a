"""The bundled default model: loads offline, has the published shape, and behaves like a Japanese embedding."""

from __future__ import annotations

import math
import socket
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sse_integrations.encoder import DEFAULT_MODEL_DIR, SSEEncoder
from sse_integrations.evaluation import evaluate_embeddings, evaluate_rankings, load_beir
from sse_integrations.matryoshka import truncate_and_normalize

DEV_SUBSET = Path(__file__).parent / "data" / "tatoeba_ja_dev"
WEIGHT_FILES = ("embedding.q4_k_m.bin", "model_rest.safetensors")
MAX_WEIGHT_BYTES = 9_000_000

# Every test here loads the real bundled weights.
pytestmark = pytest.mark.integration

# (anchor, paraphrase, unrelated): written for this test, not taken from Tatoeba.
PARAPHRASE_TRIPLES = [
    ("猫がソファの上で寝ている。", "ソファで猫が眠っています。", "明日の会議は午後三時から始まります。"),
    ("東京は日本の首都です。", "日本の首都は東京だ。", "私は毎朝コーヒーを飲みます。"),
    ("この本はとても面白かった。", "その本はすごく面白かったです。", "駅までバスで二十分かかります。"),
    (
        "雨が降りそうだから傘を持って行きなさい。",
        "雨が降るかもしれないので傘を持っていって。",
        "彼はピアノを上手に弾く。",
    ),
    ("お腹が空いたので何か食べたい。", "腹が減ったから何か食べよう。", "この道をまっすぐ行くと病院があります。"),
    ("彼女は先週パリへ旅行した。", "先週、彼女はパリに旅行に行きました。", "水は百度で沸騰する。"),
]


@pytest.fixture(scope="module")
def model() -> SSEEncoder:
    return SSEEncoder.from_pretrained()


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the bundled model must load and encode without the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_bundled_files_and_size_on_disk() -> None:
    for name in (*WEIGHT_FILES, "tokenizer.json", "README.md"):
        assert (DEFAULT_MODEL_DIR / name).is_file(), name
    weight_bytes = sum((DEFAULT_MODEL_DIR / name).stat().st_size for name in WEIGHT_FILES)
    assert weight_bytes <= MAX_WEIGHT_BYTES
    # 32,768 rows x (512 / 2 code bytes + one float32 scale), exactly the published layout.
    assert (DEFAULT_MODEL_DIR / "embedding.q4_k_m.bin").stat().st_size == 32_768 * (512 // 2 + 4)


def test_shape_and_matryoshka_dims(model: SSEEncoder) -> None:
    assert model.layout == "q4"
    assert model.vocab_size == 32_768
    assert model.full_dim == 512
    assert model.tokenizer.get_vocab_size() == 32_768
    assert tuple(model.matryoshka_dims) == (32, 64, 128, 256, 512)
    vectors = model.encode(["今日は良い天気ですね。"])
    assert vectors.shape == (1, 512) and vectors.dtype == np.float32
    assert np.isclose(np.linalg.norm(vectors[0]), 1.0, atol=1e-5)
    for dim in model.matryoshka_dims:
        assert model.encode(["今日は良い天気ですね。"], truncate_dim=dim).shape == (1, dim)


def test_japanese_text_has_no_unknown_pieces(model: SSEEncoder) -> None:
    encoding = model.tokenizer.encode("ひらがな、カタカナ、漢字、ＡＢＣ、123。", add_special_tokens=False)
    assert 0 not in encoding.ids  # id 0 is <unk>


@pytest.mark.parametrize("dim", [512, 64])
def test_paraphrase_is_nearer_than_unrelated_sentence(model: SSEEncoder, dim: int) -> None:
    for anchor, paraphrase, unrelated in PARAPHRASE_TRIPLES:
        a, p, u = model.encode([anchor, paraphrase, unrelated], truncate_dim=dim)
        assert a @ p > a @ u, (anchor, float(a @ p), float(a @ u))


def char_bigram_bm25_rankings(
    corpus_ids: list[str], corpus: list[str], queries: dict[str, str]
) -> dict[str, list[str]]:
    """Okapi BM25 (k1=1.2, b=0.75) over character bigrams: the lexical baseline to beat."""

    def bigrams(text: str) -> list[str]:
        text = "".join(text.split())
        return [text[i : i + 2] for i in range(len(text) - 1)] or [text]

    bags = [Counter(bigrams(d)) for d in corpus]
    lengths = np.array([sum(b.values()) for b in bags], dtype=float)
    norm = 1.2 * (0.25 + 0.75 * lengths / lengths.mean())
    document_frequency = Counter(term for bag in bags for term in bag)
    rankings = {}
    ids = np.array(corpus_ids)
    for query_id, query in queries.items():
        scores = np.zeros(len(corpus))
        for term in set(bigrams(query)):
            if term not in document_frequency:
                continue
            df = document_frequency[term]
            idf = math.log(1 + (len(corpus) - df + 0.5) / (df + 0.5))
            tf = np.array([bag.get(term, 0) for bag in bags], dtype=float)
            scores += idf * tf * 2.2 / (tf + norm)
        rankings[query_id] = ids[np.lexsort((ids, -scores))[:10]].tolist()
    return rankings


def test_beats_char_bigram_bm25_on_the_held_out_subset(model: SSEEncoder) -> None:
    dataset = load_beir(DEV_SUBSET)
    text_of = dict(zip(dataset.query_ids, dataset.query_texts))
    query_ids = list(dataset.relevant_docs)
    bm25 = evaluate_rankings(
        char_bigram_bm25_rankings(dataset.corpus_ids, dataset.corpus_texts, {q: text_of[q] for q in query_ids}),
        dataset.relevant_docs,
    )["cosine_ndcg@10"]
    queries = model.encode([text_of[q] for q in query_ids])
    corpus = model.encode(dataset.corpus_texts)
    for dim in (512, 64):
        ndcg = evaluate_embeddings(
            dataset, truncate_and_normalize(queries, dim), truncate_and_normalize(corpus, dim)
        ).metrics["cosine_ndcg@10"]
        assert ndcg > bm25, (dim, ndcg, bm25)
