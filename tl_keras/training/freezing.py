"""Freezing policy: which backbone weights train in each phase.

Phase 1 freezes every backbone weight; phase 2 unfreezes all of the
backbone or its top layers, per an --unfreeze spec, and BatchNorm layers
always stay frozen (and, through `training=False` in the classifier, in
inference mode), so a small dataset cannot wreck statistics learned on a
large one. Fusion models pass a list of backbones; each gets the same
policy.
"""

from __future__ import annotations

import keras

from tl_keras.models.anatomy import counted_layers, leaf_layers
from tl_keras.config.settings import ConfigError, TrainSettings, parse_unfreeze


def freeze_backbone(backbone) -> None:
    """Freezes every weight of the backbone, or of each backbone of a fusion model (phase 1)."""
    for layer in _backbone_list(backbone):
        layer.trainable = False


def _backbone_list(backbone) -> list[keras.layers.Layer]:
    return list(backbone) if isinstance(backbone, (list, tuple)) else [backbone]


def backbone_leaves(backbone) -> list[keras.layers.Layer]:
    return [leaf for layer in _backbone_list(backbone) for leaf in leaf_layers(layer)]


def unfreeze_backbone(backbone, spec: str = "all") -> list[str]:
    """`unfreeze_one_backbone` on the backbone, or on each backbone of a fusion model."""
    return [name for layer in _backbone_list(backbone) for name in unfreeze_one_backbone(layer, spec)]


def check_unfreeze_fits(backbone, settings: TrainSettings) -> None:
    """Refuses, before any training, a `from:K` fine-tune spec at or past the backbone's depth.

    Otherwise the run would stop with this error after the whole frozen
    phase; a recipe's `from:100` suits MobileNetV2 (154 layers), not a
    17-layer `small_cnn`.
    """
    if settings.fine_tune_epochs <= 0:
        return
    depth = min(len(counted_layers(layer)) for layer in _backbone_list(backbone))
    for _, spec, _ in settings.fine_tune_stages():
        kind, value = parse_unfreeze(spec)
        if kind == "from" and value >= depth:
            flag = "--unfreeze_schedule" if settings.unfreeze_schedule else "--unfreeze"
            raise ConfigError(f"{flag}: {spec!r} starts past the backbone's {depth} layers; pick K below {depth}, a top-N count, or all")


def unfreeze_one_backbone(backbone: keras.layers.Layer, spec: str = "all") -> list[str]:
    """Unfreezes the backbone per `spec`, keeping BatchNorm layers frozen.

    Args:
        backbone: the backbone layer or model.
        spec: "all", "N" (the top N layers) or "from:K" (layer K and above),
            counting the backbone's layers in order with nested models
            flattened and the InputLayer counted, as `base_model.layers[K:]`
            does in the Keras tutorial.

    Returns:
        Names of the layers left trainable (BatchNorm excluded).
    """
    kind, value = parse_unfreeze(spec)
    layers = leaf_layers(backbone)
    if kind == "all":
        start = 0
    elif kind == "top":
        start = max(0, len(layers) - value)
    else:
        counted = counted_layers(backbone)
        if value >= len(counted):
            raise ValueError(f"unfreeze={spec!r}: the backbone has only {len(counted)} layers; pick K below that")
        above = {id(layer) for layer in counted[value:]}
        start = next(i for i, layer in enumerate(layers) if id(layer) in above)
    backbone.trainable = True
    unfrozen = []
    for index, layer in enumerate(layers):
        keep_frozen = index < start or isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not keep_frozen
        if not keep_frozen:
            unfrozen.append(layer.name)
    return unfrozen
