"""Write a benchmark's markdown into its own marked section of a docs page.

Several benchmarks share ``docs/benchmarks.md``; each owns the text between
``<!-- NAME:start -->`` and ``<!-- NAME:end -->`` and leaves the rest alone.
"""

from __future__ import annotations

import platform
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def machine_line() -> str:
    import os

    return f"Measured on {os.cpu_count()} CPU cores, {platform.machine()}, Python {platform.python_version()}."


def write_section(name: str, markdown: str, page: Path = DOCS / "benchmarks.md") -> Path:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    text = (
        page.read_text(encoding="utf-8")
        if page.exists()
        else "# Benchmarks\n\nEach section is written by the script it names.\n"
    )
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    return page


def data_spec(text: str) -> tuple[Path, str]:
    """``PATH[:SPLIT]`` -> (BEIR folder, qrels split); the split defaults to "test"."""
    folder, _, split = text.rpartition(":") if ":" in Path(text).name else (text, "", "")
    return Path(folder), split or "test"


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
