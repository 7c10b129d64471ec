"""The package's import graph: no cycles, and a pure core that never reaches ``temporalio``.

The graph is read from the source with ``ast``, not by importing: every ``import`` and
``from ... import`` of a ``batch_orchestra`` module, wherever it stands (module level, under
``if TYPE_CHECKING:``, inside a function), relative imports resolved. An import inside a function
counts too: it does not fail at import time, but the two modules still depend on each other (one
cannot be understood, moved or tested without the other), and that is what a cycle costs; an
import put in a function for an optional dependency is still a dependency.

An edge goes to the module imported. Importing a package means running its ``__init__``: a
module inside a package other than the importer's own enclosing ones adds an edge to that
package's ``__init__`` (and to any package above it), and so does a name (not a submodule) taken
from any package, the importer's own included (``from .. import name``). The importer's
enclosing packages are otherwise left out: Python has started them before the importer runs.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "batch_orchestra"
PACKAGE_DIR = ROOT / PACKAGE

KNOWN_CYCLES: frozenset[tuple[str, str]] = frozenset(
    {
        # (importer, imported): the import that closes a cycle today, one per cycle to break.
    }
)
"""Imports that close the import cycles there are today: each must still close one.

Without them the graph has no cycle, so a new cycle fails ``test_no_new_import_cycles``, naming
it; an entry that no longer closes a cycle (or no longer exists) fails it too, so the set can only
shrink. ``test_there_are_no_import_cycles`` fails (xfail) until it is empty.
"""

PURE_MODULES = [
    "batch_orchestra._series.state",
]
"""The pure core outside ``batch_orchestra._engine`` (every module under it is pure too)."""

ENGINE = f"{PACKAGE}._engine"


Modules = dict[str, Path]
Graph = dict[str, dict[str, int]]


@cache
def _modules(package_dir: Path = PACKAGE_DIR) -> Modules:
    """Every module of a package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _enclosing(name: str) -> set[str]:
    """The packages Python has started before it runs module ``name`` (its parents)."""
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def _source(modules: Modules, module: str, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` reads from, relative levels resolved."""
    if not node.level:
        return node.module or ""
    is_package = modules[module].name == "__init__.py"
    base = (module if is_package else module.rpartition(".")[0]).split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _with_parents(modules: Modules, name: str) -> list[str]:
    """``name`` and the packages that contain it, those of them that are package modules."""
    parts = name.split(".")
    prefixes = (".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return [p for p in prefixes if p in modules]


def _imports(modules: Modules, module: str) -> dict[str, int]:
    """The package modules that importing ``module`` runs (first line of each)."""
    path = modules[module]
    before = _enclosing(module) | {module}  # running (or run) before the module's first line
    edges: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            for alias in node.names:
                targets += [t for t in _with_parents(modules, alias.name) if t not in before]
        elif isinstance(node, ast.ImportFrom):
            source = _source(modules, module, node)
            targets += [t for t in _with_parents(modules, source) if t not in before]
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:
                    targets.append(sub)
                elif source in modules and source != module:
                    targets.append(source)  # a name defined by (or re-exported from) source
        for target in targets:
            edges.setdefault(target, node.lineno)
    return edges


@cache
def _graph(package_dir: Path = PACKAGE_DIR) -> Graph:
    """module -> {package module it imports: first line}."""
    modules = _modules(package_dir)
    return {name: _imports(modules, name) for name in modules}


def _path(graph: Graph, start: str, goal: str) -> list[str] | None:
    """A shortest import path from ``start`` to ``goal`` (both included), if any."""
    via: dict[str, str] = {}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for target in sorted(graph[module]):
            if target in via or target == start:
                continue
            via[target] = module
            if target == goal:
                path = [goal]
                while path[-1] != start:
                    path.append(via[path[-1]])
                return path[::-1]
            queue.append(target)
    return None


def _cycle_through(graph: Graph, importer: str, imported: str) -> str:
    """The shortest cycle that the import ``importer -> imported`` closes, with lines."""
    back = _path(graph, imported, importer) if importer != imported else [importer]
    assert back is not None
    cycle = [importer, *back]
    return (
        " -> ".join(f"{a} ({graph[a][b]})" for a, b in zip(cycle, cycle[1:], strict=False))
        + f" -> {importer}"
    )


def _cycles(graph: Graph) -> list[str]:
    """One cycle per import that closes one, found depth first (empty for an acyclic graph)."""
    found, done, on_path = [], set(), []

    def visit(module: str) -> None:
        on_path.append(module)
        for target in sorted(graph[module]):
            if target in on_path:
                found.append(_cycle_through(graph, module, target))
            elif target not in done:
                visit(target)
        on_path.pop()
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    return found


_TOY = {
    "toy/__init__.py": "from .a import A\nVERSION = 1\n",
    "toy/a.py": (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n"
        "    from .sub.c import C\n"
        "def f():\n"
        "    import toy.sub.d\n"
        "A = 1\n"
    ),
    "toy/b.py": "from . import VERSION\n",
    "toy/sub/__init__.py": "",
    "toy/sub/c.py": "from .. import a\nfrom ..b import VERSION\nC = 1\n",
    "toy/sub/d.py": "import temporalio.workflow\n",
}


def _toy(tmp_path: Path) -> Path:
    for name, text in _TOY.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "toy"


def test_the_graph_follows_python_s_rules_for_packages(tmp_path: Path) -> None:
    graph = _graph(_toy(tmp_path))
    assert graph == {
        "toy": {"toy.a": 1},
        # A submodule of its own package; under TYPE_CHECKING and in a function, each with the
        # package its module is in (toy.sub's __init__ runs first).
        "toy.a": {"toy.b": 2, "toy.sub": 4, "toy.sub.c": 4, "toy.sub.d": 6},
        # A name from its own package needs the package's __init__ to have got that far.
        "toy.b": {"toy": 1},
        "toy.sub": {},
        "toy.sub.c": {"toy.a": 1, "toy.b": 2},
        "toy.sub.d": {},
    }
    # Each cycle is named from the import that closes it, with the line of each import.
    assert sorted(_cycles(graph)) == [
        "toy.b (1) -> toy (1) -> toy.a (2) -> toy.b",
        "toy.sub.c (1) -> toy.a (4) -> toy.sub.c",
    ]
    assert _reaching_temporalio(_modules(tmp_path / "toy"), graph, ["toy.sub", "toy.sub.c"]) == [
        "toy.sub.c -> toy.a -> toy.sub.d, which imports temporalio (line 1)"
    ]


def test_no_new_import_cycles() -> None:
    graph = _graph()
    assert len(graph) == len(list(PACKAGE_DIR.rglob("*.py"))) and graph[PACKAGE]
    problems = []
    for importer, imported in sorted(KNOWN_CYCLES):
        if imported not in graph.get(importer, {}):
            problems.append(f"{importer} no longer imports {imported}: remove it from KNOWN_CYCLES")
        elif _path(graph, imported, importer) is None and importer != imported:
            problems.append(f"{importer} -> {imported} closes no cycle now: remove it")
    reduced = {
        module: {t: line for t, line in edges.items() if (module, t) not in KNOWN_CYCLES}
        for module, edges in graph.items()
    }
    problems += [f"new import cycle: {cycle}" for cycle in _cycles(reduced)]
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.mark.xfail(bool(KNOWN_CYCLES), reason="KNOWN_CYCLES lists cycles to break", strict=True)
def test_there_are_no_import_cycles() -> None:
    graph = _graph()
    known = [_cycle_through(graph, a, b) for a, b in sorted(KNOWN_CYCLES) if b in graph.get(a, {})]
    if _cycles(graph):
        pytest.fail("import cycles, module (line) -> ...:\n  " + "\n  ".join(known), pytrace=False)


def _pure() -> list[str]:
    modules = _modules()
    missing = [m for m in PURE_MODULES if m not in modules]
    assert not missing, f"gone, remove them from PURE_MODULES: {missing}"
    return sorted(
        {*PURE_MODULES, *(m for m in modules if m == ENGINE or m.startswith(ENGINE + "."))}
    )


def _third_party(path: Path) -> dict[str, int]:
    """Top-level names of modules outside the package that a module imports: first line."""
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.setdefault(alias.name.split(".")[0], node.lineno)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.setdefault(node.module.split(".")[0], node.lineno)
    return found


def _reaching_temporalio(modules: Modules, graph: Graph, pure: list[str]) -> list[str]:
    """For each of ``pure`` that imports temporalio, itself or through the package: how."""
    users = {m for m, path in modules.items() if "temporalio" in _third_party(path)}
    problems = []
    for module in pure:
        paths = [[module]] if module in users else []
        paths += [p for u in sorted(users) if (p := _path(graph, module, u)) is not None]
        if paths:
            path = min(paths, key=len)
            line = _third_party(modules[path[-1]])["temporalio"]
            problems.append(f"{' -> '.join(path)}, which imports temporalio (line {line})")
    return problems


def test_the_pure_core_reaches_no_temporalio_through_the_package() -> None:
    problems = _reaching_temporalio(_modules(), _graph(), _pure())
    if problems:
        pytest.fail("the pure core reaches temporalio:\n  " + "\n  ".join(problems), pytrace=False)


_BLOCKED_IMPORT = """
import importlib, json, sys, types

package, package_dir, modules = json.loads(sys.argv[1])


class RefuseTemporalio:
    def find_spec(self, name, path=None, target=None):
        if name == "temporalio" or name.startswith("temporalio."):
            raise ImportError(f"the pure core imported {name}")
        return None


sys.meta_path.insert(0, RefuseTemporalio())
# The package's __init__ (the whole library) is not the pure core's to run: a bare package
# object in its place lets the submodules be imported by themselves.
root = types.ModuleType(package)
root.__path__ = [package_dir]
sys.modules[package] = root
for name in modules:
    importlib.import_module(name)
print("imported", len(modules))
"""


def test_the_pure_core_imports_with_temporalio_blocked() -> None:
    modules = _pure()
    done = subprocess.run(
        [sys.executable, "-c", _BLOCKED_IMPORT, json.dumps([PACKAGE, str(PACKAGE_DIR), modules])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        pytest.fail(done.stderr[-3000:], pytrace=False)
    assert f"imported {len(modules)}" in done.stdout
