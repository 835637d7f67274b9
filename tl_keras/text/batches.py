"""Batches of token ids padded per batch, not to the longest text of the data set.

A transformer's cost grows with the padded length, and most sentences are
far shorter than the longest. Training batches are drawn from a seeded
permutation, sorted by length inside windows of `WINDOW_BATCHES` batches,
and the batches then shuffled: neighbours in a batch have similar lengths,
yet each epoch's order is still a function of (seed, epoch) alone, so
`--resume` replays exactly the batches an uninterrupted run saw.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from tl_keras.data.epochs import EpochBatches

# Batches per sorting window: large enough that lengths inside a batch are close, small enough that an
# epoch still mixes short and long texts across its steps.
WINDOW_BATCHES = 50


def pad_batch(rows: Sequence[np.ndarray], pad_id: int) -> np.ndarray:
    """Rows of token ids as one (len(rows), longest) int32 array, padded with `pad_id`."""
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), pad_id, np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def predict_texts(model, tokenizer, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """The model's outputs on `texts`, tokenised by `tokenizer` and padded per batch, in order (for scoring a saved model)."""
    ids = tokenizer.encode(list(texts))
    return np.concatenate([
        model.predict(pad_batch(ids[i : i + batch_size], tokenizer.pad_id), verbose=0) for i in range(0, len(ids), batch_size)
    ])


def epoch_order(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket: bool = True) -> list[np.ndarray]:
    """The batches (index arrays) of one epoch, a function of (seed, epoch, lengths) alone."""
    rng = np.random.default_rng([seed, int(epoch)])
    order = rng.permutation(len(lengths))
    if not bucket:
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    batches = []
    window = batch_size * WINDOW_BATCHES
    for start in range(0, len(order), window):
        part = order[start : start + window]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def training_batches(
    ids: Sequence[np.ndarray], labels: np.ndarray, batch_size: int, *, pad_id: int, seed: int, bucket: bool = True
) -> EpochBatches:
    """Seeded training epochs of (token ids padded per batch, labels)."""
    lengths = np.array([len(r) for r in ids])
    labels = _targets(labels)
    signature = _signature(labels)

    @tf.autograph.experimental.do_not_convert  # plain Python building a dataset; AutoGraph would only warn about the generator
    def make_epoch(epoch):
        def generate(epoch):
            for index in epoch_order(lengths, batch_size, seed, int(epoch), bucket):
                yield pad_batch([ids[i] for i in index], pad_id), labels[index]

        return tf.data.Dataset.from_generator(generate, args=(epoch,), output_signature=signature)

    return EpochBatches(make_epoch, math.ceil(len(ids) / batch_size))


def ordered_batches(ids: Sequence[np.ndarray], labels: np.ndarray, batch_size: int, *, pad_id: int) -> tf.data.Dataset:
    """Batches in the split's own order (predictions line up with labels), each padded to its longest text."""
    labels = _targets(labels)

    def generate():
        for start in range(0, len(ids), batch_size):
            yield pad_batch(ids[start : start + batch_size], pad_id), labels[start : start + batch_size]

    # A generator's length is unknown to tf.data; stating it keeps Keras from treating the end of a pass as data running out.
    count = math.ceil(len(ids) / batch_size)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=_signature(labels))
    return dataset.apply(tf.data.experimental.assert_cardinality(count)).prefetch(tf.data.AUTOTUNE)


def _targets(labels) -> np.ndarray:
    """Class ids as int32; tag rows and values (a multi-label or regression run's targets) as float32."""
    labels = np.asarray(labels)
    return labels.astype(np.int32) if np.issubdtype(labels.dtype, np.integer) else labels.astype(np.float32)


def _signature(labels: np.ndarray) -> tuple:
    return (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None, *labels.shape[1:]), tf.as_dtype(labels.dtype)))
