"""What a run is: settings groups, the run config and its validation, recipes, the command line's flags.

Above `io/`; imports nothing else of tl_keras (the model and text layers add their own checks with
`validation.register_check`).

`from tl_keras.config import X` still finds every public name of `tl_keras.config.run_config` and
`tl_keras.config.settings` (as the module this import named before the layers became folders did);
new code imports the module itself.
"""

from tl_keras.io.reexport import names_of as _names_of

__getattr__ = _names_of(__name__, "tl_keras.config.run_config", "tl_keras.config.settings")
