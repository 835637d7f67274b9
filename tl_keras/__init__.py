"""tl_keras: transfer learning for Keras 3 on TensorFlow, from pretrained backbone to TF Serving."""

__version__ = "0.1.0"

from tl_keras.backbones import BACKBONES, Backbone, load_backbone  # noqa: E402
from tl_keras.builders import build_classifier, compile_classifier  # noqa: E402
from tl_keras.config import ConfigError, RunConfig  # noqa: E402
from tl_keras.export import export_saved_model  # noqa: E402
from tl_keras.hub_layer import HubLayer  # noqa: E402
from tl_keras.run import run_experiment  # noqa: E402
from tl_keras.training import train_from_scratch, train_two_phase, unfreeze_backbone  # noqa: E402

__all__ = [
    "BACKBONES",
    "Backbone",
    "ConfigError",
    "HubLayer",
    "RunConfig",
    "build_classifier",
    "compile_classifier",
    "export_saved_model",
    "load_backbone",
    "run_experiment",
    "train_from_scratch",
    "train_two_phase",
    "unfreeze_backbone",
]
