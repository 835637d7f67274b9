"""Loss and accuracy for integer labels or soft (mixup/cutmix) label vectors.

Keras 3's SparseCategoricalCrossentropy has no label smoothing, and mixup
needs soft targets, while one-hot labels everywhere would inflate every
cached dataset. So labels stay integers, and these two accept either an
integer label per example or a probability vector per example.
"""

from __future__ import annotations

import keras
from keras import ops


def _is_soft(y_true, y_pred) -> bool:
    shape = tuple(y_true.shape)
    return len(shape) == 2 and shape[-1] is not None and shape[-1] > 1 and shape[-1] == y_pred.shape[-1]


@keras.saving.register_keras_serializable(package="tl_keras")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on probability outputs, with label smoothing."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        if _is_soft(y_true, y_pred):
            target = ops.cast(y_true, y_pred.dtype)
        else:
            labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
            if self.label_smoothing == 0.0:
                return keras.losses.sparse_categorical_crossentropy(labels, y_pred)
            target = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(target, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def _accuracy(y_true, y_pred):
    predicted = ops.argmax(y_pred, axis=-1)
    if _is_soft(y_true, y_pred):
        labels = ops.argmax(y_true, axis=-1)
    else:
        labels = ops.reshape(y_true, (-1,))
    return ops.cast(ops.equal(ops.cast(labels, "int32"), ops.cast(predicted, "int32")), "float32")


@keras.saving.register_keras_serializable(package="tl_keras")
class Accuracy(keras.metrics.MeanMetricWrapper):
    """Top-1 accuracy against integer labels or the argmax of soft labels."""

    def __init__(self, name: str = "accuracy", dtype=None):
        super().__init__(_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
