"""tl_keras: transfer learning for Keras 3 on TensorFlow, from pretrained backbone to TF Serving."""

__version__ = "0.1.0"

import os as _os
import re as _re
import sys as _sys


def _asks_for_native_logs(argv: list[str]) -> bool:
    """Whether the command line asks absl for verbose logs (`--verbosity=1`, `-v 1`, ...)."""
    text = " ".join(argv[1:])
    match = _re.search(r"(?:--verbosity|-v)[= ](-?\d+)", text)
    return bool(match) and int(match.group(1)) >= 1


# TensorFlow's C++ INFO and WARNING lines (CUDA probes, the TFLite converter's per-tensor notes) drown a
# run's own log; errors still show. Read once, when TensorFlow loads: a value the user set is kept.
if not _asks_for_native_logs(_sys.argv):
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from tl_keras.backbones import BACKBONES, Backbone, load_backbone  # noqa: E402
from tl_keras.builders import build_classifier, compile_classifier  # noqa: E402
from tl_keras.config import ConfigError, RunConfig  # noqa: E402
from tl_keras.export import export_saved_model  # noqa: E402
from tl_keras.hub_layer import HubLayer  # noqa: E402
from tl_keras.run import run_experiment  # noqa: E402
from tl_keras.freezing import unfreeze_backbone  # noqa: E402
from tl_keras.training import train_from_scratch, train_two_phase  # noqa: E402
from tl_keras.text.model import build_text_classifier  # noqa: E402 - also registers the layers a saved text model holds

__all__ = [
    "BACKBONES",
    "Backbone",
    "ConfigError",
    "HubLayer",
    "RunConfig",
    "build_classifier",
    "build_text_classifier",
    "compile_classifier",
    "export_saved_model",
    "load_backbone",
    "run_experiment",
    "train_from_scratch",
    "train_two_phase",
    "unfreeze_backbone",
]
