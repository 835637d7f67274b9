"""Training: the two phases (frozen head on cached features, then fine-tuning), freezing plans and layer-wise rates,
callbacks, exact resume, the learning-rate finder, distribution strategies, pretraining, the scratch baseline.

`from tl_keras.training import X` still finds every public name of `tl_keras.training.two_phase` (the module this import named
before the layers became folders); new code imports the module itself.
"""

import importlib as _importlib


def __getattr__(name: str):
    # Lazy, so importing one module of this folder does not import the others (and their dependencies) first.
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(_importlib.import_module("tl_keras.training.two_phase"), name)
