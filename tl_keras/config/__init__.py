"""What a run is: settings groups, the run config and its validation, recipes, the command line's flags.

Above `io/`; imports nothing else of tl_keras (the model and text layers add their own checks with
`validation.register_check`).

`from tl_keras.config import X` still finds every public name of `tl_keras.config.run_config` and
`tl_keras.config.settings` (as the module this import named before the layers became folders did);
new code imports the module itself.
"""

import importlib as _importlib


def __getattr__(name: str):
    # Lazy, so importing one module of this folder does not import the others (and their dependencies) first.
    if name.startswith("__"):
        raise AttributeError(name)
    for module in ("tl_keras.config.run_config", "tl_keras.config.settings"):  # the old config.py re-exported the vocabularies
        found = getattr(_importlib.import_module(module), name, _MISSING)
        if found is not _MISSING:
            return found
    raise AttributeError(f"module 'tl_keras.config' has no attribute {name!r}")


_MISSING = object()
