"""No import cycles between modelapi's modules, lazy imports inside functions included.

A lazy import hides a cycle only until someone moves it to the top of the file; so every import
statement counts, wherever it is. Imports under `if TYPE_CHECKING:` do not: they never run.
Importing `a.b.c` runs the packages `a` and `a.b` first, but a package that is already being
imported satisfies that at once, so only what a statement names is an edge: the module it
imports, or the package whose names it takes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import modelapi
from modelapi.deploy.modules import import_statements

PACKAGE = Path(modelapi.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _owner(name: str) -> str | None:
    """The module `name` is, or the module it is a name of."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The modelapi modules that `module` imports, at its top or in a function."""
    path = MODULES[module]
    tree = ast.parse(path.read_bytes(), str(path))
    named: set[str | None] = set()
    for base, names in import_statements(tree, module, is_package=path.name == "__init__.py"):
        submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in MODULES]
        named.update(submodules)
        if not names or len(submodules) < len(names):
            named.add(_owner(base))
    return {name for name in named if name and name.startswith("modelapi") and name != module}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(graph[successor]))))
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_module_imports_itself_back() -> None:
    graph = {module: imports_of(module) for module in MODULES}
    assert cycles(graph) == []


def test_lazy_imports_count_and_typing_only_ones_do_not() -> None:
    # service imports csv_rows inside a function; typed_rows names schema for typing only.
    assert "modelapi.bodies.csv_rows" in imports_of("modelapi.service")
    assert "modelapi.schema" in imports_of("modelapi.bodies.csv_rows")
    assert "modelapi.schema" not in imports_of("modelapi.bodies.typed_rows")


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}) == [["a", "b"], ["c", "d"]]
