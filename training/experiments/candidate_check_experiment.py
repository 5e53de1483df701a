"""Experiment (not part of the build): check a candidate recipe as the bundled model would be used.

Trains the v2 document recipe with some ``DocumentTrainConfig`` fields changed (``--variant
name=value,...``, as ``seed_average_experiment.py``) from the cached stages of a build work dir,
exports the weights in the published 4-bit layout, then reports per dev set the 4-bit copy's
mean cosine to the fp32 weights and NDCG@10 of both at 512 / 64 dims (dev halves; paraphrases
on ``tests/data/tatoeba_ja_dev``), and the two-stage recall@10 of the 4-bit weights against
exact 512-dim search: 50,000 documents of two Tatoeba training sentences, 300 other sentences
as queries, candidates from the 64-dim prefix (500, the package defaults) and from the 128-dim
prefix (150, the large-collection setting), in numpy. The dev sets alone do not show whether the
prefixes still rank as the full vector does; ``benchmarks/scale.py`` does, at 100k and 1M
documents, in minutes rather than seconds. ``--beta-tail START:FACTOR`` also scores the trained
weights with the SeparableDyT beta of dimensions START.. multiplied by FACTOR (no retraining).

Usage: python training/experiments/candidate_check_experiment.py --work-dir /tmp/sse-build \\
         --variant dyt_learning_rate=0.01,quantisation_pull_scope=step,quantisation_pull_weight=500
Results of the last runs: training/README.md, "An eighth round".
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
from pathlib import Path

import lab_path  # noqa: F401  (the lab's modules on sys.path first)

# isort: split
import build_default_model as build
import document_training as docs
import numpy as np
from seed_average_experiment import parse_variant, train_run, variant_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
from two_stage import K, recall, topk, two_stage_numpy  # noqa: E402

PARAPHRASES = REPO_ROOT / "tests" / "data" / "tatoeba_ja_dev"
RECALL_DOCUMENTS = 50_000
RECALL_QUERIES = 300
TWO_STAGE_SETTINGS = ((64, 500), (128, 150))


def recall_corpus(work_dir: Path) -> tuple[list[str], list[str]]:
    """(two-sentence documents, held-out sentence queries) from the build's training sentences, seeded."""
    sentences = [s["ja"] for s in build.read_training_sentences(work_dir / "training_sentences.jsonl")]
    random.Random(5).shuffle(sentences)
    queries = sentences[:RECALL_QUERIES]
    pool = sentences[RECALL_QUERIES : RECALL_QUERIES + 2 * RECALL_DOCUMENTS]
    return [pool[2 * i] + pool[2 * i + 1] for i in range(len(pool) // 2)], queries


def two_stage_recall(encoder, documents: list[str], queries: list[str]) -> dict[tuple[int, int], float]:
    """Recall@10 of (prefix candidates -> full-vector rescoring) against exact full-vector search."""
    from sse_integrations.matryoshka import truncate_and_normalize

    raw_documents = encoder.encode(documents, normalize=False)
    raw_queries = encoder.encode(queries, normalize=False)
    width = raw_documents.shape[1]
    full_documents = truncate_and_normalize(raw_documents, width)
    full_queries = truncate_and_normalize(raw_queries, width)
    exact = topk(full_queries @ full_documents.T, K)
    found = {}
    for dim, candidates in TWO_STAGE_SETTINGS:
        coarse = truncate_and_normalize(raw_queries, dim) @ truncate_and_normalize(raw_documents, dim).T
        ranked = two_stage_numpy(topk(coarse, candidates), full_documents, full_queries, K)
        found[(dim, candidates)] = recall(ranked, exact)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--out-dir", type=Path, default=None, help="default: WORK_DIR/candidates")
    parser.add_argument("--variant", default="", help="DocumentTrainConfig fields, name=value,... (empty: the recipe)")
    parser.add_argument("--seed", type=int, default=build.SEED)
    parser.add_argument("--beta-tail", action="append", default=[], help="START:FACTOR, e.g. 128:0.7")
    parser.add_argument("--chunks", type=Path, help="JSON list of documentation chunks for chunk_regression_weight")
    parser.add_argument("--extra-pairs", type=Path, help="JSONL of more training pairs (document_training.write_pairs)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    from tokenizers import Tokenizer

    from sse_integrations.encoder import SSEEncoder
    from sse_integrations.evaluation import load_beir
    from sse_integrations.model import SSE

    fields = parse_variant(args.variant) if args.variant else {}
    label = variant_folder(args.variant) or "recipe"
    for extra in (args.chunks, args.extra_pairs):  # they change the run as much as the variant does
        if extra:
            label += f"+{extra.stem}"
    out = (args.out_dir or args.work_dir / "candidates") / label / f"seed{args.seed}"
    chunk_texts = json.loads(args.chunks.read_text(encoding="utf-8")) if args.chunks else None
    state = train_run(
        args.work_dir,
        out / "trained.pt",
        args.seed,
        config=docs.DocumentTrainConfig(**fields),
        extra_pairs=docs.read_pairs(args.extra_pairs) if args.extra_pairs else None,
        chunk_texts=chunk_texts,
    )
    model = SSE(build.VOCAB_SIZE, build.DIM)
    model.load_state_dict(state)
    tokenizer = Tokenizer.from_file(str(args.work_dir / "base_v1" / "tokenizer.json"))
    fp32 = SSEEncoder(tokenizer, model.to_weights())
    fp32.save_pretrained(out / "q4", quantize="q4")
    q4 = SSEEncoder.from_pretrained(out / "q4")
    documents, queries = recall_corpus(args.work_dir)

    print(f"{args.variant or 'the recipe'}, seed {args.seed}")
    print("| data set | cosine 4-bit / fp32 | fp32 512 / 64 | 4-bit 512 / 64 |")
    print("|---|---|---|---|")
    for name, folder, split in (
        ("documents (dev)", args.work_dir / "dev" / "ja_docs", "dev"),
        ("keywords (dev)", args.work_dir / "dev" / "vscode_keywords", "dev"),
        ("paraphrases", PARAPHRASES, "test"),
    ):
        dataset = load_beir(folder, split)
        texts = list(dataset.query_texts) + list(dataset.corpus_texts)
        cosine = float(np.mean(np.sum(fp32.encode(texts) * q4.encode(texts), axis=1)))
        a, b = docs.evaluate_encoder_on(fp32, folder, split), docs.evaluate_encoder_on(q4, folder, split)
        print(f"| {name} | {cosine:.4f} | {a[512]:.3f} / {a[64]:.3f} | {b[512]:.3f} / {b[64]:.3f} |", flush=True)
    recall = two_stage_recall(q4, documents, queries)
    print(
        "two-stage recall@10, 4-bit: " + "; ".join(f"{d} dims, {c} candidates: {r:.3f}" for (d, c), r in recall.items())
    )
    for spec in args.beta_tail:
        start, factor = spec.split(":")
        scaled_model = copy.deepcopy(model)
        docs.scale_beta_tail(scaled_model.dyt, int(start), float(factor))
        scaled = SSEEncoder(tokenizer, scaled_model.to_weights())
        cells = [docs.evaluate_encoder_on(scaled, args.work_dir / "dev" / "ja_docs", "dev")]
        cells.append(docs.evaluate_encoder_on(scaled, PARAPHRASES, "test"))
        recall = two_stage_recall(scaled, documents, queries)
        print(
            f"beta x{factor} from dim {start} (fp32): documents dev {cells[0][512]:.3f} / {cells[0][64]:.3f}, "
            f"paraphrases {cells[1][512]:.3f}; recall " + "; ".join(f"{d}/{c}: {r:.3f}" for (d, c), r in recall.items())
        )


if __name__ == "__main__":
    main()
