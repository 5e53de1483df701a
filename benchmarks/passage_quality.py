"""Best passage beside the whole document: NDCG@10 with and without the passage stage, and how its defaults were chosen.

Two tables, both on the bundled model:

- ``passage_quality``: the real ``MatryoshkaIndex`` on the embedded engine (``evaluate_two_stage``)
  on every dev set's ``test`` half (Tatoeba paraphrases, VS Code keywords, package-documentation
  sections): dense two-stage 64 -> 512, BM25 sparse and hybrid RRF, each without and with
  ``passages=True``; and the same at 64 dims (stages 32 -> 64, passages at 64).
- ``passage_tuning``: exact scores in numpy on the ``dev`` halves (the halves for choosing
  defaults) of the document and keyword sets: window length and stride, the passage weight and
  the passage width. The package's defaults (16-token windows every 8 tokens, weight 0.5, full
  width) rank near the top on both sets at once; windows of 8 to 24 tokens lie within 0.007
  of each other on the document half (95 queries), shorter windows cost more passages.

Usage:
  python benchmarks/passage_quality.py --work-dir /tmp/sse-build [--no-write]
Builds the keyword and document dev sets into ``--work-dir`` when missing (as hybrid_quality.py
does). About two minutes. Writes both tables to docs/passages.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hybrid_quality import data_sets
from report import DOCS, machine_line, markdown_table, write_section

from sse_integrations import SSEEncoder
from sse_integrations.evaluation import evaluate_rankings, evaluate_two_stage, load_beir
from sse_integrations.matryoshka import truncate_and_normalize
from sse_integrations.passages import PassageCut
from sse_integrations.qdrant import PassageStage

PAGE = DOCS / "passages.md"
WIDE = {}
NARROW = {"stages": [32, 64]}
VARIANTS = [
    ("dense", "dense", WIDE, False),
    ("dense + passages", "dense", WIDE, True),
    ("sparse", "sparse", WIDE, False),
    ("hybrid", "hybrid", WIDE, False),
    ("hybrid + passages", "hybrid", WIDE, True),
    ("dense 64", "dense", NARROW, False),
    ("dense 64 + passages", "dense", NARROW, True),
]
# (tokens, stride) windows of the tuning sweep, at weight 0.5 and full width.
WINDOWS = [(8, 4), (8, 8), (16, 8), (16, 16), (24, 12), (32, 16), (32, 32), (64, 32)]
WEIGHTS = (0.3, 0.5, 0.7)
WIDTHS = (128, 256, 512)


def index_table(encoder: SSEEncoder, args: argparse.Namespace) -> str:
    rows = []
    for folder, split in data_sets(args):
        dataset = load_beir(folder, split)
        scores = {}
        for label, mode, options, passages in VARIANTS:
            index_options = dict(options)
            if passages:
                index_options["passages"] = PassageStage(dim=64) if options is NARROW else True
            result = evaluate_two_stage(encoder, dataset, mode=mode, index_options=index_options)
            scores[label] = result.metrics["cosine_ndcg@10"]
            print(f"{dataset.name} {label}: {scores[label]:.4f} ({result.seconds:.0f} s)", file=sys.stderr)
        rows.append(
            [
                f"{dataset.name} ({split})",
                len(dataset.relevant_docs),
                len(dataset.corpus_ids),
                *(f"{scores[label]:.4f}" for label, *_ in VARIANTS),
                f"{scores['dense + passages'] - scores['dense']:+.4f}",
            ]
        )
    headers = ["set", "queries", "docs", *(label for label, *_ in VARIANTS), "passages lift dense 512"]
    return (
        "NDCG@10 through `MatryoshkaIndex` on the embedded engine (Qdrant Edge), `test` halves; "
        "passages: `passages=True` (16-token windows every 8 tokens, weight 0.5, at 512 dims; "
        "at 64 dims: stages 32 -> 64 and `PassageStage(dim=64)`).\n\n"
        + markdown_table(headers, rows)
        + f"\n\n{machine_line()} `python benchmarks/passage_quality.py`"
    )


class ExactScores:
    """One dev half's query and document vectors, for exact rankings of any passage setting."""

    def __init__(self, encoder: SSEEncoder, folder: Path, split: str) -> None:
        self.dataset = dataset = load_beir(folder, split)
        self.encoder = encoder
        self.query_ids, query_texts = dataset.evaluated_queries()
        self.queries = encoder.encode(query_texts, normalize=False)
        self.flat, self.lengths = encoder.tokenize(dataset.corpus_texts)
        self.whole = truncate_and_normalize(encoder.embed_ids(self.flat, self.lengths), encoder.full_dim)

    def ndcg(self, scores: np.ndarray) -> float:
        ids = self.dataset.corpus_ids
        rankings = {
            qid: [ids[column] for column in np.argsort(-row, kind="stable")[:100]]
            for qid, row in zip(self.query_ids, scores)
        }
        return evaluate_rankings(rankings, self.dataset.relevant_docs)["cosine_ndcg@10"]

    def whole_scores(self) -> np.ndarray:
        return truncate_and_normalize(self.queries, self.encoder.full_dim) @ self.whole.T

    def best_passage_scores(self, cut: PassageCut, width: int) -> np.ndarray:
        spans = cut.spans(self.lengths)
        passages = truncate_and_normalize(self.encoder.embed_ids(spans.gather(self.flat), spans.lengths), width)
        per_passage = truncate_and_normalize(self.queries, width) @ passages.T
        firsts = np.concatenate([[0], np.cumsum(spans.counts(len(self.lengths)))[:-1]])
        return np.maximum.reduceat(per_passage, firsts, axis=1)


def tuning_table(encoder: SSEEncoder, args: argparse.Namespace) -> str:
    sets = {Path(folder).name: ExactScores(encoder, folder, "dev") for folder, _ in data_sets(args)[1:]}
    headers = ["passages", "width", "weight", *(f"{name} (dev)" for name in sets)]
    baseline = {name: exact.whole_scores() for name, exact in sets.items()}
    rows = [["none (whole document)", "", "", *(f"{exact.ndcg(baseline[name]):.4f}" for name, exact in sets.items())]]

    def row(tokens: int, stride: int, width: int, weight: float) -> list:
        cells = []
        for name, exact in sets.items():
            best = exact.best_passage_scores(PassageCut(tokens, stride), width)
            cells.append(f"{exact.ndcg((1 - weight) * baseline[name] + weight * best):.4f}")
        print(f"tuning {tokens}/{stride} width {width} weight {weight}: {cells}", file=sys.stderr)
        return [f"{tokens} tokens every {stride}", width, weight, *cells]

    rows += [row(tokens, stride, 512, 0.5) for tokens, stride in WINDOWS]
    rows += [row(16, 8, 512, weight) for weight in WEIGHTS if weight != 0.5]
    rows += [row(16, 8, width, 0.5) for width in WIDTHS if width != 512]
    return (
        "Exact NDCG@10 (numpy) on the `dev` halves, the halves for choosing defaults; score = "
        "(1 - weight) x whole-document cosine at 512 + weight x best-passage cosine at the width.\n\n"
        + markdown_table(headers, rows)
        + f"\n\n{machine_line()} `python benchmarks/passage_quality.py`"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/ alone")
    args = parser.parse_args()
    args.data = []
    encoder = SSEEncoder.from_pretrained()
    tables = {"passage_quality": index_table(encoder, args), "passage_tuning": tuning_table(encoder, args)}
    for name, table in tables.items():
        print(table + "\n")
        if not args.no_write:
            write_section(name, table, page=PAGE)


if __name__ == "__main__":
    main()
