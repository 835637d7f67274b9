"""Augmentation: Keras preprocessing layers in the training model only, and mixup/CutMix batches.

The augmentation layers wrap the classifier in a separate training model
that shares its weights, so the classifier that is evaluated, saved and
exported never contains them: nothing random can reach a server or a phone.
Mixup and CutMix mix labels too, so they act on batches in the input
pipeline rather than as layers.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tl_keras.vision.layers import ToPixels
from tl_keras.vision.pixels import to_uint8
from tl_keras.config.settings import AugmentSettings, require_settings


def build_augmentation(settings: AugmentSettings, seed: int | None = None) -> keras.Sequential | None:
    """The random layers `settings` ask for, in a fixed order; None when they ask for none.

    Each flag's number means what its help says: `rotation_degrees=10`
    rotates by at most 10 degrees either way (Keras takes a fraction of a
    full turn, 10/360); `zoom=0.2` scales by 0.8 to 1.2; `translation=0.1`
    shifts by at most a tenth of the side; `contrast=0.2` multiplies
    contrast by 0.8 to 1.2; `brightness=0.1` adds at most a tenth of the
    0-255 range.
    """
    require_settings(AugmentSettings, settings, "settings", "build_augmentation")
    seed = settings.seed if seed is None else seed
    layers: list[keras.layers.Layer] = []
    if settings.flip != "none":
        layers.append(keras.layers.RandomFlip(settings.flip, seed=seed, name="flip"))
    if settings.rotation_degrees:
        layers.append(keras.layers.RandomRotation(settings.rotation_degrees / 360.0, fill_mode="reflect", seed=seed + 1, name="rotation"))
    if settings.zoom:
        layers.append(keras.layers.RandomZoom((-settings.zoom, settings.zoom), fill_mode="reflect", seed=seed + 2, name="zoom"))
    if settings.translation:
        layers.append(
            keras.layers.RandomTranslation(
                settings.translation, settings.translation, fill_mode="reflect", seed=seed + 3, name="translation"
            )
        )
    if settings.contrast:
        layers.append(keras.layers.RandomContrast(settings.contrast, value_range=(0, 255), seed=seed + 4, name="contrast"))
    if settings.brightness:
        layers.append(keras.layers.RandomBrightness(settings.brightness, value_range=(0, 255), seed=seed + 5, name="brightness"))
    if not layers:
        return None
    return keras.Sequential([*layers, ToPixels(name="to_pixels")], name="augmentation")


def _beta(alpha: float, shape, seed) -> tf.Tensor:
    a = tf.random.stateless_gamma(shape, seed=seed, alpha=alpha)
    b = tf.random.stateless_gamma(shape, seed=seed + tf.constant([0, 1], tf.int64), alpha=alpha)
    return a / (a + b)


def mix_batches(
    dataset: tf.data.Dataset, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, seed: int = 0
) -> tf.data.Dataset:
    """Mixes each batch with a shuffled copy of itself; labels become probability vectors.

    Mixup blends whole images with weight lambda ~ Beta(a, a). CutMix pastes
    a box covering a (1 - lambda) share of the image, and the label weight
    is the share actually pasted. With both on, each batch uses one of them
    at random.
    """
    if not (mixup_alpha or cutmix_alpha):
        return dataset

    def mix(step, batch):
        images, labels = batch
        step_seed = tf.stack([tf.cast(seed, tf.int64), step])
        n = tf.shape(images)[0]
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=step_seed)
        one_hot = tf.one_hot(tf.cast(labels, tf.int32), num_classes)
        other_images, other_labels = tf.gather(images, order), tf.gather(one_hot, order)
        x = tf.cast(images, tf.float32)
        other = tf.cast(other_images, tf.float32)

        def mixup():
            lam = _beta(mixup_alpha, [n], step_seed)
            mixed = x * lam[:, None, None, None] + other * (1.0 - lam[:, None, None, None])
            return mixed, one_hot * lam[:, None] + other_labels * (1.0 - lam[:, None])

        def cutmix():
            lam = _beta(cutmix_alpha, [], step_seed)
            h, w = tf.shape(x)[1], tf.shape(x)[2]
            cut = tf.sqrt(1.0 - lam)
            ch = tf.cast(tf.cast(h, tf.float32) * cut, tf.int32)
            cw = tf.cast(tf.cast(w, tf.float32) * cut, tf.int32)
            cy = tf.random.stateless_uniform([], step_seed + 7, 0, h, dtype=tf.int32)
            cx = tf.random.stateless_uniform([], step_seed + 9, 0, w, dtype=tf.int32)
            y0, y1 = tf.maximum(cy - ch // 2, 0), tf.minimum(cy + ch // 2, h)
            x0, x1 = tf.maximum(cx - cw // 2, 0), tf.minimum(cx + cw // 2, w)
            rows = tf.logical_and(tf.range(h) >= y0, tf.range(h) < y1)
            cols = tf.logical_and(tf.range(w) >= x0, tf.range(w) < x1)
            box = tf.cast(tf.logical_and(rows[:, None], cols[None, :]), tf.float32)[None, :, :, None]
            mixed = x * (1.0 - box) + other * box
            pasted = tf.reduce_mean(box)
            return mixed, one_hot * (1.0 - pasted) + other_labels * pasted

        if mixup_alpha and cutmix_alpha:
            use_mixup = tf.random.stateless_uniform([], step_seed + 3) < 0.5
            mixed, soft = tf.cond(use_mixup, mixup, cutmix)
        elif mixup_alpha:
            mixed, soft = mixup()
        else:
            mixed, soft = cutmix()
        return to_uint8(mixed), soft

    return dataset.enumerate().map(mix, num_parallel_calls=tf.data.AUTOTUNE)
