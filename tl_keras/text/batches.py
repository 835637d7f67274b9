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
from tl_keras.text.token_ids import TokenIds

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
    ids, labels: np.ndarray, batch_size: int, *, pad_id: int, seed: int, bucket: bool = True
) -> EpochBatches:
    """Seeded training epochs of (token ids padded per batch, labels) from ids already made: the batches `epoch_order`
    plans, gathered and padded inside `tf.data` from the flat ids (`TokenIds`)."""
    ids = TokenIds.of(ids)
    return _planned_epochs(ids.lengths, batch_size, seed, bucket, _assembler(ids, _targets(labels), pad_id))


def text_training_batches(
    texts: Sequence[str], lengths: np.ndarray, labels: np.ndarray, batch_size: int, *, tokenizer, seed: int, bucket: bool = True
) -> EpochBatches:
    """Seeded training epochs tokenized inside `tf.data`: each planned batch of texts goes through the graph tokenizer the
    SavedModel serves with (`graph_tokenizer.GraphTokenizer`), in parallel. No token id is stored: `lengths` (each
    text's framed length, for the plan) and the texts are all the epochs need."""
    return _planned_epochs(np.asarray(lengths), batch_size, seed, bucket, _text_assembler(texts, _targets(labels), tokenizer))


def text_ordered_batches(texts: Sequence[str], labels: np.ndarray, batch_size: int, *, tokenizer) -> tf.data.Dataset:
    """Batches in the split's own order, tokenized inside `tf.data` as the training batches are."""
    return _in_order(len(texts), batch_size, _text_assembler(texts, _targets(labels), tokenizer))


def ordered_batches(ids, labels: np.ndarray, batch_size: int, *, pad_id: int) -> tf.data.Dataset:
    """Batches in the split's own order (predictions line up with labels), each padded to its longest text."""
    ids = TokenIds.of(ids)
    return _in_order(len(ids), batch_size, _assembler(ids, _targets(labels), pad_id))


def _planned_epochs(lengths: np.ndarray, batch_size: int, seed: int, bucket: bool, assemble) -> EpochBatches:
    """Epoch e: the index batches `epoch_order` plans (made once per epoch, on the host), each assembled in the graph."""
    def plan(epoch):
        batches = epoch_order(lengths, batch_size, seed, int(epoch), bucket)
        order = np.concatenate(batches).astype(np.int64)
        sizes = np.array([len(b) for b in batches], np.int64)
        return order, np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64), sizes

    def planned_epoch(epoch):
        order, starts, sizes = tf.numpy_function(plan, [epoch], (tf.int64,) * 3)
        for vector in (order, starts, sizes):
            vector.set_shape([None])
        return order, starts, sizes

    def index_batches(order, starts, sizes):
        return tf.data.Dataset.from_tensor_slices((starts, sizes)).map(lambda start, size: order[start:start + size])

    def make_epoch(epoch):
        planned = tf.data.Dataset.from_tensors(epoch).map(planned_epoch).flat_map(index_batches)
        calls = _parallel_calls()
        return planned.map(assemble, **({"num_parallel_calls": calls, "deterministic": True} if calls else {}))

    return EpochBatches(make_epoch, math.ceil(len(lengths) / batch_size))


def _parallel_calls() -> int | None:
    """Batches assembled in parallel, except under op determinism: there tf.data runs a map downstream of the plan's
    host function one element at a time anyway, and logs a NodeDef error each time it rewrites a parallel one (a
    batch's tokenizing takes ~0.1 ms, far less than a step of the encoder, so one thread keeps up)."""
    try:
        from tensorflow.python.framework import config as tf_config  # no public getter for the determinism switch

        return None if tf_config.is_op_determinism_enabled() else tf.data.AUTOTUNE
    except (ImportError, AttributeError):
        return None


def _in_order(count: int, batch_size: int, assemble) -> tf.data.Dataset:
    starts = tf.data.Dataset.range(0, count, batch_size)
    batches = starts.map(lambda start: assemble(tf.range(start, tf.minimum(start + batch_size, count))),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return batches.prefetch(tf.data.AUTOTUNE)


def _assembler(ids: TokenIds, targets: np.ndarray, pad_id: int):
    """indices -> (their rows padded to the longest with `pad_id`, their targets)."""
    values, splits, labels = _captured(ids.values, ids.splits, targets)

    def assemble(indices):
        indices = tf.reshape(tf.cast(indices, tf.int64), [-1])
        positions = tf.ragged.range(tf.gather(splits, indices), tf.gather(splits, indices + 1))
        rows = tf.cast(tf.gather(values, positions), tf.int32).to_tensor(default_value=pad_id)
        return rows, tf.gather(labels, indices)

    return assemble


def _text_assembler(texts: Sequence[str], targets: np.ndarray, tokenizer):
    """indices -> (their texts tokenized, framed and padded by a graph tokenizer at `tokenizer`'s current sequence
    length, their targets)."""
    from tl_keras.text.graph_tokenizer import GraphTokenizer

    graph = GraphTokenizer(tokenizer)
    strings, labels = _captured(np.asarray(list(texts), dtype=object), targets)

    def assemble(indices):
        indices = tf.reshape(tf.cast(indices, tf.int64), [-1])
        return graph(tf.gather(strings, indices)), tf.gather(labels, indices)

    return assemble


def _captured(*arrays) -> list[tf.Tensor]:
    """The arrays as CPU tensors the batch function captures. Tensors, not variables: a variable read is a stateful op,
    and under TensorFlow's op determinism (the runs' default) tf.data then runs the map one batch at a time."""
    with tf.init_scope(), tf.device("/cpu:0"):
        return [tf.constant(array) for array in arrays]


def _targets(labels) -> np.ndarray:
    """Class ids as int32; tag rows and values (a multi-label or regression run's targets) as float32."""
    labels = np.asarray(labels)
    return labels.astype(np.int32) if np.issubdtype(labels.dtype, np.integer) else labels.astype(np.float32)
