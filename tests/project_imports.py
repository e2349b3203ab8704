"""Static import graph of the project (ast only: nothing is imported, so it works without the optional engines).

Shared by the layering test and the cluster test: which project modules a module imports (module level and
inside functions alike, since a lazy import still runs on the path that needs it), and which third-party
top-level names a module and everything it reaches inside the project import.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The importable project packages (pyproject.toml [tool.setuptools.packages.find]).
PROJECT_PACKAGES = ("jobkit", "data_pipeline", "training", "rl", "evaluation", "serving", "orchestration", "ray_jobs")
# Libraries: everything but the entrypoints. They must never import ray_jobs.
LIBRARY_PACKAGES = ("data_pipeline", "training", "rl", "evaluation", "serving", "orchestration")


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` of every project module present in this checkout."""
    out = {}
    for package in PROJECT_PACKAGES:
        root = REPO / package
        for path in sorted(root.rglob("*.py")) if root.is_dir() else []:
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _is_project(name: str) -> bool:
    return name.split(".")[0] in PROJECT_PACKAGES


@cache
def imports_of(module: str) -> tuple[frozenset[str], frozenset[str]]:
    """(project modules, third-party top-level names) that ``module``'s source imports anywhere in the file.

    ``from pkg import name`` counts ``pkg.name`` when that is a module of the project, else ``pkg``. Imports
    under ``if TYPE_CHECKING:`` never run, so they do not count. Relative imports are resolved.
    """
    files = module_files()
    path = files[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    project, external = set(), set()

    def add(name: str) -> None:
        if _is_project(name):
            # the deepest existing module of a dotted name (``a.b.func`` -> ``a.b``)
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name:
                project.add(name)
        else:
            top = name.split(".")[0]
            if top and top not in sys.stdlib_module_names and top != "__future__":
                external.add(top)

    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                 and "TYPE_CHECKING" in ast.unparse(block.test) for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                base_name = ".".join(base + ([node.module] if node.module else []))
            else:
                base_name = node.module or ""
            for alias in node.names:
                full = f"{base_name}.{alias.name}"
                add(full if full in files else base_name)
    project.discard(module)
    return frozenset(project), frozenset(external)


def reachable(module: str) -> set[str]:
    """``module`` and every project module it imports, transitively (packages' ``__init__`` included, as Python
    runs them on the way to a submodule)."""
    files = module_files()
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen or name not in files:
            continue
        seen.add(name)
        todo.extend(imports_of(name)[0])
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return seen


def third_party_imports(module: str) -> dict[str, set[str]]:
    """``{third-party top-level name: project modules that import it}`` over everything ``module`` reaches."""
    out: dict[str, set[str]] = {}
    for name in reachable(module):
        for top in imports_of(name)[1]:
            out.setdefault(top, set()).add(name)
    return out


def import_cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted, in sorted order."""
    graph = {m: sorted(imports_of(m)[0]) for m in module_files()}
    index, low, stack, on_stack, sccs = {}, {}, [], set(), []
    counter = [0]

    def strong(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
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
                sccs.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            strong(v)
    return sorted(sccs)
