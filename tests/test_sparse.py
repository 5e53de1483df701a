"""Sparse lexical vectors: BM25 term weights computed by hand on a tiny corpus."""

from __future__ import annotations

import math
import zlib

import pytest

from sse_integrations.sparse import BIGRAM_OFFSET, SparseEncoder, ignored_token_ids


def bigram(text: str) -> int:
    return BIGRAM_OFFSET + zlib.crc32(text.encode()) % ((1 << 31) - BIGRAM_OFFSET)


def test_bigram_document_weights_by_hand():
    # "東京駅" -> 東京, 京駅 ; "東京" -> 東京 ; "京都" -> 京都 ; avg length (2 + 1 + 1) / 3 = 4/3
    encoder = SparseEncoder(features="bigrams", k1=1.2, b=0.75).fit(["東京駅", "東京", "京都"])
    assert encoder.avg_doc_length == pytest.approx(4 / 3)
    [long_doc, short_doc] = encoder.encode_documents(["東京駅東京", "東京"])
    # "東京駅東京": 東京 x2, 京駅, 駅東 -> 4 terms
    norm = 1.2 * (1 - 0.75 + 0.75 * 4 / (4 / 3))
    expected = {
        bigram("東京"): 2 * 2.2 / (2 + norm),
        bigram("京駅"): 2.2 / (1 + norm),
        bigram("駅東"): 2.2 / (1 + norm),
    }
    assert dict(zip(long_doc.indices, long_doc.values)) == pytest.approx(expected)
    assert long_doc.indices == sorted(long_doc.indices)
    short_norm = 1.2 * (1 - 0.75 + 0.75 * 1 / (4 / 3))
    assert dict(zip(short_doc.indices, short_doc.values)) == pytest.approx({bigram("東京"): 2.2 / (1 + short_norm)})


def test_nfkc_lowercase_and_whitespace_runs():
    encoder = SparseEncoder(features="bigrams", avg_doc_length=1.0)
    # Full-width "ＡＢ" folds to "ab"; whitespace separates runs; a one-character run is kept whole.
    [terms] = encoder.terms(["ＡＢ c"])
    assert terms == [bigram("ab"), bigram("c")]


def test_token_features_use_the_sse_tokenizer_ids(tiny_encoder):
    encoder = SparseEncoder(tiny_encoder.tokenizer, features="tokens", avg_doc_length=3.0)
    text = "猫が窓のそばで眠っている。"
    ignored = ignored_token_ids(tiny_encoder.tokenizer)
    ids = [i for i in tiny_encoder.tokenizer.encode(text, add_special_tokens=False).ids if i not in ignored]
    [vector] = encoder.encode_documents([text])
    assert vector.indices == sorted(set(ids))
    norm = 1.2 * (1 - 0.75 + 0.75 * len(ids) / 3.0)
    for index, value in zip(vector.indices, vector.values):
        tf = ids.count(index)
        assert value == pytest.approx(tf * 2.2 / (tf + norm))


def test_tokens_and_bigrams_do_not_collide(tiny_encoder):
    encoder = SparseEncoder(tiny_encoder.tokenizer, features="tokens+bigrams", avg_doc_length=5.0)
    [terms] = encoder.terms(["猫が寝る"])
    ignored = ignored_token_ids(tiny_encoder.tokenizer)
    token_ids = [i for i in tiny_encoder.tokenizer.encode("猫が寝る", add_special_tokens=False).ids if i not in ignored]
    assert terms[: len(token_ids)] == token_ids
    assert all(term < BIGRAM_OFFSET for term in token_ids)
    assert all(term >= BIGRAM_OFFSET for term in terms[len(token_ids) :])


def test_queries_get_unit_weights_per_distinct_term():
    [query] = SparseEncoder(features="bigrams").encode_queries(["東京東京"])
    assert query.indices == sorted({bigram("東京"), bigram("京東")})
    assert query.values == [1.0, 1.0]


def test_empty_text_gives_an_empty_vector():
    encoder = SparseEncoder(features="bigrams", avg_doc_length=2.0)
    assert encoder.encode_documents([""])[0].indices == []
    assert encoder.encode_queries(["  "])[0].indices == []


def test_config_round_trip(tiny_encoder):
    encoder = SparseEncoder(tiny_encoder.tokenizer, k1=0.9, b=0.4).fit(["東京駅", "京都"])
    again = SparseEncoder.from_config(encoder.get_config(), tokenizer=tiny_encoder.tokenizer)
    assert again.get_config() == encoder.get_config()
    assert again.encode_documents(["東京"]) == encoder.encode_documents(["東京"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"features": "trigrams"}, "features must be one of"),
        ({"features": "tokens"}, "needs the SSE tokenizer"),
        ({"features": "bigrams", "b": 1.5}, "0 <= b <= 1"),
        ({"features": "bigrams", "avg_doc_length": 0}, "avg_doc_length must be positive"),
    ],
)
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseEncoder(**kwargs)


def test_unfitted_encoder_refuses_documents():
    with pytest.raises(ValueError, match="call fit"):
        SparseEncoder(features="bigrams").encode_documents(["東京"])


