"""The text classifier's own layers: the padding mask from token ids, and mean or [CLS] pooling.

In a module of their own (Keras only) so the classifier and the TF Hub-format
encoder export pool with the same code.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tl_keras")
class MaskedMeanPooling(keras.layers.Layer):
    """The mean of the hidden states over real tokens (sentence-transformers' mean pooling)."""

    def call(self, sequence, mask):
        weights = keras.ops.cast(mask, sequence.dtype)[..., None]
        total = keras.ops.sum(sequence * weights, axis=1)
        return total / keras.ops.maximum(keras.ops.sum(weights, axis=1), keras.ops.cast(1.0, sequence.dtype))


@keras.saving.register_keras_serializable(package="tl_keras")
class FirstTokenPooling(keras.layers.Layer):
    """The hidden state at the first position ([CLS]), BERT's sentence vector."""

    def call(self, sequence, mask=None):
        return sequence[:, 0, :]


@keras.saving.register_keras_serializable(package="tl_keras")
class PaddingMask(keras.layers.Layer):
    """1 where a token id is not the pad id; a layer (not an op) so the pad id is saved with the model."""

    def __init__(self, pad_id: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.pad_id = int(pad_id)

    def call(self, token_ids):
        return keras.ops.cast(keras.ops.not_equal(token_ids, self.pad_id), "int32")

    def get_config(self):
        return {**super().get_config(), "pad_id": self.pad_id}
