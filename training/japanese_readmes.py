"""Japanese documentation shipped inside PyPI and npm packages, cut into (heading, section) pairs.

A package's long description (a wheel's ``METADATA`` body, an npm tarball's ``README.md``) is
real technical documentation: prose in Japanese around command lines, options, paths, code
and UI names, i.e. the mixed-script text RAG users search. Each section under a heading is a
document; its heading is what a reader looks for when they want that section.

Only packages whose licence allows reuse are read (``PERMISSIVE``); the list of packages is
pinned in ``japanese_readme_packages.txt`` beside this file, so a rebuild reads the same text.
Used by ``build_document_dev_set.py`` (held-out packages) and ``build_default_model.py``
(the other packages, for training).
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

PACKAGE_LIST = Path(__file__).with_name("japanese_readme_packages.txt")
# Licences whose terms allow reading the text into a dev set or a model.
PERMISSIVE = re.compile(
    r"\b(MIT|Apache|BSD|ISC|Unlicense|CC0|CC-BY(?!-N)|PSF|Python Software|Zlib|0BSD|WTFPL|MPL)", re.I
)
MIN_SECTION_CHARS = 120
MAX_SECTION_CHARS = 1_500
MIN_JAPANESE_CHARS = 30

_KANA_KANJI = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_ATX_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT_UNDERLINE = re.compile(r"^\s{0,3}(=+|-+)\s*$")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_HTML_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_LEADING_NUMBER = re.compile(r"^(\d+[.)]|[0-9０-９]+[.．、]|[①-⑳])\s*")
_SYMBOLS = re.compile(r"[\U0001F000-\U0001FAFF\u2600-\u27BF\uFE0F]")


@dataclass(frozen=True)
class Section:
    package: str
    heading: str
    text: str


def japanese_char_count(text: str) -> int:
    return len(_KANA_KANJI.findall(text))


def clean_heading(raw: str) -> str:
    heading = _LINK.sub(r"\1", _IMAGE.sub("", raw))
    heading = _HTML_TAG.sub("", _EMPHASIS.sub("", heading))
    heading = _SYMBOLS.sub("", heading).strip(" :：-—–|")
    return " ".join(_LEADING_NUMBER.sub("", heading.strip()).split())


def clean_body(lines: list[str]) -> str:
    """Markdown/reST body -> plain text lines: links keep their text, images, badges and tags go."""
    text = _HTML_COMMENT.sub("", "\n".join(lines))
    text = _LINK.sub(r"\1", _IMAGE.sub("", text))
    text = _HTML_TAG.sub("", text)
    kept = [" ".join(line.split()) for line in text.splitlines()]
    kept = [line for line in kept if line and not line.startswith(("```", "~~~", "|---", "| ---", ".. "))]
    return "\n".join(kept)


def cut(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a line end when there is one in the second half."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    newline = head.rfind("\n")
    return head[:newline] if newline > limit // 2 else head


def split_sections(package: str, document: str) -> list[Section]:
    """Markdown (ATX and setext) and reST headings split the text; each section's own body only."""
    lines = document.splitlines()
    headings: list[tuple[int, int, str]] = []  # (first line, first body line, heading)
    in_fence = False
    for number, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        match = _ATX_HEADING.match(line)
        if match:
            headings.append((number, number + 1, match.group(2)))
            continue
        following = lines[number + 1] if number + 1 < len(lines) else ""
        if (
            line.strip()
            and not line.startswith((" ", "\t", "|", "-", "*", ">"))
            and (_SETEXT_UNDERLINE.match(following) or _RST_UNDERLINE.match(following))
            and len(following.strip()) >= min(3, len(line.strip()))
        ):
            headings.append((number, number + 2, line))
    sections = []
    for position, (_, body_start, heading) in enumerate(headings):
        body_end = headings[position + 1][0] if position + 1 < len(headings) else len(lines)
        body = clean_body(lines[body_start:body_end])
        if len(body) < MIN_SECTION_CHARS or japanese_char_count(body) < MIN_JAPANESE_CHARS:
            continue
        sections.append(Section(package, clean_heading(heading), cut(body, MAX_SECTION_CHARS)))
    return sections


def split_of(package: str) -> str:
    """A package's fixed share: 'test' (20%), 'dev' (20%) or 'train' (60%), from its name alone."""
    bucket = int(hashlib.sha1(package.lower().encode()).hexdigest(), 16) % 10
    return "test" if bucket < 2 else "dev" if bucket < 4 else "train"


