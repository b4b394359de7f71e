"""Dependencies point one way: each layer imports only the layers below it, and no module imports
itself back through others. Every import counts: at the top of a module, inside a function, or
for type checking only, since each one is a way a reader has to walk back up."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import flowbus

PACKAGE = Path(flowbus.__file__).parent

#: bottom to top: a module may import its own layer and the ones before it, never one after
LAYERS: list[set[str]] = [
    {
        "flowbus.errors",
        "flowbus.lazy",
        "flowbus.ids",
        "flowbus.jsonio",
        "flowbus.codec",
        "flowbus.keys",
        "flowbus.telemetry",
        "flowbus.foreground",
    },
    {"flowbus.expr"},
    {"flowbus.events", "flowbus.queue", "flowbus.delays", "flowbus.limits"},
    {"flowbus.config"},
    {"flowbus.runtime"},
    {"flowbus.stores"},
    {
        "flowbus.active_version",
        "flowbus.publishing",
        "flowbus.trace",
        "flowbus.reads",
        "flowbus.metrics",
        "flowbus.schedules",
        "flowbus.retention",
    },
    {"flowbus.worker"},
    {"flowbus.engine", "flowbus.testing"},
    {"flowbus.settings", "flowbus.logs", "flowbus.api", "flowbus.cli", "flowbus.__main__"},
]


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("flowbus", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The flowbus modules ``name`` imports (``from flowbus import jsonio`` is flowbus.jsonio)."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join([*anchor[: len(anchor) - node.level + 1], *([base] if base else [])])
            submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in known]
            yield from submodules
            if len(submodules) < len(node.names) and base in known:
                yield base


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imports_of(name, path, known)) - {name} for name, path in known.items()}


def layer_of(module: str) -> int:
    for index, layer in enumerate(LAYERS):
        if any(module == top or module.startswith(top + ".") for top in layer):
            return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def test_every_module_imports_only_its_own_layer_and_those_below():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph().items()
        if module != "flowbus"  # the package's facade names what the layers offer, lazily
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None (a depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_imports_itself_back_through_others():
    assert find_cycle(graph()) is None


def test_the_cycle_search_finds_a_cycle_and_names_its_path():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "d": {"a"}}) is None


def test_the_layer_walk_sees_an_upward_import_in_a_function_and_under_type_checking(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from flowbus.stores import protocols\n"
        "def later():\n    import flowbus.worker\n"
    )
    known = {**modules(), "flowbus.config.probe": module}
    assert set(imports_of("flowbus.config.probe", module, known)) == {"flowbus.stores.protocols", "flowbus.worker"}


def test_importing_the_expression_language_loads_nothing_of_the_rest():
    code = "import sys, flowbus.expr; print(' '.join(sorted(m for m in sys.modules if m.startswith('flowbus'))))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    outside = [m for m in loaded if m != "flowbus" and not m.startswith("flowbus.expr")]
    assert outside == ["flowbus.errors", "flowbus.lazy"]
