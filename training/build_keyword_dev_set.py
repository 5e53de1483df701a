"""Build a Japanese technical keyword-search dev set (BEIR layout) from VS Code's UI strings.

The paraphrase dev set (``build_dev_set.py``) is the task the bundled model was trained for;
this one is the task hybrid search is for: short keyword queries over technical text full of
setting names, commands and katakana loanwords. Documents are the Japanese strings of VS
Code's language pack (settings descriptions, messages, command titles; MIT). Each query is a
simulated known-item search for one document, built the way users type into a settings
search box:

- the document's terms are runs of one character class (kanji, katakana, Latin letters and
  digits), because Japanese writes no spaces between words;
- two or three of them are drawn at random, each with probability proportional to its IDF
  in the corpus (people type the words that tell a page apart, not 使用 or 場合), in random
  order;
- each drawn term that has a Sudachi synonym (spelling variants such as フォルダー/フォルダ,
  or true synonyms) is swapped for one with probability ``SYNONYM_RATE``, so matching the
  exact surface form is not enough.

The one relevant document is the query's source. Queries are split in halves:
``qrels/dev.tsv`` (for choosing defaults) and ``qrels/test.tsv`` (for reporting).

Sources are fetched with ``npm pack`` into ``--work-dir`` and never committed:
``@codingame/monaco-vscode-language-pack-ja`` (MIT, Microsoft's VS Code translations) and
``sudachi-synonyms-dictionary`` (Apache-2.0, Works Applications).

Usage:
  python training/build_keyword_dev_set.py --work-dir /tmp/sse-build/keyword --out-dir /tmp/sse-build/dev/vscode_keywords

Runs in a few seconds once the two packages are fetched.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import tarfile
from collections import Counter
from pathlib import Path

SEED = 20261127
QUERY_COUNT = 1_000
MIN_DOCUMENT_CHARS = 20
SYNONYM_RATE = 0.5
PACKAGES = {
    "vscode": "@codingame/monaco-vscode-language-pack-ja@25.1.2",
    "synonyms": "sudachi-synonyms-dictionary@18.0.0",
}
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
# One character class per run; katakana keeps its long-vowel mark and middle dot.
_TERM = re.compile(r"[\u4e00-\u9fff々]{2,}|[\u30a0-\u30ff]{2,}|[A-Za-z][A-Za-z0-9_.]{2,}")
_PLACEHOLDER = re.compile(r"\{\d+\}")


def fetch(spec: str, work_dir: Path) -> Path:
    """``npm pack`` one package into work_dir (once) and return its unpacked ``package/`` folder."""
    target = work_dir / re.sub(r"[^A-Za-z0-9.-]+", "_", spec)
    if not (target / "package").is_dir():
        target.mkdir(parents=True, exist_ok=True)
        try:
            output = subprocess.run(
                ["npm", "pack", spec, "--silent"], cwd=target, check=True, capture_output=True, text=True
            ).stdout
        except FileNotFoundError as error:
            raise SystemExit("npm is needed to fetch the source packages (apt-get install npm)") from error
        with tarfile.open(target / output.strip().splitlines()[-1]) as archive:
            archive.extractall(target, filter="data")
    return target / "package"


def read_vscode_strings(package: Path) -> list[str]:
    """All Japanese strings of the language pack, in file order, without duplicates."""
    strings: list[str] = []
    source = (package / "translations" / "main.i18n.json.js").read_text(encoding="utf-8")
    array = source[source.index("[") : source.rindex("]") + 1].replace("\tundefined,", "\tnull,")
    strings.extend(item for item in json.loads(re.sub(r",\s*\]$", "]", array)) if isinstance(item, str))
    for path in sorted((package / "translations" / "extensions").glob("*.i18n.json")):
        for section in json.loads(path.read_text(encoding="utf-8"))["contents"].values():
            strings.extend(value for value in section.values() if isinstance(value, str))
    documents = (" ".join(text.split()) for text in strings)
    return list(dict.fromkeys(text for text in documents if len(text) >= MIN_DOCUMENT_CHARS and _JAPANESE.search(text)))


def read_synonyms(package: Path) -> dict[str, list[str]]:
    """Surface form -> the other forms of its Sudachi synonym group that may stand in for it."""
    synonyms: dict[str, list[str]] = {}
    for group in json.loads((package / "sudachi-synonyms-dictionary.json").read_text(encoding="utf-8")):
        # expandControl 0 = the dictionary allows expanding to this form; 1/2 restrict it.
        # Latin-script forms ("file" for ファイル) would turn the query into an English one.
        forms = [
            item["midashi"]
            for item in group["items"]
            if item["expandControl"] == 0
            and item["hyoukiYure"] != "アルファベット表記"
            and _JAPANESE.search(item["midashi"])
        ]
        for form in forms:
            others = [other for other in forms if other != form]
            if others:
                synonyms.setdefault(form, []).extend(others)
    return synonyms


def document_terms(text: str) -> list[str]:
    return list(dict.fromkeys(_TERM.findall(_PLACEHOLDER.sub(" ", text))))


def draw_terms(terms: list[str], idf: dict[str, float], count: int, rng: random.Random) -> list[str]:
    """``count`` distinct terms, each draw weighted by IDF."""
    pool, drawn = list(terms), []
    for _ in range(count):
        pick = rng.choices(range(len(pool)), weights=[idf[term] for term in pool])[0]
        drawn.append(pool.pop(pick))
    return drawn


def build(documents: list[str], synonyms: dict[str, list[str]], rng: random.Random):
    corpus = {f"d{index}": text for index, text in enumerate(documents)}
    document_frequency = Counter(term for text in documents for term in document_terms(text))
    idf = {term: math.log(len(documents) / count) for term, count in document_frequency.items()}
    # Any document with enough terms can be a source: a length cut here would teach BM25's
    # length normalisation (b) that long documents are the relevant ones.
    sources = [doc_id for doc_id, text in corpus.items() if len(document_terms(text)) >= 3]
    queries, qrels, swapped = {}, {}, 0
    for number, doc_id in enumerate(rng.sample(sources, min(QUERY_COUNT, len(sources)))):
        terms = draw_terms(document_terms(corpus[doc_id]), idf, rng.choice((2, 3)), rng)
        for position, term in enumerate(terms):
            if term in synonyms and rng.random() < SYNONYM_RATE:
                terms[position] = rng.choice(synonyms[term])
                swapped += 1
        queries[f"q{number}"] = " ".join(terms)
        qrels[f"q{number}"] = doc_id
    return corpus, queries, qrels, swapped


def write_beir(out_dir: Path, corpus: dict[str, str], queries: dict[str, str], qrels: dict[str, str]) -> None:
    """The first half of the queries is the ``dev`` split, the second half ``test``."""
    query_ids = list(qrels)
    half = len(query_ids) // 2
    splits = {
        split: {q: qrels[q] for q in ids} for split, ids in (("dev", query_ids[:half]), ("test", query_ids[half:]))
    }
    write_beir_splits(out_dir, corpus, queries, splits)


def write_beir_splits(
    out_dir: Path, corpus: dict[str, str], queries: dict[str, str], qrels: dict[str, dict[str, str]]
) -> None:
    """A BEIR folder with one relevant document per query and one qrels file per split."""
    (out_dir / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out_dir / "corpus.jsonl", "w", encoding="utf-8") as handle:
        for doc_id, text in corpus.items():
            handle.write(json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False) + "\n")
    with open(out_dir / "queries.jsonl", "w", encoding="utf-8") as handle:
        for query_id, text in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}, ensure_ascii=False) + "\n")
    for split, pairs in qrels.items():
        with open(out_dir / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as handle:
            handle.write("query-id\tcorpus-id\tscore\n")
            handle.writelines(f"{query_id}\t{doc_id}\t1\n" for query_id, doc_id in pairs.items())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="where npm packages are fetched and unpacked")
    parser.add_argument("--out-dir", type=Path, required=True, help="BEIR folder to write")
    args = parser.parse_args(argv)
    documents = read_vscode_strings(fetch(PACKAGES["vscode"], args.work_dir))
    synonyms = read_synonyms(fetch(PACKAGES["synonyms"], args.work_dir))
    corpus, queries, qrels, swapped = build(documents, synonyms, random.Random(SEED))
    write_beir(args.out_dir, corpus, queries, qrels)
    print(f"{len(corpus)} documents, {len(queries)} queries ({swapped} terms swapped for a synonym) -> {args.out_dir}")


if __name__ == "__main__":
    main()
