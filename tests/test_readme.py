"""Every ```python block of README.md runs as written, in order, in one namespace, in a temp folder.

A reader pastes the blocks one after another into one session, so later blocks may use what
earlier ones defined. A block that needs something a test cannot have (a server, the network)
is skipped only when the line right before it is the marker ``<!-- readme-test: skip REASON -->``;
the reason is printed with the skip.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_SKIP = re.compile(r"<!-- readme-test: skip (?P<reason>.+?) -->\s*$")


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, code, skip reason or None) of each ```python block."""
    blocks = []
    for match in re.finditer(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL):
        line = text.count("\n", 0, match.start()) + 1
        previous = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(previous)
        blocks.append((line, match.group(1), skip.group("reason") if skip else None))
    return blocks


def test_the_extractor_finds_blocks_and_skip_markers():
    text = (
        "x\n```python\na = 1\n```\n<!-- readme-test: skip needs a server -->\n```python\nb = 2\n```\n```bash\nc\n```\n"
    )
    assert python_blocks(text) == [(2, "a = 1\n", None), (6, "b = 2\n", "needs a server")]


@pytest.mark.integration
def test_every_readme_python_block_runs(tmp_path, monkeypatch, capsys):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert len(blocks) >= 6, "the README's examples were not found"
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__readme__"}
    ran = 0
    for line, code, skip in blocks:
        if skip is not None:
            print(f"README.md:{line}: skipped ({skip})")
            continue
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"README.md block at line {line} failed: {type(error).__name__}: {error}")
        ran += 1
    assert ran >= 6
    # Running the examples leaves only folders .gitignore names.
    ignored = {line.strip().strip("/") for line in (README.parent / ".gitignore").read_text().splitlines()}
    left = {path.name for path in tmp_path.iterdir()}
    assert left <= ignored, f"the README's examples leave {sorted(left - ignored)}, which .gitignore does not name"
