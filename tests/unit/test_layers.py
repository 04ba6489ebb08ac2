"""The layout is the architecture: imports run one way through the declared layers, no file or
package imports itself round a circle, and no module of the packages outgrows one concept.

Every import is read from the source with `ast`, including those inside functions and under
TYPE_CHECKING, because a lazy or type-only import is still a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

# Top first. A module may import its own layer (without a circle) and the layers below it.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("entry points", ("chronorisk.cli", "chronorisk.bench")),
    ("serving, portfolio insights and monitoring", ("serving", "chronorisk.insights", "monitoring")),
    ("synthetic cohort", ("chronorisk.synthetic",)),
    ("training", ("training",)),
    ("model version", ("chronorisk.model",)),
    ("features", ("features",)),
    ("data layer", ("chronorisk.data",)),
    ("settings", ("chronorisk.settings",)),
]
TOP_PACKAGES = ("chronorisk", "features", "training", "serving", "monitoring")
NAMESPACE = "chronorisk"  # its __init__ holds a docstring only and belongs to no layer
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in TOP_PACKAGES for p in sorted(Path(top).rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules one file imports (`from pkg import mod` resolves to the module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                break
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan), each a circle of imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_belongs_to_a_declared_layer():
    unplaced = [m for m in MODULES if m != NAMESPACE and _layer(m) is None]
    assert not unplaced, f"modules in no layer of {__file__}: {unplaced}"


def test_the_namespace_package_imports_nothing_of_ours():
    assert not GRAPH[NAMESPACE]


def test_imports_run_down_the_layers_only():
    upward = [f"{m} ({LAYERS[_layer(m)][0]}) imports {t} ({LAYERS[_layer(t)][0]})"
              for m, targets in GRAPH.items() if m != NAMESPACE for t in targets
              if _layer(t) is not None and _layer(t) < _layer(m)]  # type: ignore[operator]
    assert not upward, "\n".join(sorted(upward))


def test_settings_import_nothing_of_ours():
    assert not GRAPH["chronorisk.settings"]


def test_no_file_imports_itself_round_a_circle():
    assert not _cycles(GRAPH)


def test_no_package_imports_itself_round_a_circle():
    packages: dict[str, set[str]] = defaultdict(set)
    for m, targets in GRAPH.items():
        for t in targets:
            if _package(t) != _package(m):
                packages[_package(m)].add(_package(t))
    assert not _cycles(packages)


def test_no_module_of_the_packages_is_over_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_a_layer_check_catches_an_upward_import():
    """The check bites: a data-layer module importing the service is reported."""
    assert _layer("serving.service") < _layer("chronorisk.data.contracts")  # type: ignore[operator]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
