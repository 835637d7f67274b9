"""Clips in arrays as the two phases read them: seeded training epochs and ordered evaluation batches."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tl_keras.data.epochs import EpochBatches, seeded_shuffle


def training_batches(waves: np.ndarray, targets: np.ndarray, batch_size: int, *, seed: int) -> EpochBatches:
    """Epoch `e` is every training clip once, in an order fixed by (seed, e) alone (what exact resume needs)."""
    clips = tf.data.Dataset.from_tensor_slices((waves, targets))

    def make_epoch(epoch):
        return seeded_shuffle(clips, len(waves), seed, epoch).batch(batch_size)

    return EpochBatches(make_epoch, math.ceil(len(waves) / batch_size))


def ordered_batches(waves: np.ndarray, targets: np.ndarray, batch_size: int) -> tf.data.Dataset:
    """A split in its own order, so predictions line up with its targets and paths."""
    return tf.data.Dataset.from_tensor_slices((waves, targets)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def predict_waves(model, waves: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The model's outputs for clips in an array, batch by batch."""
    return np.concatenate([np.asarray(model(waves[i:i + batch_size], training=False)) for i in range(0, len(waves), batch_size)]) \
        if len(waves) else np.zeros((0, int(model.outputs[0].shape[-1])), np.float32)
