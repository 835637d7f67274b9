"""Lists import cycles between tl_keras modules, counting imports inside functions too.

A deferred import hides a cycle from Python but not from a reader: the two
modules still depend on each other. Exit status 1 when a cycle exists.

    python tools/import_cycles.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tl_keras"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def main() -> int:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    # A package's __init__ re-exporting its submodules is not a cycle between them.
    graph = {name: {t for t in imports_of(path, set(files)) if not (path.name == "__init__.py" and t.startswith(name + "."))}
             for name, path in files.items()}
    for name, path in files.items():
        if path.name != "__init__.py":  # importing a submodule runs its package's __init__ first; that edge is not a choice
            graph[name].discard(name.rsplit(".", 1)[0])
    found = cycles(graph)
    for component in found:
        print("cycle:", " <-> ".join(component))
    if not found:
        print(f"no import cycle among {len(files)} modules")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
