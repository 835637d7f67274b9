"""Evaluation: metrics, calibration, the held-out report with its plots, Grad-CAM and the misclassified gallery.

`from tl_keras.evaluation import X` still finds every public name of `tl_keras.evaluation.metrics` (the module this import named
before the layers became folders); new code imports the module itself.
"""

import importlib as _importlib


def __getattr__(name: str):
    # Lazy, so importing one module of this folder does not import the others (and their dependencies) first.
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_importlib.import_module("tl_keras.evaluation.metrics"), name)