# ---------------------------------------------------------------- reading packages
def read_wheel_readme(path: Path) -> tuple[str, str, str]:
    """(name, licence text, long description) from a wheel's METADATA."""
    with zipfile.ZipFile(path) as wheel:
        metadata_name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        raw = wheel.read(metadata_name).decode("utf-8", errors="replace")
    headers = HeaderParser().parsestr(raw)
    licence = " ".join(
        [headers.get("License", "") or "", headers.get("License-Expression", "") or ""]
        + [c for c in headers.get_all("Classifier", []) if c.startswith("License")]
    )
    body = raw.split("\n\n", 1)[1] if "\n\n" in raw else ""
    return headers["Name"], licence, body


def read_npm_readme(path: Path) -> tuple[str, str, str]:
    """(name, licence, README) from an npm tarball."""
    with tarfile.open(path) as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        manifest = json.loads(archive.extractfile(members["package/package.json"]).read())
        readme_name = next((n for n in sorted(members) if n.lower() in ("package/readme.md", "package/readme")), None)
        readme = archive.extractfile(members[readme_name]).read().decode("utf-8", "replace") if readme_name else ""
    licence = manifest.get("license", "")
    if isinstance(licence, dict):
        licence = licence.get("type", "")
    return manifest["name"], str(licence), readme


def archive_name_prefix(spec: str) -> str:
    """How pip and npm name the file of a pinned spec, lower-cased with "_" for "-"."""
    registry, name = spec.split(":", 1)
    if registry == "pypi":
        project, version = name.split("==")
    else:
        project, version = name.rsplit("@", 1)
        project = project.lstrip("@").replace("/", "-")
    return f"{project}-{version}".replace("-", "_").replace(".", "_").lower()


def fetch(spec: str, download_dir: Path) -> Path | None:
    """The archive of one pinned package (``pypi:NAME==V`` or ``npm:NAME@V``), downloaded once; None if unavailable."""
    download_dir.mkdir(parents=True, exist_ok=True)
    prefix = archive_name_prefix(spec)

    def present() -> Path | None:
        return next(
            (
                p
                for p in sorted(download_dir.iterdir())
                if p.suffix in (".whl", ".tgz")
                and p.name.replace("-", "_").replace(".", "_").lower().startswith(prefix + "_")
            ),
            None,
        )

    if (found := present()) is not None:
        return found
    registry, name = spec.split(":", 1)
    if registry == "pypi":
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(download_dir),
            name,
        ]
    else:
        command = ["npm", "pack", "--silent", "--pack-destination", str(download_dir), name]
    subprocess.run(command, capture_output=True, text=True, timeout=300)
    return present()


def read_permissive(spec: str, download_dir: Path) -> tuple[Path, str, str] | None:
    """(archive, package name, long description) of one pinned package whose licence allows
    reuse; None when it is unavailable or its licence does not."""
    path = fetch(spec, download_dir)
    if path is None:
        return None
    name, licence, readme = (read_wheel_readme if path.suffix == ".whl" else read_npm_readme)(path)
    return (path, name, readme) if PERMISSIVE.search(licence) else None


def read_package_sections(download_dir: Path, specs: list[str] | None = None) -> dict[str, list[Section]]:
    """Sections of every pinned package with a permissive licence, keyed by package name."""
    specs = specs if specs is not None else pinned_packages()
    by_package: dict[str, list[Section]] = {}
    for spec in specs:
        package = read_permissive(spec, download_dir)
        if package is None or japanese_char_count(package[2]) < 200:
            continue
        _, name, readme = package
        sections = split_sections(name, readme)
        if sections:
            by_package[name] = sections
    return by_package


