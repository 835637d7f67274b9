"""The vision modality as the registry sees it: image folders, TFDS images and the built-in photos, run by `vision.run`.

The package root imports this module, which registers it; it is the default
modality, the one a config with no data source runs (the built-in photos).
"""

from __future__ import annotations

from tl_keras.config.modalities import Modality, register
from tl_keras.config.validation import check_image_run
from tl_keras.vision import scripts
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.checks import check_backbone_and_weights
from tl_keras.vision.layers import ImagePreprocessing
from tl_keras.vision.run import run_image_experiment


def validate_image_config(config) -> None:
    """The image rules of `config.validation`, then the backbone and weights against the registry (unless --init_from gives the model)."""
    check_image_run(config)
    if not config.init_from:
        check_backbone_and_weights(config)


def image_recipe(config) -> str:
    """`--recipe=auto` for images: the default recipe on the user's photos, the built-in data's own recipe otherwise."""
    if config.image_dir or config.tfds or config.records:
        return "default"
    return "digits" if config.dataset.startswith("digits") else "embedded"


def image_backbone(backbone: str, weights: str | None, *, image_size: int = 0, alpha: float = 0.0):
    """(backbone layer, input side, its normalising layer): an image backbone for another modality's own images.

    What the audio modality puts over log-mel images, asked through the
    registry (`Modality.hook("image_backbone")`) so that it imports nothing
    of this package. The images it is fed must be RGB-like in [0, 255] at
    the returned side.
    """
    loaded = load_backbone(backbone, weights, image_size=image_size, alpha=alpha)
    return loaded.layer, loaded.input_size, ImagePreprocessing(loaded.preprocessing, name="preprocess")


VISION = register(Modality(
    name="vision", noun="images", sources=("image_dir", "tfds"), run=run_image_experiment, validate=validate_image_config,
    recipe=image_recipe, default=True, hooks={**scripts.HOOKS, "image_backbone": image_backbone},
))
