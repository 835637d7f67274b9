"""Functional-API classifiers: raw uint8 pixels in, class probabilities out."""

from __future__ import annotations

import keras

from tl_keras.backbones import Backbone
from tl_keras.layers import ImagePreprocessing
from tl_keras.losses import Accuracy, SparseCrossentropy

INPUT_NAME = "image"
HEAD_NAME = "head"


def build_classifier(
    backbone: Backbone,
    num_classes: int,
    *,
    dropout: float = 0.2,
    head_l2: float = 0.0,
    pooling: str = "avg",
    freeze_batch_norm: bool = True,
    name: str | None = None,
) -> keras.Model:
    """Builds image -> resize -> normalise -> backbone -> pool -> dropout -> softmax.

    The input is uint8 RGB of any height and width, so a server or phone
    feeds decoded pixels as they are; resizing and the backbone's own
    normalisation are layers of the model.

    Args:
        backbone: from `load_backbone`.
        num_classes: classes of the new head (at least 2).
        dropout: rate of the dropout before the head.
        head_l2: L2 penalty on the head kernel.
        pooling: "avg" or "max" global pooling of a 4-D feature map.
        freeze_batch_norm: call the backbone with training=False, so its
            BatchNorm layers use their moving statistics in every phase. This
            is what fine-tuning a pretrained network needs; only a network
            trained from random weights should pass False.
        name: model name.

    Returns:
        An uncompiled `keras.Model` with output "probabilities" of shape
        (batch, num_classes) in float32 (also under mixed precision).
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}; a classifier needs two classes or more (flag --num_classes)")
    if pooling not in ("avg", "max"):
        raise ValueError(f"pooling must be 'avg' or 'max', got {pooling!r} (flag --pooling)")
    inputs = keras.Input(shape=(None, None, 3), dtype="uint8", name=INPUT_NAME)
    x = inputs
    if not backbone.owns_input:
        x = keras.layers.Resizing(backbone.input_size, backbone.input_size, name="resize")(x)
        x = ImagePreprocessing(backbone.preprocessing, name="preprocess")(x)
    x = backbone.layer(x, training=False) if freeze_batch_norm else backbone.layer(x)
    if len(x.shape) == 4:
        pool = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        x = pool(name="pool")(x)
    elif len(x.shape) != 2:
        raise ValueError(f"backbone {backbone.name!r} outputs shape {x.shape}; expected a 4-D feature map or 2-D features")
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    regularizer = keras.regularizers.L2(head_l2) if head_l2 else None
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", kernel_regularizer=regularizer, dtype="float32", name=HEAD_NAME
    )(x)
    return keras.Model(inputs, outputs, name=name or f"{backbone.name}_classifier")


def make_optimizer(name: str, learning_rate: float, *, clipnorm: float = 0.0, decay_steps: int = 0) -> keras.optimizers.Optimizer:
    """A fresh optimizer by flag name; each phase gets its own (fresh slots).

    `decay_steps` > 0 makes the rate a cosine decay to zero over that many steps.
    """
    table = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": lambda **kwargs: keras.optimizers.SGD(momentum=0.9, **kwargs),
    }
    if name not in table:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(table)}")
    rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps) if decay_steps > 0 else learning_rate
    kwargs = {"clipnorm": clipnorm} if clipnorm else {}
    return table[name](learning_rate=rate, **kwargs)


def compile_classifier(
    model: keras.Model, optimizer: str, learning_rate: float, label_smoothing: float = 0.0, *, clipnorm: float = 0.0, decay_steps: int = 0
) -> keras.Model:
    """Compiles for integer (or mixup soft) labels with accuracy; returns the model."""
    model.compile(
        optimizer=make_optimizer(optimizer, learning_rate, clipnorm=clipnorm, decay_steps=decay_steps),
        loss=SparseCrossentropy(label_smoothing=label_smoothing),
        metrics=[Accuracy()],
    )
    return model