def read_pinned_list(path: Path) -> list[str]:
    """The ``registry:name==version`` lines of a pinned package list; blank lines and comments skipped."""
    return [
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def pinned_packages() -> list[str]:
    return read_pinned_list(PACKAGE_LIST)


# ---------------------------------------------------------------- training-only packages
TRAINING_PACKAGE_LIST = Path(__file__).with_name("japanese_training_packages.txt")
# Bundled documentation read besides the long description: Markdown/reST/text files, not
# change logs or licences (lists of versions and legal text, not documentation).
_DOC_SUFFIXES = (".md", ".markdown", ".rst", ".txt")
_NOT_DOCS = re.compile(r"(changelog|changes|history|license|licence|copying|notice|authors|/node_modules/)", re.I)
MAX_DOC_BYTES = 400_000


def bundled_documents(path: Path) -> list[tuple[str, str]]:
    """(file name, text) of each documentation file inside a wheel or npm tarball, sorted by name."""
    found: list[tuple[str, str]] = []
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as wheel:
            for info in sorted(wheel.infolist(), key=lambda i: i.filename):
                name = info.filename
                if (
                    name.lower().endswith(_DOC_SUFFIXES)
                    and not _NOT_DOCS.search(name)
                    and info.file_size <= MAX_DOC_BYTES
                ):
                    if ".dist-info/" in name:
                        continue
                    found.append((name, wheel.read(info).decode("utf-8", "replace")))
    else:
        with tarfile.open(path) as archive:
            for member in sorted((m for m in archive.getmembers() if m.isfile()), key=lambda m: m.name):
                name = member.name
                if name.lower() in ("package/readme.md", "package/readme"):
                    continue  # read as the long description
                if name.lower().endswith(_DOC_SUFFIXES) and not _NOT_DOCS.search(name) and member.size <= MAX_DOC_BYTES:
                    found.append((name, archive.extractfile(member).read().decode("utf-8", "replace")))
    return [(name, text) for name, text in found if japanese_char_count(text) >= 200]


def training_packages() -> list[str]:
    return read_pinned_list(TRAINING_PACKAGE_LIST)


def package_name(spec: str) -> str:
    registry, name = spec.split(":", 1)
    return name.split("==")[0] if registry == "pypi" else name.rsplit("@", 1)[0]


def read_training_sections(download_dir: Path, specs: list[str] | None = None) -> dict[str, list[Section]]:
    """Sections of the training-only packages (``japanese_training_packages.txt``): the long
    description and the bundled documentation files, permissive licences only. None of these
    packages is in ``japanese_readme_packages.txt``, so none is in a dev or test half."""
    specs = specs if specs is not None else training_packages()
    held = {normalised_name(package_name(s)) for s in pinned_packages()}
    by_package: dict[str, list[Section]] = {}
    seen: set[str] = set()  # forks ship the same README: each section once
    for spec in specs:
        if normalised_name(package_name(spec)) in held:
            raise ValueError(f"{spec} is also in {PACKAGE_LIST.name}: a training-only package must not be")
        package = read_permissive(spec, download_dir)
        if package is None:
            continue
        path, name, readme = package
        sections = split_sections(name, readme) if japanese_char_count(readme) >= 200 else []
        for _, text in bundled_documents(path):
            sections += split_sections(name, text)
        unique = [s for s in {s.text: s for s in sections}.values() if s.text not in seen]
        seen.update(s.text for s in unique)
        if unique:
            by_package[name] = unique
    return by_package


# ---------------------------------------------------------------- docstrings
# Docstrings taken per package at most: one package's API (thousands of functions) would
# otherwise outweigh every other package's.
MAX_DOCSTRINGS_PER_PACKAGE = 150


def split_summary(docstring: str) -> tuple[str, str]:
    """(first sentence of the first paragraph, the rest): docstrings wrap a long summary over lines."""
    paragraph, _, rest = docstring.strip().partition("\n\n")
    joined = ""
    for line in (line.strip() for line in paragraph.splitlines()):
        # Japanese wraps without a space; Latin words need one back.
        glue = "" if not joined or japanese_char_count(joined[-1] + line[:1]) == 2 else " "
        joined += glue + line
    summary, end, more = joined.partition("。")
    return summary + end, "\n".join(part for part in (more.strip(), rest) if part)


def docstring_sections(path: Path, package: str, limit: int = MAX_DOCSTRINGS_PER_PACKAGE) -> list[Section]:
    """Japanese docstrings of a wheel's Python modules as sections: the summary line is the
    heading, the signature and the rest of the docstring the text (the same bounds as README
    sections). At most ``limit``, the first in file order."""
    import ast

    if path.suffix != ".whl":
        return []
    sections: list[Section] = []
    with zipfile.ZipFile(path) as wheel:
        for name in sorted(n for n in wheel.namelist() if n.endswith(".py")):
            try:
                tree = ast.parse(wheel.read(name).decode("utf-8", "replace"))
            except (SyntaxError, ValueError):
                continue
            for node in ast.walk(tree):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    continue
                docstring = ast.get_docstring(node)
                if not docstring:
                    continue
                summary, rest = split_summary(docstring)
                signature = (
                    f"class {node.name}" if isinstance(node, ast.ClassDef) else f"{node.name}({ast.unparse(node.args)})"
                )
                body = "\n".join([signature, *(" ".join(line.split()) for line in rest.splitlines() if line.strip())])
                if len(body) < MIN_SECTION_CHARS or japanese_char_count(body) < MIN_JAPANESE_CHARS:
                    continue
                sections.append(Section(package, clean_heading(summary), cut(body, MAX_SECTION_CHARS)))
                if len(sections) >= limit:
                    return sections
    return sections


def normalised_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.lower())
