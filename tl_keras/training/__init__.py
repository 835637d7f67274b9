"""Training: the two phases (frozen head on cached features, then fine-tuning), freezing plans and layer-wise rates,
callbacks, exact resume, the learning-rate finder, distribution strategies, the scratch baseline (image pretraining is in `vision/`).

`from tl_keras.training import X` still finds every public name of `tl_keras.training.two_phase` (the module this import named
before the layers became folders); new code imports the module itself.
"""

from tl_keras.io.reexport import names_of as _names_of

__getattr__ = _names_of(__name__, "tl_keras.training.two_phase")
