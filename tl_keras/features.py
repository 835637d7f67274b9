"""Frozen-phase training on cached backbone features.

While the backbone is frozen, every epoch of plain `fit` recomputes the same
backbone outputs. Running the backbone once (or K times over augmented
images) and training the head on the stored pooled features gives the same
head at a fraction of the cost. The head model built here *shares* the
classifier's dropout and Dense layers, so what it learns is already inside
the full model: no copy, identical predictions.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tl_keras.builders import HEAD_NAME
from tl_keras.epochs import EpochBatches, seeded_shuffle

_MAX_IN_MEMORY_BYTES = 2 << 30
DROPOUT_NAME = "dropout"


def feature_extractor(classifier: keras.Model) -> keras.Model:
    """image -> pooled features (the input of the classifier's dropout)."""
    return keras.Model(classifier.input, classifier.get_layer(DROPOUT_NAME).input, name="feature_extractor")


def head_on_features(classifier: keras.Model) -> keras.Model:
    """features -> dropout -> head, with the classifier's own layers (shared weights)."""
    width = int(classifier.get_layer(DROPOUT_NAME).input.shape[-1])
    inputs = keras.Input(shape=(width,), name="features")
    x = classifier.get_layer(DROPOUT_NAME)(inputs)
    outputs = classifier.get_layer(HEAD_NAME)(x)
    return keras.Model(inputs, outputs, name="head_on_features")


def _encoder(extractor: keras.Model, augmentation, image_spec: tf.TensorSpec):
    """One traced function per (extractor, augmentation), shared by every split.

    The batch dimension is left open so the last, smaller batch does not
    trigger a second trace (seconds, for a large backbone).
    """
    key = (id(extractor), id(augmentation))
    cached = _ENCODERS.get(key)
    if cached is not None:
        return cached
    spec = tf.TensorSpec([None, *image_spec.shape[1:]], image_spec.dtype)

    @tf.function(input_signature=[spec])
    def encode(images):
        if augmentation is not None:
            images = augmentation(images, training=True)
        return extractor(images, training=False)

    _ENCODERS.clear()  # hold only the latest, so finished models can be freed
    _ENCODERS[key] = encode
    return encode


_ENCODERS: dict = {}


class FeatureCache:
    """Pooled features and labels, in memory or in `.npy` files mapped from disk."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, examples_per_pass: int):
        self.features = features
        self.labels = labels
        self.examples_per_pass = examples_per_pass

    @property
    def nbytes(self) -> int:
        return int(self.features.nbytes)

    def dataset(self, batch_size: int) -> tf.data.Dataset:
        """Batches of (features, labels) in cache order, one pass (for validation)."""
        if isinstance(self.features, np.memmap):
            return self._from_disk(lambda _: np.arange(len(self.labels)), batch_size, 0).prefetch(tf.data.AUTOTUNE)
        ds = tf.data.Dataset.from_tensor_slices((self.features, self.labels))
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def epochs(self, batch_size: int, seed: int) -> EpochBatches:
        """Shuffled training batches; epoch `e` draws one pass's worth of rows, ordered by (seed, e) alone.

        With several augmented passes cached, each epoch samples
        `examples_per_pass` rows from all of them without replacement.
        """
        per_epoch = self.examples_per_pass
        if isinstance(self.features, np.memmap):
            count = len(self.labels)

            def epoch_order(epoch):
                return np.random.default_rng([seed, int(epoch)]).permutation(count)[:per_epoch]

            def make_epoch(epoch):
                return self._from_disk(epoch_order, batch_size, epoch)

        else:
            rows = tf.data.Dataset.from_tensor_slices((self.features, self.labels))
            count = len(self.labels)

            def make_epoch(epoch):
                return seeded_shuffle(rows, count, seed, epoch).take(per_epoch).batch(batch_size)

        return EpochBatches(make_epoch, self.steps_per_epoch(batch_size))

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, math.ceil(self.examples_per_pass / batch_size))

    def _from_disk(self, order_of_epoch, batch_size: int, epoch) -> tf.data.Dataset:
        """Batches read from the memory-mapped file in the row order `order_of_epoch(epoch)` gives."""
        features, labels = self.features, self.labels

        def batches(epoch):
            order = order_of_epoch(epoch)
            for start in range(0, len(order), batch_size):
                index = np.sort(order[start : start + batch_size])  # sorted: sequential disk reads
                yield features[index], labels[index]

        signature = (
            tf.TensorSpec((None, features.shape[1]), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        )
        return tf.data.Dataset.from_generator(batches, args=(epoch,), output_signature=signature)


def cache_features(
    extractor: keras.Model,
    batches: tf.data.Dataset,
    *,
    passes: int = 1,
    augmentation: keras.Sequential | None = None,
    storage: str = "auto",
    directory: str | os.PathLike | None = None,
    num_examples: int = -1,
    name: str = "train",
) -> FeatureCache:
    """Runs the frozen extractor over `batches` `passes` times and keeps the features.

    Args:
        extractor: from `feature_extractor`.
        batches: batched (uint8 images, int labels), not shuffled.
        passes: how many passes to cache; each gets fresh augmentation.
        augmentation: applied (in training mode) before the extractor.
        storage: "memory", "disk", or "auto" (memory when it fits in 2 GiB).
        directory: where "disk" puts `<name>_features.npy` / `<name>_labels.npy`.
        num_examples: examples per pass if known (sizes the disk files).
        name: file prefix for disk storage.
    """
    width = int(extractor.output.shape[-1])
    if num_examples < 0:
        num_examples = int(batches.unbatch().cardinality())
    total = num_examples * passes if num_examples >= 0 else -1
    on_disk = storage == "disk" or (storage == "auto" and total * width * 4 > _MAX_IN_MEMORY_BYTES)
    if on_disk and directory is None:
        raise ValueError("disk feature cache needs a directory")

    encode = _encoder(extractor, augmentation, batches.element_spec[0])

    if on_disk and total >= 0:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        feature_path = directory / f"{name}_features.npy"
        features = np.lib.format.open_memmap(feature_path, mode="w+", dtype=np.float32, shape=(total, width))
        labels = np.zeros((total,), np.int32)
        row = 0
        for _ in range(passes):
            for images, batch_labels in batches:
                encoded = encode(images).numpy()
                features[row : row + len(encoded)] = encoded
                labels[row : row + len(encoded)] = batch_labels.numpy()
                row += len(encoded)
        features.flush()
        # Fewer rows than expected when files failed to decode since they were counted.
        features = np.load(feature_path, mmap_mode="r")[:row]
        logging.info("feature cache %s on disk: %s (%d x %d)", name, feature_path, row, width)
        return FeatureCache(features, labels[:row], row // max(passes, 1))
    chunks, label_chunks = [], []
    for _ in range(passes):
        for images, batch_labels in batches:
            chunks.append(encode(images).numpy().astype(np.float32))
            label_chunks.append(batch_labels.numpy().astype(np.int32))
    features = np.concatenate(chunks) if chunks else np.zeros((0, width), np.float32)
    labels = np.concatenate(label_chunks) if label_chunks else np.zeros((0,), np.int32)
    if on_disk:  # asked for disk, but the size was unknown up front
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / f"{name}_features.npy", features)
        features = np.load(directory / f"{name}_features.npy", mmap_mode="r")
    return FeatureCache(features, labels, len(labels) // max(passes, 1))
