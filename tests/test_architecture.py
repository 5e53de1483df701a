"""The import rules of docs/architecture.md, read from the source: layers, no upward import, no circle."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "sse_integrations"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Bottom first. A unit (a top-level module or a subpackage) imports units of lower layers only.
LAYERS: list[tuple[str, ...]] = [
    ("_checks", "formats", "matryoshka", "search_mode", "_payload"),
    ("model", "hub", "pooling", "passages", "sparse", "documents", "_adapters"),
    ("encoder",),
    ("encoder_process", "sparse_stream"),
    ("qdrant",),
    ("evaluation", "chroma", "_stores"),
    ("langchain", "llama_index"),
    ("cli",),
]
LAYER_OF = {unit: number for number, units in enumerate(LAYERS) for unit in units}
# The package's face (`import sse_integrations`) re-exports the core and must stay as light: layers 0-2.
FACE_LAYER = LAYER_OF["encoder"] + 1


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def resolve(name: str) -> str | None:
    """The package module ``name`` lives in (its longest existing prefix), None outside the package."""
    parts = name.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts) or None


def imports_of(name: str) -> set[str]:
    """Every package module that module ``name`` imports, at any depth of its code (lazy imports too)."""
    path = MODULES[name]
    package = name if is_package(name) else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(filter(None, (resolve(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            source = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                # `from . import x` imports the submodule x when there is one, else a name of the package's face.
                target = resolve(f"{source}.{alias.name}") if f"{source}.{alias.name}" in MODULES else resolve(source)
                if target:
                    found.add(target)
    found.discard(name)
    return found


def unit_of(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "sse_integrations"


def test_every_unit_has_a_layer_and_a_line_in_the_architecture_notes():
    units = {unit_of(name) for name in MODULES} - {"sse_integrations", "assets"}
    assert units == set(LAYER_OF), f"units without a layer: {units - set(LAYER_OF)}; stale: {set(LAYER_OF) - units}"
    notes = ARCHITECTURE.read_text(encoding="utf-8")
    unnamed = [unit for unit in LAYER_OF if not re.search(rf"`{unit}(\.py|/)`", notes)]
    assert not unnamed, f"docs/architecture.md does not name {unnamed}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_runs_up_a_layer_or_into_a_package_face(name):
    upward = []
    layer = FACE_LAYER if name == "sse_integrations" else LAYER_OF[unit_of(name)]
    for target in imports_of(name):
        if target == "sse_integrations":
            upward.append(f"{target} (the package's face)")
        elif unit_of(target) != unit_of(name) and LAYER_OF[unit_of(target)] >= layer:
            upward.append(f"{target} (layer {LAYER_OF[unit_of(target)]})")
        elif is_package(target) and name.startswith(target + ".") and not name.endswith(".__main__"):
            # A module never imports its own package's face (`python -m`'s __main__ runs it, by design):
            # the face re-exports the modules, not the other way round.
            upward.append(f"{target} (its own package's face)")
    assert not upward, f"{name} (layer {layer}) imports {upward}"


def test_no_import_circle():
    graph = {name: imports_of(name) for name in MODULES}
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                circles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not circles, "import circles: " + "; ".join(" -> ".join(circle) for circle in circles)
