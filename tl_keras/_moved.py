"""Old module paths from before the layers became folders (`tl_keras.atomic` is now `tl_keras.io.atomic`), for one release.

`import tl_keras.backbones` or `from tl_keras.tta import tta_views` in a user's
script keeps working: a finder on `sys.meta_path` answers each old name with
the module at its new place (the same module object, so patching one patches
both) and warns once with the new path. `docs/layout.md` lists every move.
Old paths that are now folders (`tl_keras.config`, `tl_keras.training`,
`tl_keras.evaluation`, `tl_keras.export`) re-export their module's names
themselves.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "atomic": "io.atomic", "run_folder": "io.run_folder",
    "settings": "config.settings", "cli": "config.cli", "recipes": "config.recipes",
    "augment": "vision.augment", "tta": "vision.tta", "datacheck": "vision.datacheck", "layers": "vision.layers",
    "epochs": "data.epochs",
    "anatomy": "models.anatomy", "builders": "models.builders", "backbones": "vision.backbones", "hub_layer": "models.hub_layer",
    "ensemble": "models.ensemble", "losses": "models.losses",
    "features": "training.features", "freezing": "training.freezing", "callbacks": "training.callbacks", "resume": "training.resume",
    "lr_finder": "training.lr_finder", "distribute": "training.distribute", "pretrain": "vision.pretrain",
    "run_steps": "training.run_steps",
    "calibration": "evaluation.calibration", "inspection": "vision.inspection", "explain": "vision.explain",
    "gallery": "vision.gallery", "report": "evaluation.report",
    "signatures": "export.signatures", "warmup": "vision.warmup", "tflite": "vision.tflite", "reload": "export.reload",
    "classes": "export.classes",
}
# Modules that moved out of a layer folder when the image code went above the core layers.
MOVED_FROM_FOLDERS = {
    "data.pipeline": "vision.pipeline", "data.folders": "vision.folders", "data.arrays": "vision.arrays",
    "data.builtin": "vision.builtin", "data.tfds_source": "vision.tfds_source", "models.backbones": "vision.backbones",
    "models.checks": "vision.checks", "training.pretrain": "vision.pretrain", "evaluation.explain": "vision.explain",
    "evaluation.gallery": "vision.gallery", "evaluation.inspection": "vision.inspection",
}
# `tl_keras.export.tflite` and `tl_keras.export.warmup` stay (what every modality shares); their image halves moved to vision/.


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return importlib.import_module(self.target)

    def exec_module(self, module):
        pass  # the target module ran when it was imported


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """Maps `tl_keras.<old>` (and `tl_keras.recipes.<name>`, `tl_keras.data.folders`, ...) to the module's new path."""

    def find_spec(self, fullname: str, path=None, target=None):
        if not fullname.startswith("tl_keras."):
            return None
        relative = fullname[len("tl_keras."):]
        head, _, rest = relative.partition(".")
        if relative in MOVED_FROM_FOLDERS:
            new = f"tl_keras.{MOVED_FROM_FOLDERS[relative]}"
        elif head in MOVED:
            new = f"tl_keras.{MOVED[head]}" + (f".{rest}" if rest else "")
        else:
            return None
        warnings.warn(f"{fullname} moved to {new}; the old path goes in the next release", DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(finder, MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedModuleFinder())
