"""What `RunConfig.validate` asks of an image run's backbone and weights, checked against the registry that builds them.

Here rather than in `config/` so that the settings layer does not import the
backbone registry: the vision modality (`vision/modality.py`) runs it as part
of its validation.
"""

from __future__ import annotations


from tl_keras.io import storage
from tl_keras.config.settings import ConfigError, backbone_source
from tl_keras.vision.builtin import BUILTIN_DATASETS
from tl_keras.vision.backbones import BACKBONES


SOURCE_WORDS = {"hub": "a TF Hub module", "keras_file": "a .keras file", "saved_model": "a SavedModel"}


def check_backbone_and_weights(config) -> None:
    """Catches a mistyped backbone or a missing weights file before any training starts."""
    name = config.backbone
    source = backbone_source(name)
    if source == "keras_file" and not storage.isfile(name):
        raise ConfigError(f"--backbone: .keras file not found: {name!r}")
    if config.compare_scratch and source != "name":
        raise ConfigError(
            f"--compare_scratch: --backbone={name!r} ({SOURCE_WORDS[source]}) loads its own trained weights, so a 'from scratch' arm "
            "would be pretrained too; compare with scratch on a registered backbone (--backbone=mobilenet_v2 ...) or drop the flag"
        )
    if source == "name" and name not in BACKBONES:
        raise ConfigError(
            f"--backbone: unknown backbone {name!r}; known: {', '.join(sorted(BACKBONES))}; "
            "or pass a TF Hub URL, a SavedModel folder or a .keras file"
        )
    weights = config.weights
    if name == "small_cnn" and weights == "imagenet":
        raise ConfigError(
            "--backbone=small_cnn has no ImageNet weights; pass --weights=none, a weights file, or --weights=pretrain:digits_0_4"
        )
    if weights.startswith("pretrain:"):
        source = weights[len("pretrain:"):]
        if source not in BUILTIN_DATASETS:
            raise ConfigError(f"--weights: unknown source dataset {source!r}; known: {', '.join(BUILTIN_DATASETS)}")
        if name not in BACKBONES:
            raise ConfigError(f"--weights={weights} pretrains a registered backbone; {name!r} is not one (pass --weights=none)")
    elif weights.lower() not in ("", "none", "imagenet") and not storage.isfile(weights):
        raise ConfigError(
            f"--weights: file not found: {weights!r}; pass 'imagenet', 'none', 'pretrain:digits_0_4' or an existing weights file"
        )
    if not config.image_dir and not config.tfds and config.dataset not in BUILTIN_DATASETS:
        raise ConfigError(
            f"--dataset: unknown built-in dataset {config.dataset!r}; known: {', '.join(BUILTIN_DATASETS)}; or pass --image_dir or --tfds"
        )
