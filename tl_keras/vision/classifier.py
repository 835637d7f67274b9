"""Image classifiers in the functional API: raw uint8 pixels of any size in, class probabilities out."""

from __future__ import annotations

from typing import Sequence

import keras

from tl_keras.models.builders import HEAD_NAME, INPUT_NAME
from tl_keras.vision.backbones import Backbone
from tl_keras.vision.layers import ImagePreprocessing


def build_classifier(
    backbone: Backbone,
    num_classes: int,
    *,
    dropout: float = 0.2,
    head_l2: float = 0.0,
    pooling: str = "avg",
    freeze_batch_norm: bool = True,
    name: str | None = None,
    activation: str = "softmax",
) -> keras.Model:
    """Builds image -> resize -> normalise -> backbone -> pool -> dropout -> head (softmax, or the task's `activation`:
    sigmoid for tags, linear for a number).

    The input is uint8 RGB of any height and width, so a server or phone
    feeds decoded pixels as they are; resizing and the backbone's own
    normalisation are layers of the model.

    Args:
        backbone: from `load_backbone`.
        num_classes: classes of the new head (at least 2).
        dropout: rate of the dropout before the head.
        head_l2: L2 penalty on the head kernel.
        pooling: "avg" or "max" global pooling of a 4-D feature map.
        freeze_batch_norm: call the backbone with training=False, stating
            that its BatchNorm layers use their moving statistics in every
            phase; only a network trained from random weights should pass
            False. Keras 3 overrides that argument with the outer model's
            `training` during `fit`, so what actually holds BatchNorm in
            inference mode is that fine-tuning never makes a BatchNorm layer
            trainable (`tl_keras.training.freezing`; HubLayer decides for itself).
            Dropout inside a backbone (EfficientNet's blocks) is active while
            fine-tuning.
        name: model name.

    Returns:
        An uncompiled `keras.Model` with output "probabilities" of shape
        (batch, num_classes) in float32 (also under mixed precision).
    """
    if activation == "softmax" and num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: a classifier needs two classes or more")
    if pooling not in ("avg", "max"):
        raise ValueError(f"pooling={pooling!r} must be 'avg' or 'max'")
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
        num_classes, activation=activation, kernel_regularizer=regularizer, dtype="float32", name=HEAD_NAME
    )(x)
    return keras.Model(inputs, outputs, name=name or f"{backbone.name}_classifier")


FUSIONS = ("concat", "sum", "product")


def build_fusion_classifier(
    backbones: Sequence[Backbone],
    num_classes: int,
    *,
    combine: str = "concat",
    projection_width: int = 256,
    dropout: float = 0.2,
    head_l2: float = 0.0,
    name: str = "fusion_classifier",
) -> keras.Model:
    """Feature fusion: several backbones see the same image; their pooled features meet before one head.

    Each backbone keeps its own resize and normalisation (one may want
    [-1, 1] at 224 px, another caffe-style BGR at 160), so the model's input
    stays raw uint8 pixels of any size and exports like any classifier.
    "concat" joins the pooled vectors as they are; "sum" and "product" first
    project each to `projection_width` with a learned Dense layer, since the
    vectors differ in width and meaning.

    Train it with `train_two_phase(model, [b.layer for b in backbones], ...)`:
    both phases freeze and unfreeze every backbone.
    """
    if len(backbones) < 2:
        raise ValueError(f"feature fusion needs at least two backbones, got {len(backbones)}")
    if combine not in FUSIONS:
        raise ValueError(f"combine must be one of {', '.join(FUSIONS)}, got {combine!r}")
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: a classifier needs two classes or more")
    inputs = keras.Input(shape=(None, None, 3), dtype="uint8", name=INPUT_NAME)
    branches = []
    for index, backbone in enumerate(backbones):
        x = inputs
        if not backbone.owns_input:
            x = keras.layers.Resizing(backbone.input_size, backbone.input_size, name=f"resize_{index}")(x)
            x = ImagePreprocessing(backbone.preprocessing, name=f"preprocess_{index}")(x)
        x = backbone.layer(x, training=False)
        if len(x.shape) == 4:
            x = keras.layers.GlobalAveragePooling2D(name=f"pool_{index}")(x)
        if combine != "concat":
            x = keras.layers.Dense(projection_width, name=f"project_{index}")(x)
        branches.append(x)
    if combine == "concat":
        fused = keras.layers.Concatenate(name="fuse")(branches)
    elif combine == "sum":
        fused = keras.layers.Add(name="fuse")(branches)
    else:
        fused = keras.layers.Multiply(name="fuse")(branches)
    x = keras.layers.Dropout(dropout, name="dropout")(fused)
    regularizer = keras.regularizers.L2(head_l2) if head_l2 else None
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_regularizer=regularizer, dtype="float32", name=HEAD_NAME)(x)
    return keras.Model(inputs, outputs, name=name)