def test_bad_input_is_rejected_like_encode():
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        SparseEncoder(features="bigrams").encode_queries([None])
    with pytest.raises(TypeError, match="bare str"):
        SparseEncoder(features="bigrams").encode_queries("東京")


def test_bm25_ranks_like_textbook_bm25_with_idf():
    """With IDF multiplied in (as Qdrant's Modifier.IDF does), scores equal textbook BM25."""
    corpus = ["東京の天気", "京都の天気は晴れ", "大阪の食べ物", "東京駅の近く"]
    encoder = SparseEncoder(features="bigrams").fit(corpus)
    docs = encoder.encode_documents(corpus)
    [query] = encoder.encode_queries(["東京の天気"])
    n = len(corpus)
    df = {}
    for doc in docs:
        for index in doc.indices:
            df[index] = df.get(index, 0) + 1
    idf = {index: math.log(1 + (n - count + 0.5) / (count + 0.5)) for index, count in df.items()}
    scores = [sum(idf.get(i, 0) * dict(zip(d.indices, d.values)).get(i, 0) for i in query.indices) for d in docs]
    assert scores.index(max(scores)) == 0
    assert scores[2] == 0


# --- pieces that are never terms (issue 16, item 4) --------------------------------------


def test_unknown_pieces_and_control_characters_are_never_terms(tiny_encoder):
    tokenizer = tiny_encoder.tokenizer
    unk = tokenizer.token_to_id("<unk>")
    # 饂飩 is outside the fixture's vocabulary: the tokenizer maps it to <unk>.
    assert unk in tokenizer.encode("饂飩", add_special_tokens=False).ids
    encoder = SparseEncoder(tokenizer, features="tokens", avg_doc_length=3.0)
    for text in ("饂飩", "\x00", "\x01\x7f\x9f", "\u200b", " \t\n"):
        assert encoder.terms([text]) == [[]], repr(text)
        assert encoder.encode_queries([text])[0].indices == []
    [with_nul, plain] = encoder.terms(["猫\x00が寝る", "猫 が寝る"])
    assert with_nul == plain  # a control character splits words like a space
    both = SparseEncoder(tokenizer, features="tokens+bigrams", avg_doc_length=3.0)
    assert both.terms(["\x00"]) == [[]]
    assert all(term != unk for term in both.terms(["饂飩を食べる"])[0])


def test_an_unknown_query_does_not_rank_an_unrelated_document_first(tiny_encoder):
    encoder = SparseEncoder(tiny_encoder.tokenizer, features="tokens")
    documents = ["饂飩", "猫が寝ている"]
    encoder.fit(documents)
    [unrelated_query] = encoder.encode_queries(["鰻"])
    [unknown_doc, _] = encoder.encode_documents(documents)
    assert not set(unrelated_query.indices) & set(unknown_doc.indices)


def test_lone_surrogate_is_a_clear_error(tiny_encoder):
    encoder = SparseEncoder(tiny_encoder.tokenizer, avg_doc_length=1.0)
    with pytest.raises(ValueError, match=r"texts\[1\] holds a lone surrogate"):
        encoder.encode_documents(["ok", "\ud800"])


@pytest.mark.parametrize("features", ["tokens", "bigrams", "tokens+bigrams"])
def test_term_counts_are_the_lengths_of_the_terms(tiny_encoder, features):
    texts = [
        "",
        " ",
        "猫",
        "猫が 窓のそばで\t眠っている。",
        "--diff オプションで unified diff を出す",
        "x\x00y z\u200bw",  # a control character splits, a format character is dropped
        "ＡＢｃ  def",
        "🙂🙂 \U0010fffd",  # characters the tokenizer has no piece for
    ]
    encoder = SparseEncoder(tiny_encoder.tokenizer, features=features)
    assert encoder.term_counts(texts) == [len(terms) for terms in encoder.terms(texts)]
    assert encoder.term_counts([]) == []
    fitted = SparseEncoder(tiny_encoder.tokenizer, features=features).fit(texts)
    assert fitted.avg_doc_length == sum(map(len, encoder.terms(texts))) / len(texts)


@pytest.mark.parametrize("features", ["tokens", "bigrams", "tokens+bigrams"])
def test_document_weights_are_bm25_of_each_texts_own_term_counts(tiny_encoder, dev_corpus, features):
    # encode_documents counts the whole batch's terms at once (np.unique over text/term keys);
    # each text's vector must equal BM25 computed from its own terms one by one, bit for bit.
    texts = ["", "猫 猫 猫", "x\x00y z\u200bw", "🙂🙂 \U0010fffd", *dev_corpus[1][:300]]
    encoder = SparseEncoder(tiny_encoder.tokenizer, features=features, k1=1.3, b=0.7).fit(texts)
    found = encoder.encode_documents(texts)
    assert len(found) == len(texts)
    for terms, vector in zip(encoder.terms(texts), found):
        norm = encoder.k1 * (1 - encoder.b + encoder.b * len(terms) / encoder.avg_doc_length)
        indices = sorted(set(terms))
        assert vector.indices == indices
        assert vector.values == [terms.count(i) * (encoder.k1 + 1) / (terms.count(i) + norm) for i in indices]
        assert all(type(i) is int for i in vector.indices) and all(type(v) is float for v in vector.values)
    assert encoder.encode_documents([]) == []
