"""Dependencies inside the package point one way (docs/ARCHITECTURE.md): between its top-level units (subpackages
such as pipeline/ and modules such as model_input.py) the imports, read with ``ast`` (lazy imports inside functions
included), form no cycle, and only tools/ and ros/ (the thin CLIs and nodes) are imported by nothing below them."""

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "seg_perception"
TOP = {"tools": set(), "ros": {"tools"}}
"""Units at the top -> the only units that may import them."""


def unit_imports() -> dict[str, set[str]]:
    """{unit: the other units it imports}, a unit being the first path component under seg_perception/."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        unit = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == PACKAGE.name and len(parts) > 1 and parts[1] != unit:
                    edges[unit].add(parts[1])
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges`` as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, str] = {}

    def visit(unit: str, path: list[str]) -> list[str] | None:
        state[unit] = "open"
        for target in sorted(edges.get(unit, ())):
            if state.get(target) == "open":  # on the current path
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target, [*path, target])):
                return cycle
        state[unit] = "done"
        return None

    for unit in sorted(edges):
        if unit not in state and (cycle := visit(unit, [unit])):
            return cycle
    return None


def test_find_cycle_finds_one_and_only_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"a"}, "a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_the_units_import_each_other_without_a_cycle():
    edges = unit_imports()
    assert {"pipeline", "backends", "ros", "model_input", "ground_projection"} <= set(edges) | {
        target for targets in edges.values() for target in targets
    }  # the graph was read
    assert "backends" in edges["pipeline"] and "model_input" in edges["backends"]
    assert find_cycle(edges) is None, f"an import cycle between units: {' -> '.join(find_cycle(edges))}"


def test_only_the_nodes_and_clis_sit_on_top():
    for unit, targets in unit_imports().items():
        for top, allowed in TOP.items():
            assert top not in targets or unit in allowed, f"{unit}/ imports {top}/, which sits above it"
