"""Production: the TF Serving SavedModel (signatures, warmup, versions), TFLite conversion with its parity report,
reloading a classifier from a run or an export, and the class names an export carries.

`from tl_keras.export import X` still finds every public name of `tl_keras.export.saved_model` (the module this import named
before the layers became folders); new code imports the module itself.
"""

from tl_keras.io.reexport import names_of as _names_of

__getattr__ = _names_of(__name__, "tl_keras.export.saved_model", "tl_keras.vision.serving")
