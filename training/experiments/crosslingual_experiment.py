"""Experiment (not part of the build): do English -> Japanese Tatoeba pairs help the ASCII pieces?

The document dev set's weak spot is mixed-script text (queries naming commands and tools,
sections full of options and code): the rows of the Latin-script pieces saw almost no training.
Tatoeba pairs every Japanese sentence with an English translation, so ``query = English,
document = Japanese`` pairs in the contrastive mix tie English word pieces to the Japanese
rows they mean. This trains the v2 document recipe (``DocumentTrainConfig()``) with 20,000 such
pairs (training sentences beyond the anchor's, seeded shuffle) at a share of each batch taken
from the Tatoeba pseudo-documents' share, and scores it like ``seed_average_experiment.py``
(dev halves of the document and keyword sets, paraphrases; 512 / 64 dims, fp32). The
unchanged recipe's runs for the same seeds are that script's (``WORK_DIR/seed_average``).

Usage: python training/experiments/crosslingual_experiment.py --work-dir /tmp/sse-build --shares 0.1 --seeds 20261127,7
Result of the last run: training/README.md, "A seventh round".
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import lab_path  # noqa: F401  (the lab's modules on sys.path first)

# isort: split
import build_default_model as build
import document_training as docs
import numpy as np
import seed_average_experiment as seed_average

REPO_ROOT = Path(__file__).resolve().parents[2]
PAIRS = 20_000


def crosslingual_pairs(training: list[dict[str, str]], anchored: int) -> list[docs.Pair]:
    pool = [sentence for sentence in training[anchored:] if sentence.get("en")]
    random.Random(5).shuffle(pool)
    return [
        docs.Pair(
            query=sentence["en"], document=sentence["ja"], group=f"crosslingual-{number % 500}", source="crosslingual"
        )
        for number, sentence in enumerate(pool[:PAIRS])
    ]


def train(work_dir: Path, out_dir: Path, share: float, seed: int):
    training = build.read_training_sentences(work_dir / "training_sentences.jsonl")
    anchored = len(np.load(work_dir / "anchor_v1.npy", mmap_mode="r"))
    weights = dict(docs.DocumentTrainConfig().source_weights)
    weights["crosslingual"] = share
    weights["tatoeba"] = max(0.0, weights["tatoeba"] - share)
    return seed_average.train_run(
        work_dir,
        out_dir / f"share{share:g}-seed{seed}" / "trained.pt",
        seed,
        config=docs.DocumentTrainConfig(source_weights=tuple(weights.items())),
        extra_pairs=crosslingual_pairs(training, anchored),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--out-dir", type=Path, default=None, help="default: WORK_DIR/crosslingual")
    parser.add_argument("--shares", default="0.1")
    parser.add_argument("--seeds", default=f"{build.SEED},7")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    out_dir = args.out_dir or args.work_dir / "crosslingual"
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(args.work_dir / "base_v1" / "tokenizer.json"))
    print("| weights | documents dev 512 / 64 | keywords dev 512 / 64 | paraphrases 512 / 64 |")
    print("|---|---|---|---|")
    for seed in [int(value) for value in args.seeds.split(",")]:
        baseline = seed_average.train_seed(args.work_dir, args.work_dir / "seed_average", seed)
        print(f"| this recipe, seed {seed} | {seed_average.scores(args.work_dir, tokenizer, baseline)} |", flush=True)
        for share in [float(value) for value in args.shares.split(",")]:
            state = train(args.work_dir, out_dir, share, seed)
            row = seed_average.scores(args.work_dir, tokenizer, state)
            print(f"| English -> Japanese pairs at {share:g}, seed {seed} | {row} |", flush=True)


if __name__ == "__main__":
    main()
