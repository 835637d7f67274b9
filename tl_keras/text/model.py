"""The text classifier: token ids -> encoder -> pooled sentence vector -> dropout -> Dense softmax.

The model takes one int32 tensor of token ids (batch, length) with any
length, padded with the tokenizer's pad id; the padding mask and segment ids
are derived inside it. One input keeps every core step (the feature cache,
seeded epochs, evaluation, resume) the same as for images, and lets each
batch be padded only to its own longest text. The head is the same
dropout + Dense pair as an image classifier's, so `anatomy` finds it.
"""

from __future__ import annotations

import keras

from tl_keras.text.encoders import TextEncoder
from tl_keras.text.layers import FirstTokenPooling, MaskedMeanPooling, PaddingMask


def build_text_classifier(
    encoder: TextEncoder, num_classes: int, *, pooling: str = "auto", dropout: float = 0.1, head_l2: float = 0.0,
    name: str = "text_classifier", activation: str = "softmax",
) -> keras.Model:
    """A model on `encoder` with `num_classes` outputs under the task's `activation` (softmax: one label; sigmoid: tags;
    linear: a number); `pooling` "auto" takes the checkpoint's own ("mean" or "cls"); `head_l2` penalises the head kernel.

    Raises:
        ValueError: pooling is not auto, mean or cls; fewer than two classes for a softmax.
    """
    if pooling not in ("auto", "mean", "cls"):
        raise ValueError(f"pooling={pooling!r}: a text encoder pools with auto (the checkpoint's own), mean or cls")
    if activation == "softmax" and num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: a classifier needs at least two classes")
    pooling = encoder.pooling if pooling == "auto" else pooling
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    mask = PaddingMask(encoder.tokenizer.pad_id, name="padding_mask")(token_ids)
    segments = keras.ops.zeros_like(token_ids)
    sequence = encoder.model({"token_ids": token_ids, "segment_ids": segments, "padding_mask": mask})
    pool = MaskedMeanPooling(name="mean_pool") if pooling == "mean" else FirstTokenPooling(name="cls_pool")
    pooled = pool(sequence, mask)
    features = keras.layers.Dropout(dropout, name="dropout")(pooled)
    regularizer = keras.regularizers.L2(head_l2) if head_l2 else None
    outputs = keras.layers.Dense(num_classes, activation=activation, kernel_regularizer=regularizer, name="head", dtype="float32")(features)
    return keras.Model(token_ids, outputs, name=name)
