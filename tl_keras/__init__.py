"""tl_keras: transfer learning for Keras 3 on TensorFlow, from pretrained backbone to TF Serving."""

__version__ = "0.1.0"

import os as _os
import sys as _sys

from tl_keras.io.native_stderr import native_stderr_silenced, verbose_native_logs


# TensorFlow's C++ INFO and WARNING lines (CUDA probes, the TFLite converter's per-tensor notes) drown a
# run's own log; errors still show. Read once, when TensorFlow loads: a value the user set is kept.
_QUIET = not verbose_native_logs(_sys.argv)
if _QUIET:
    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _load_tensorflow_quietly() -> None:
    """Imports TensorFlow and probes its devices with file descriptor 2 pointed at /dev/null, then restores it.

    TensorFlow 2.21 writes its start-up lines (absl's "before InitializeLog",
    oneDNN, CUDA stubs, a failed cuInit on machines without a GPU) from C++
    before TF_CPP_MIN_LOG_LEVEL is read, twice; only the descriptor can hold
    them back. A failing import still raises its Python error. TensorFlow's
    Python INFO lines (signature renaming, "Assets written", sharding) are
    kept to WARNING. `--verbosity=1` shows everything.
    """
    import logging as std_logging

    with native_stderr_silenced():
        import tensorflow as tf

        tf.config.list_physical_devices()
    std_logging.getLogger("tensorflow").setLevel(std_logging.WARNING)
    for name in ("absl", "tensorflow"):  # TensorFlow's SavedModel code logs INFO through absl directly
        std_logging.getLogger(name).addFilter(_libraries_info_filter)


def _libraries_info_filter(record) -> bool:
    """Drops INFO and DEBUG records logged from TensorFlow, Keras or their kin; ours and every warning pass."""
    import logging as std_logging

    path = record.pathname.replace("\\", "/")
    return record.levelno >= std_logging.WARNING or not any(f"/{lib}/" in path for lib in _CHATTY_LIBRARIES)


_CHATTY_LIBRARIES = ("tensorflow", "keras", "keras_hub", "tensorflow_datasets", "tensorflow_hub", "tf_keras")


if _QUIET and "tensorflow" not in _sys.modules:
    _load_tensorflow_quietly()

from tl_keras.vision.backbones import BACKBONES, Backbone, load_backbone  # noqa: E402
from tl_keras.models.builders import compile_classifier  # noqa: E402
from tl_keras.vision.classifier import build_classifier  # noqa: E402
from tl_keras.config.run_config import ConfigError, RunConfig  # noqa: E402
from tl_keras.vision.serving import export_saved_model  # noqa: E402
from tl_keras.models.hub_layer import HubLayer  # noqa: E402
from tl_keras.run import run_experiment  # noqa: E402
from tl_keras.training.freezing import unfreeze_backbone  # noqa: E402
from tl_keras.training.two_phase import train_from_scratch, train_two_phase  # noqa: E402
from tl_keras.text.model import build_text_classifier  # noqa: E402 - also registers the layers a saved text model holds
# The modalities register themselves (tl_keras.config.modalities): the run, validation, recipes and scripts ask the registry.
from tl_keras.vision import modality as _vision_modality  # noqa: E402,F401
from tl_keras.text import modality as _text_modality  # noqa: E402,F401
from tl_keras.audio import modality as _audio_modality  # noqa: E402,F401

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
