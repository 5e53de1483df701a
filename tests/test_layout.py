"""The package's layout rules (DESIGN.md), read from the source so a change that breaks one fails here."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sse_integrations"
CORE = ("encoder", "formats", "matryoshka", "model", "sparse", "sparse_stream")
ADAPTERS = ("langchain", "llama_index", "chroma", "qdrant")
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against the package."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_core_imports_no_framework_database_or_cli():
    code = (
        "import sys\n"
        f"for name in {CORE!r}: __import__('sse_integrations.' + name)\n"
        "bad = ('langchain_core', 'llama_index', 'chromadb', 'qdrant_client', 'sse_integrations.cli')\n"
        "print([m for m in sys.modules if m.startswith(bad)])\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[]"


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_an_adapter_never_imports_another_adapter(adapter):
    # The framework stores sit on the Qdrant index (the database layer below them); no adapter
    # imports a framework adapter, and the database layer imports none.
    frameworks = ("langchain", "llama_index", "chroma")
    others = {f"sse_integrations.{name}" for name in frameworks if name != adapter}
    sources = (
        [PACKAGE / f"{adapter}.py"]
        if (PACKAGE / f"{adapter}.py").exists()
        else sorted((PACKAGE / adapter).glob("*.py"))
    )
    for path in sources:
        imported = imported_modules(path)
        assert not {name for name in imported if name in others or name.startswith(tuple(o + "." for o in others))}, (
            path
        )


def test_nothing_under_qdrant_prints():
    for path in sorted((PACKAGE / "qdrant").glob("*.py")):
        calls = [
            node.lineno
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
        ]
        assert not calls, f"{path} prints at lines {calls}"


def test_nothing_touches_qdrant_client_internals():
    for path in modules():
        text = path.read_text(encoding="utf-8")
        internal = [
            name for name in imported_modules(path) if name.startswith(("qdrant_client.local", "qdrant_client.hybrid"))
        ]
        assert not internal and "._client" not in text, path


def test_module_and_function_sizes():
    too_long = []
    for path in modules():
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long


def test_no_private_name_is_imported_across_modules():
    """Private functions and classes stay in their module; a package-private module (``_checks``) is shared on purpose."""
    private = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                folder = path.parent.parents[node.level - 2] if node.level > 1 else path.parent
                source = folder.joinpath(*(node.module or "").split("."))
                private += [
                    f"{path.relative_to(PACKAGE)}: {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not (source / f"{alias.name}.py").exists()
                ]
    assert not private
