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


def moved_names(package: str, moved: dict[str, str]) -> Callable[[str], object]:
    """A module-level `__getattr__` answering each name in `moved` (name -> the module it now lives in), with a DeprecationWarning.

    For names a module held before the image code moved above the core
    layers (`tl_keras.models.builders.build_classifier` is now
    `tl_keras.vision.classifier.build_classifier`): old imports keep working
    for one release without the core importing the layer above it.
    """

    def __getattr__(name: str):
        if name in moved:
            import warnings

            warnings.warn(f"{package}.{name} moved to {moved[name]}.{name}; the old path goes in the next release", DeprecationWarning,
                          stacklevel=2)
            return getattr(importlib.import_module(moved[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
