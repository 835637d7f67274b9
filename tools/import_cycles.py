"""Checks tl_keras's imports: no cycle between modules, and no folder importing a folder above it in `LAYERS`.

Imports inside functions count too: a deferred import hides a cycle or an
upward dependency from Python but not from a reader. Modules directly in
`tl_keras/` (`run.py`, `compare.py`, `distill.py`) are the top: they may
import anything, and nothing below may import them or the package root.
Exit status 1 on any finding, each printed on its own line.

    python tools/import_cycles.py
    python tools/import_cycles.py --package=/path/to/a/copy/of/tl_keras
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tl_keras"
# Bottom to top: a module may import its own folder and the folders before it.
LAYERS = ("io", "config", "data", "models", "tasks", "training", "evaluation", "export", "vision", "text", "audio")


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The module's position in `LAYERS`; the package root and the modules directly in it are above them all."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if len(parts) == 2 and parts[1] in LAYERS:  # a layer folder's own __init__
        return LAYERS.index(parts[1])
    return len(LAYERS)


def upward_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(importer, imported) pairs where a lower layer imports a higher one."""
    return sorted((source, target) for source, targets in graph.items() for target in targets if layer_of(target) > layer_of(source))


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


def main(argv: list[str]) -> int:
    package = Path(next((a.split("=", 1)[1] for a in argv if a.startswith("--package=")), PACKAGE))
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    # A package's __init__ re-exporting its submodules is not a cycle between them.
    graph = {name: {t for t in imports_of(path, set(files)) if not (path.name == "__init__.py" and t.startswith(name + "."))}
             for name, path in files.items()}
    for name, path in files.items():
        if path.name != "__init__.py":  # importing a submodule runs its package's __init__ first; that edge is not a choice
            graph[name].discard(name.rsplit(".", 1)[0])
    found = cycles(graph)
    for component in found:
        print("cycle:", " <-> ".join(component))
    upward = upward_imports(graph)
    for source, target in upward:
        order = " < ".join(LAYERS)
        print(f"upward import: {source} ({_layer_name(source)}) imports {target} ({_layer_name(target)}); order: {order} < top")
    if not found and not upward:
        print(f"no import cycle and no upward import among {len(files)} modules ({' < '.join(LAYERS)} < top)")
    return 1 if found or upward else 0


def _layer_name(module: str) -> str:
    layer = layer_of(module)
    return LAYERS[layer] if layer < len(LAYERS) else "top"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
