"""Grad-CAM: which part of an image a classifier's decision comes from.

Grad-CAM (Selvaraju et al., 2017) weights each channel of a convolutional
feature map by how much the class score rises with it (the spatial mean of
the score's gradient) and keeps the positive sum. We take the feature maps
where our classifiers pool them, i.e. the input of every global pooling
layer, which is the backbone's last spatial output for a single backbone and
one map per branch for feature fusion; branch maps are summed at input
resolution, since each branch's contribution is in the same logit units.

The class score is the head's logit, recomputed from the head's input and
weights, because the gradient of a softmax probability vanishes exactly
where the model is confident. A backbone that pools inside (a TF Hub
feature-vector module) has no spatial map to weight; for it the maps fall
back to gradient x input on the normalised image, the simplest saliency that
exists wherever gradients do, and `cam_source` says which one was used.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from tl_keras.evaluation.metrics import for_latest_model
from tl_keras.models.anatomy import anatomy
from tl_keras.vision.pixels import to_uint8_array

GRAD_CAM = "grad_cam"
INPUT_GRADIENT = "gradient_x_input"


class _CamModel:
    """The classifier re-wired to also return its spatial maps and the head's input; one traced function per model."""

    def __init__(self, model: keras.Model):
        try:
            parts = anatomy(model)
        except ValueError as error:
            raise ValueError(f"grad_cam needs a tl_keras classifier: {error}") from None
        head = parts.head
        if not isinstance(head, keras.layers.Dense):
            raise ValueError(f"grad_cam needs a classifier that ends in a Dense head; {model.name} is a {parts.kind} model")
        maps = [pool.input for pool in parts.pools if len(pool.input.shape) == 4]
        self.source = GRAD_CAM
        if not maps:
            maps = [layer.output for layer in parts.preprocessors]
            self.source = INPUT_GRADIENT
        if not maps:
            raise ValueError(f"{model.name} has no spatial feature map and no preprocessing layer to take gradients at; grad_cam needs one")
        self.head = head
        self.wired = keras.Model(model.inputs, [*maps, head.input])
        self.run = tf.function(self._maps, reduce_retracing=True)

    def _maps(self, images, class_index):
        with tf.GradientTape() as tape:
            *maps, features = self.wired(images, training=False)
            maps = [tf.cast(m, tf.float32) for m in maps]
            tape.watch(maps)
            logits = tf.matmul(tf.cast(features, tf.float32), tf.cast(self.head.kernel, tf.float32)) + tf.cast(self.head.bias, tf.float32)
            if class_index is None:
                class_index = tf.argmax(logits, axis=-1, output_type=tf.int32)
            score = tf.reduce_sum(tf.gather(logits, class_index, axis=1, batch_dims=1))
        gradients = tape.gradient(score, maps)
        size = tf.shape(images)[1:3]
        total = tf.zeros(tf.concat([tf.shape(images)[:1], size], axis=0), tf.float32)
        for feature_map, gradient in zip(maps, gradients):
            if self.source == GRAD_CAM:
                weights = tf.reduce_mean(gradient, axis=(1, 2), keepdims=True)
                cam = tf.reduce_sum(weights * feature_map, axis=-1)
            else:
                cam = tf.reduce_sum(tf.abs(gradient * feature_map), axis=-1)
            total += tf.image.resize(tf.nn.relu(cam)[..., None], size, method="bilinear")[..., 0]
        return total, class_index


_cam_model = for_latest_model(_CamModel)


def cam_source(model: keras.Model) -> str:
    """"grad_cam" when the model has spatial feature maps, else "gradient_x_input"."""
    return _cam_model(model).source


def grad_cam(
    model: keras.Model, images: np.ndarray, class_index: int | Sequence[int] | None = None, *, batch_size: int = 32
) -> np.ndarray:
    """Heat maps of where `model` finds evidence for a class, at the images' resolution.

    Args:
        model: a tl_keras classifier (uint8 image input, Dense softmax head):
            `build_classifier`, `build_fusion_classifier`, or one reloaded.
        images: uint8 [N, H, W, 3] (or one [H, W, 3] image).
        class_index: the class to explain: None for each image's predicted
            class, an int for all images, or one per image.
        batch_size: images per gradient pass.

    Returns:
        float32 [N, H, W] (or [H, W] for one image), each map scaled to a
        maximum of 1 (all zeros where no region raises the class score).
    """
    images = np.asarray(images)
    single = images.ndim == 3
    if single:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be [N, H, W, 3] uint8 pixels, got shape {images.shape}")
    if class_index is not None:
        wanted = np.broadcast_to(np.asarray(class_index, dtype=np.int32), (len(images),))
        classes = int(model.outputs[0].shape[-1])
        if wanted.size and (wanted.min() < 0 or wanted.max() >= classes):
            raise ValueError(f"class_index must be in [0, {classes}), got {class_index}")
    cam = _cam_model(model)
    maps = []
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start : start + batch_size].astype(np.uint8))
        index = None if class_index is None else tf.constant(wanted[start : start + batch_size])
        heat, _ = cam.run(batch, index)
        maps.append(heat.numpy())
    heat = np.concatenate(maps) if maps else np.zeros(images.shape[:3], np.float32)
    peak = heat.reshape(len(heat), -1).max(axis=1) if len(heat) else np.zeros(0)
    heat = np.divide(heat, peak[:, None, None], out=np.zeros_like(heat), where=peak[:, None, None] > 0)
    return heat[0] if single else heat


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """An RGB uint8 picture of `image` with `heat` (in [0, 1], same H and W) drawn over it in the jet colour map."""
    from matplotlib import colormaps

    colours = colormaps["jet"](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - opacity) * np.asarray(image, np.float32) + opacity * colours
    return to_uint8_array(blended)
