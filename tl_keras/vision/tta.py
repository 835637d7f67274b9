"""Test-time augmentation: average a classifier's probabilities over a few views of each image.

The views are fixed, not random (the mirror image, four corner crops), so an
evaluation with TTA is as repeatable as one without. Each view keeps the
batch's height and width (crops are resized back), so the same function
serves the evaluation, which feeds uint8 batches to the Keras model, and the
export's `serving_tta` signature, which feeds resized float batches to the
model after its resize layer. Whether TTA helps is measured per model
(`metrics.json` holds both accuracies); it costs one forward pass per view.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import tensorflow as tf

# TensorFlow is imported inside the functions: config.py validates --tta against TTA_MODES without loading it.

from tl_keras.config.settings import TTA_MODES  # noqa: E402 - defined with the other vocabularies
# Corner crops keep 87.5% of each side, the usual centre-crop share of ImageNet evaluation.
CROP_SHARE = 0.875


def view_count(mode: str) -> int:
    """Forward passes per image under `mode`."""
    check_mode(mode)
    return {"none": 1, "flip": 2, "crops": 5, "flip_crops": 10}[mode]


def check_mode(mode: str) -> str:
    if mode not in TTA_MODES:
        raise ValueError(f"tta={mode!r} is not a test-time augmentation; choose one of {', '.join(TTA_MODES)}")
    return mode


def tta_views(images: "tf.Tensor", mode: str) -> "list[tf.Tensor]":
    """The views of a batch [N, H, W, 3] under `mode`, each [N, H, W, 3] in the batch's dtype.

    "flip": the batch and its left-right mirror; "crops": the batch and its
    four corner crops (87.5% of each side, resized back to H x W);
    "flip_crops": those five and their mirrors.
    """
    import tensorflow as tf

    from tl_keras.vision.pixels import to_uint8

    check_mode(mode)
    views = [images]
    if mode in ("crops", "flip_crops"):
        shape = tf.shape(images)
        height, width = shape[1], shape[2]
        crop_h = tf.cast(tf.round(tf.cast(height, tf.float32) * CROP_SHARE), tf.int32)
        crop_w = tf.cast(tf.round(tf.cast(width, tf.float32) * CROP_SHARE), tf.int32)
        for top, left in ((0, 0), (0, width - crop_w), (height - crop_h, 0), (height - crop_h, width - crop_w)):
            crop = images[:, top : top + crop_h, left : left + crop_w, :]
            resized = tf.image.resize(tf.cast(crop, tf.float32), tf.stack([height, width]), method="bilinear")
            views.append(to_uint8(resized) if images.dtype == tf.uint8 else tf.cast(resized, images.dtype))
    if mode in ("flip", "flip_crops"):
        views += [tf.reverse(view, axis=[2]) for view in views]
    return views


def predict_views(predict, images, mode: str) -> np.ndarray:
    """Probabilities averaged over the views of `images` (a batch); `predict` maps a batch to probabilities
    (a Keras model, or `evaluation.inference_function(model)` for speed)."""
    import tensorflow as tf

    views = tta_views(tf.convert_to_tensor(images), mode)
    return np.mean([np.asarray(predict(view)) for view in views], axis=0)
