"""Build a Japanese document-retrieval dev set (BEIR layout): section heading -> section body.

The task RAG users bring: a short query in, the right passage of a long technical document
out. Documents are the sections of Japanese package documentation (the long descriptions of
PyPI wheels and npm READMEs listed in ``japanese_readme_packages.txt``, permissive licences
only, see ``japanese_readmes.py``): prose around commands, options, paths, tables and code.
A section's query is its own heading, which is what a reader scans a table of contents for.

- Headings that name no topic are dropped as queries (their section stays in the corpus as a
  distractor): a heading used by two or more packages (概要, インストール, 使い方 ...), one
  that occurs twice in the corpus, one with fewer than two kana/kanji, or one longer than 40
  characters, or shorter than 4 (注意, ビルド: too vague to have one answer).
- Packages are split by a hash of their name (``japanese_readmes.split_of``): 20% give the
  ``test`` queries (reporting only), 20% the ``dev`` queries (choosing defaults), 60% are
  left for training and never appear here. The corpus holds every section of the dev and
  test packages, so each half searches the same documents.

Usage:
  python training/build_document_dev_set.py --work-dir /tmp/sse-build/readmes --out-dir /tmp/sse-build/dev/ja_docs

Downloads about 400 small packages once (pip download / npm pack, no install); then a few seconds.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import japanese_readmes as readmes
from build_keyword_dev_set import write_beir_splits as write_beir

MAX_QUERY_CHARS = 40
MIN_QUERY_CHARS = 4
MIN_QUERY_JAPANESE = 2


def normalised(heading: str) -> str:
    return "".join(heading.lower().split())


def generic_headings(by_package: dict[str, list[readmes.Section]]) -> set[str]:
    """Headings that two or more packages use: they name a kind of section, not a topic."""
    users = Counter(h for sections in by_package.values() for h in {normalised(s.heading) for s in sections})
    return {heading for heading, count in users.items() if count >= 2}


def build(by_package: dict[str, list[readmes.Section]]):
    generic = generic_headings(by_package)
    held_out = {name: sections for name, sections in sorted(by_package.items()) if readmes.split_of(name) != "train"}
    corpus: dict[str, str] = {}
    candidates: list[tuple[str, str, str]] = []  # (split, heading, doc id)
    for name, sections in held_out.items():
        for number, section in enumerate(sections):
            doc_id = f"{name}#{number}"
            corpus[doc_id] = section.text
            candidates.append((readmes.split_of(name), section.heading, doc_id))
    in_corpus = Counter(normalised(heading) for _, heading, _ in candidates)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, str]] = {"dev": {}, "test": {}}
    for split, heading, doc_id in candidates:
        key = normalised(heading)
        if (
            key in generic
            or in_corpus[key] > 1
            or not MIN_QUERY_CHARS <= len(heading) <= MAX_QUERY_CHARS
            or readmes.japanese_char_count(heading) < MIN_QUERY_JAPANESE
        ):
            continue
        query_id = f"q{len(queries)}"
        queries[query_id] = heading
        qrels[split][query_id] = doc_id
    return corpus, queries, qrels


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="where the packages are downloaded")
    parser.add_argument("--out-dir", type=Path, required=True, help="BEIR folder to write")
    args = parser.parse_args(argv)
    by_package = readmes.read_package_sections(args.work_dir)
    corpus, queries, qrels = build(by_package)
    write_beir(args.out_dir, corpus, queries, qrels)
    held_out = sum(readmes.split_of(name) != "train" for name in by_package)
    print(
        f"{len(by_package)} packages with Japanese sections ({held_out} held out here): {len(corpus)} documents, "
        f"{len(qrels['dev'])} dev and {len(qrels['test'])} test queries -> {args.out_dir}"
    )


if __name__ == "__main__":
    main()
