"""Production: the TF Serving SavedModel (signatures, warmup, versions), TFLite conversion with its parity report,
reloading a classifier from a run or an export, and the class names an export carries.

`from tl_keras.export import X` still finds every public name of `tl_keras.export.saved_model` (the module this import named
before the layers became folders); new code imports the module itself.
"""

import importlib as _importlib


def __getattr__(name: str):
    # Lazy, so importing one module of this folder does not import the others (and their dependencies) first.
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_importlib.import_module("tl_keras.export.saved_model"), name)
