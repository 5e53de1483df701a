"""Find PyPI projects whose long description is Japanese, for more training documentation.

Samples ``--sample`` names from PyPI's simple index (seeded), reads each project's JSON metadata
and keeps those whose description holds ``--min-kana`` or more kana (Chinese descriptions hold
none), whose licence field or classifiers name a permissive licence, that ship a pure-Python
wheel, that no pinned list names yet, and whose description is not another kept one's. Writes
them as a pinned list (``pypi:name==version``, newest release) for
``more_documentation_experiment.py``, which checks each wheel's own licence again and drops
sections sharing a line with the document dev set. Never lists anything from Debian (the
independent evaluation's sources): it reads PyPI only.

Yield measured on random samples: 10 of 8,000 names passed (and 1 of 1,500 in a second sample),
and about half of the packages that pass have sections long enough to use, some 5 each. A
doubling of the training documentation (2,700 sections) would take most of the index's 927,000
names: about 10 hours at 12 workers (``--workers``; 25 names a second here).

Usage: python training/experiments/find_japanese_packages.py --sample 20000 --out /tmp/sse-build/more_packages.txt
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import lab_path  # noqa: F401  (the lab's modules on sys.path first)

# isort: split
import japanese_readmes as readmes

SIMPLE_INDEX = "https://pypi.org/simple/"
PROJECT_JSON = "https://pypi.org/pypi/{}/json"
_KANA = re.compile(r"[\u3040-\u30ff]")
_PROJECT_LINK = re.compile(r'<a href="[^"]*">([^<]+)</a>')


def project_names() -> list[str]:
    with urllib.request.urlopen(SIMPLE_INDEX, timeout=300) as response:
        return _PROJECT_LINK.findall(response.read().decode("utf-8"))


def candidate(name: str, min_kana: int) -> tuple[str, str, str] | None:
    """(name, version, description) of a project that passes every test but the duplicate one."""
    try:
        with urllib.request.urlopen(PROJECT_JSON.format(name), timeout=30) as response:
            metadata = json.load(response)
    except (OSError, ValueError):
        return None  # gone, renamed or unreadable: one name fewer
    info = metadata["info"]
    description = info.get("description") or ""
    if len(_KANA.findall(description)) < min_kana:
        return None
    licence = " ".join(
        [info.get("license") or "", info.get("license_expression") or ""]
        + [c for c in info.get("classifiers") or [] if c.startswith("License")]
    )
    pure_wheel = any(f["filename"].endswith("-none-any.whl") for f in metadata.get("urls", []))
    if not pure_wheel or not readmes.PERMISSIVE.search(licence):
        return None
    return info["name"], info["version"], description


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-kana", type=int, default=150)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    listed = {readmes.normalised_name(readmes.package_name(s)) for s in readmes.pinned_packages()}
    listed |= {readmes.normalised_name(readmes.package_name(s)) for s in readmes.training_packages()}
    names = [n for n in project_names() if readmes.normalised_name(n) not in listed]
    sample = random.Random(args.seed).sample(names, min(args.sample, len(names)))
    kept: dict[str, str] = {}  # name -> version
    descriptions: set[str] = set()  # forks and renames ship the same description: keep the first
    with ThreadPoolExecutor(args.workers) as pool:
        for number, found in enumerate(pool.map(lambda n: candidate(n, args.min_kana), sample), 1):
            if found and found[2] not in descriptions:
                kept[found[0]] = found[1]
                descriptions.add(found[2])
            if number % 1_000 == 0:
                print(f"{number} of {len(sample)} read, {len(kept)} kept", file=sys.stderr, flush=True)
    lines = [f"pypi:{name}=={version}" for name, version in sorted(kept.items(), key=lambda k: k[0].lower())]
    args.out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    print(f"{len(lines)} of {len(sample)} sampled projects -> {args.out}")


if __name__ == "__main__":
    main()
