"""The names of the modules a layer folder replaced, looked up lazily: one `__getattr__` for every such folder."""

from __future__ import annotations

import importlib
from typing import Callable

_MISSING = object()


def names_of(package: str, *modules: str) -> Callable[[str], object]:
    """A module-level `__getattr__` for `package` that answers with the first of `modules` holding the name.

    Lazy, so importing one module of the folder does not import the others
    (and their dependencies) first.
    """

    def __getattr__(name: str):
        if not name.startswith("__"):
            for module in modules:
                found = getattr(importlib.import_module(module), name, _MISSING)
                if found is not _MISSING:
                    return found
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
