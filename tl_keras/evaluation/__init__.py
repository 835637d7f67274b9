"""Evaluation every modality shares: metrics, calibration, predictions, the held-out report and its plots.

`from tl_keras.evaluation import X` still finds every public name of `tl_keras.evaluation.metrics` (the module this import named
before the layers became folders); new code imports the module itself.
"""

from tl_keras.io.reexport import names_of as _names_of

__getattr__ = _names_of(__name__, "tl_keras.evaluation.metrics")
