"""Training batches whose order in each epoch is a pure function of (seed, epoch).

A `tf.data` shuffle with `reshuffle_each_iteration=True` draws each epoch's
order from a generator that lives in the process: a run resumed at epoch 7
would replay epoch 1's order. Here epoch `e` is built from its own seed, so a
process that starts at epoch 7 sees exactly the batches an uninterrupted run
saw there. The stream is one endless dataset fed to `fit` with
`steps_per_epoch`, which Keras then iterates without restarting it.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

# Spreads (seed, epoch) pairs apart; any large odd constant would do.
_EPOCH_STRIDE = 1_000_003


# Graph-level seed of the functions that build an epoch; see `seeded_shuffle`.
_GRAPH_SEED = 20_261_123


def epoch_seed(seed, epoch):
    """The int64 seed of one epoch's shuffle and mixing (a tensor when `epoch` is one)."""
    return tf.cast(seed, tf.int64) * _EPOCH_STRIDE + tf.cast(epoch, tf.int64)


def seeded_shuffle(dataset: tf.data.Dataset, buffer_size: int, seed: int, epoch) -> tf.data.Dataset:
    """`dataset` shuffled in an order fixed by (seed, epoch) alone; call it inside a `make_epoch`.

    tf.data pairs an op's seed with the global seed, so the order would also
    depend on whatever `tf.random.set_seed` the caller last used (and a
    global seed of 0 with a tensor op seed trips a Python comparison inside
    TensorFlow). Pinning the seed of the graph being traced removes both.
    """
    if not tf.executing_eagerly():
        graph = tf.compat.v1.get_default_graph()
        if not hasattr(graph, "seed"):  # a TF graph attribute without a public setter (TF 2.16-2.21 have it)
            raise NotImplementedError(
                f"seeded epochs pin the traced graph's seed, which TensorFlow {tf.__version__} no longer has; install tensorflow<2.22"
            )
        graph.seed = _GRAPH_SEED
    return dataset.shuffle(buffer_size, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False)


class EpochBatches:
    """Batches for training, one seeded epoch after another.

    Args:
        make_epoch: builds epoch `e`'s batches from an int64 scalar tensor `e`.
        steps_per_epoch: batches in every epoch; must be exact, as `fit`
            counts epochs in steps on the endless stream.
    """

    def __init__(self, make_epoch: Callable[[tf.Tensor], tf.data.Dataset], steps_per_epoch: int):
        if steps_per_epoch <= 0:
            raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
        self._make_epoch = make_epoch
        self.steps_per_epoch = int(steps_per_epoch)

    def epoch(self, index: int) -> tf.data.Dataset:
        """Epoch `index` alone (e.g. one pass to cache features from), exactly as `stream` yields it."""
        return tf.data.Dataset.counter(index, dtype=tf.int64).take(1).flat_map(self._make_epoch)

    def stream(self, first_epoch: int = 0, skip_batches: int = 0) -> tf.data.Dataset:
        """Epochs `first_epoch`, `first_epoch + 1`, ... back to back, never ending; the first `skip_batches` batches of
        `first_epoch` left out (a run resumed from a state taken inside that epoch)."""
        stream = tf.data.Dataset.counter(first_epoch, dtype=tf.int64).flat_map(self._make_epoch)
        return (stream.skip(skip_batches) if skip_batches else stream).prefetch(tf.data.AUTOTUNE)

    def map_epochs(self, transform: Callable[[tf.data.Dataset, tf.Tensor], tf.data.Dataset]) -> "EpochBatches":
        """A new stream whose epoch `e` is `transform(batches_of_e, e)`; `transform` must keep the batch count."""
        make_epoch = self._make_epoch

        def transformed(epoch):
            return transform(make_epoch(epoch), epoch)

        return EpochBatches(transformed, self.steps_per_epoch)
