"""Loss used by every classifier: sparse labels, optional label smoothing.

Keras 3's SparseCategoricalCrossentropy has no label smoothing, and one-hot
labels would double the size of every cached dataset, so the labels stay
integers and are one-hot encoded inside the loss only when smoothing is on.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tl_keras")
class SparseCrossentropy(keras.losses.Loss):
    """Cross-entropy on integer labels and probability outputs, with label smoothing."""

    def __init__(self, label_smoothing: float = 0.0, name: str = "sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        if self.label_smoothing == 0.0:
            return keras.losses.sparse_categorical_crossentropy(y_true, y_pred)
        one_hot = ops.one_hot(y_true, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
