"""Frozen-phase training on cached backbone features.

While the backbone is frozen, every epoch of plain `fit` recomputes the same
backbone outputs. Running the backbone once (or K times over augmented
images) and training the head on the stored pooled features gives the same
head at a fraction of the cost. The head model built here *shares* the
classifier's dropout and Dense layers, so what it learns is already inside
the full model: no copy, identical predictions.

With augmentation, the cache holds a clean view and K augmented views of
every training image, and each epoch draws one view per image (seeded by
epoch), so every image appears once per epoch, as in training on images.
Because an epoch on features costs milliseconds, the head can also be
started from the converged logistic regression on those features
(`fit_logistic_head`): Keras training then polishes a head that is already
at the optimum of the convex problem, instead of stopping short of it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tl_keras.models.anatomy import anatomy
from tl_keras.data.epochs import EpochBatches
from tl_keras.config.settings import MEMORY_BUDGET_BYTES
from tl_keras.tasks import task_of_head
from tl_keras.tasks.single_label import STRENGTHS


def feature_extractor(classifier: keras.Model) -> keras.Model:
    """image -> pooled features (the input of the classifier's dropout; every fusion branch joined)."""
    return keras.Model(classifier.input, anatomy(classifier).features, name="feature_extractor")


def head_on_features(classifier: keras.Model) -> keras.Model:
    """features -> dropout -> head, with the classifier's own layers (shared weights)."""
    parts = anatomy(classifier)
    inputs = keras.Input(shape=(int(parts.features.shape[-1]),), name="features")
    outputs = parts.head(parts.dropout(inputs))
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
    if any(k[0] != id(extractor) for k in _ENCODERS):
        _ENCODERS.clear()  # hold only the latest extractor's, so finished models can be freed
    spec = tf.TensorSpec([None, *image_spec.shape[1:]], image_spec.dtype)

    @tf.function(input_signature=[spec])
    def encode(images):
        if augmentation is not None:
            images = augmentation(images, training=True)
        return extractor(images, training=False)

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
            return self._rows_in_order(lambda _: np.arange(len(self.labels)), batch_size, 0).prefetch(tf.data.AUTOTUNE)
        ds = tf.data.Dataset.from_tensor_slices((self.features, self.labels))
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def clean(self) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of the first (un-augmented) view."""
        count = self.examples_per_pass
        return np.asarray(self.features[:count]), np.asarray(self.labels[:count])

    @property
    def views(self) -> int:
        return max(1, len(self.labels) // max(self.examples_per_pass, 1))

    def epoch_rows(self, seed: int, epoch: int) -> np.ndarray:
        """Rows of epoch `epoch`: one view of every image, shuffled; a function of (seed, epoch) alone.

        Rows are stored view-major (view v of image i is row v * N + i).
        """
        count = self.examples_per_pass
        rng = np.random.default_rng([seed, int(epoch)])
        view = rng.integers(self.views, size=count) if self.views > 1 else np.zeros(count, np.int64)
        return (view * count + np.arange(count))[rng.permutation(count)]

    def epochs(self, batch_size: int, seed: int) -> EpochBatches:
        """Shuffled training batches; each epoch holds every image once, in one of its cached views."""

        def make_epoch(epoch):
            return self._rows_in_order(lambda e: self.epoch_rows(seed, e), batch_size, epoch)

        return EpochBatches(make_epoch, self.steps_per_epoch(batch_size))

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, math.ceil(self.examples_per_pass / batch_size))

    @tf.autograph.experimental.do_not_convert  # plain Python building a dataset; AutoGraph would only warn about the generator
    def _rows_in_order(self, order_of_epoch, batch_size: int, epoch) -> tf.data.Dataset:
        """Batches read from the (in-memory or memory-mapped) array in the row order `order_of_epoch(epoch)` gives."""
        features, labels = self.features, self.labels

        def batches(epoch):
            order = order_of_epoch(epoch)
            for start in range(0, len(order), batch_size):
                index = order[start : start + batch_size]
                rows = np.sort(index)  # sorted: sequential disk reads; the batch is put back in epoch order below
                back = np.argsort(np.argsort(index))
                yield np.asarray(features[rows])[back], labels[rows][back]

        signature = (
            tf.TensorSpec((None, features.shape[1]), tf.float32),
            tf.TensorSpec((None, *labels.shape[1:]), tf.as_dtype(labels.dtype)),
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

    (Sixty-eight lines: memory or disk storage, augmented passes and the progress log are one pass over the data.)

    Args:
        extractor: from `feature_extractor`.
        batches: batched (model inputs, int labels), not shuffled.
        passes: augmented passes to cache, each with fresh augmentation; with
            `augmentation`, a clean pass comes first (view 0), so 1 + passes
            views are stored, view-major.
        augmentation: applied (in training mode) before the extractor.
        storage: "memory", "disk", or "auto" (memory when it fits in 2 GiB).
        directory: where "disk" puts `<name>_features.npy` / `<name>_labels.npy`.
        num_examples: examples per pass if known (sizes the disk files).
        name: file prefix for disk storage.
    """
    width = int(extractor.output.shape[-1])
    if num_examples < 0:
        num_examples = int(batches.unbatch().cardinality())
    encoders = [_encoder(extractor, None, batches.element_spec[0])]
    if augmentation is not None:
        encoders += [_encoder(extractor, augmentation, batches.element_spec[0])] * passes
    passes = len(encoders)
    total = num_examples * passes if num_examples >= 0 else -1
    on_disk = storage == "disk" or (storage == "auto" and total * width * 4 > MEMORY_BUDGET_BYTES)
    if on_disk and directory is None:
        raise ValueError("disk feature cache needs a directory")

    if on_disk and total >= 0:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        feature_path = directory / f"{name}_features.npy"
        features = np.lib.format.open_memmap(feature_path, mode="w+", dtype=np.float32, shape=(total, width))
        labels = np.zeros((total, *_target_shape(batches)), _target_dtype(batches))
        row = 0
        for encode in encoders:
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
    for encode in encoders:
        for images, batch_labels in batches:
            chunks.append(encode(images).numpy().astype(np.float32))
            label_chunks.append(batch_labels.numpy().astype(_target_dtype(batches)))
    features = np.concatenate(chunks) if chunks else np.zeros((0, width), np.float32)
    labels = np.concatenate(label_chunks) if label_chunks else np.zeros((0, *_target_shape(batches)), _target_dtype(batches))
    if on_disk:  # asked for disk, but the size was unknown up front
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        np.save(directory / f"{name}_features.npy", features)
        features = np.load(directory / f"{name}_features.npy", mmap_mode="r")
    return FeatureCache(features, labels, len(labels) // max(passes, 1))


# Rows the frozen head's convex estimator is fitted on at most (a seeded sample beyond): L-BFGS time and
# memory grow with rows, and past this many the fit is a start, not the answer. The frozen phase then
# trains the head over every cached row from that start (`frozen_features`); the log says which it did.
LOGISTIC_MAX_ROWS = 20_000
_LOGISTIC_STRENGTHS = STRENGTHS  # the single-label grid, under its old name


def fit_logistic_head(
    head: keras.layers.Dense,
    train: FeatureCache,
    validation: FeatureCache | None,
    *,
    class_weight: dict[int, float] | None = None,
    seed: int = 0,
    strength: float | None = None,
    max_rows: int | None = None,
) -> dict:
    """Sets the head to its task's converged convex fit on the cached features (`tasks`: multinomial logistic regression
    for one label, one logistic regression per tag, ridge for a number).

    The fit is convex and solved to convergence in seconds; its L2 strength
    is picked on validation, or is `strength` when given (the refit on every
    label, which has no validation left to pick with). Training rows are
    every cached view, or a seeded sample of `max_rows` of them (logged).

    Returns:
        The task's record of the fit: {"C": the picked inverse L2 strength, "rows" fitted on, "of_rows" cached,
        "seconds", and its validation scores}.
    """
    total = len(train.labels)
    max_rows = LOGISTIC_MAX_ROWS if max_rows is None else max_rows
    if total > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(total, max_rows, replace=False))
        features, labels = np.asarray(train.features[keep]), np.asarray(train.labels[keep])
        logging.info("the head's convex fit uses a seeded sample of %d of the %d cached rows", max_rows, total)
    else:
        features, labels = np.asarray(train.features), np.asarray(train.labels)
    weights = row_weights(class_weight, labels)
    fitted = task_of_head(head).fit_head(
        head, (features, labels), None if validation is None else validation.clean(), sample_weight=weights, strength=strength,
    )
    return {**fitted, "of_rows": int(total)}


def row_weights(class_weight: dict[int, float] | None, labels: np.ndarray) -> np.ndarray | None:
    """Each row's weight from its class's (`--class_weights`), for scikit-learn's `sample_weight`; None without weights."""
    return None if not class_weight else np.array([class_weight.get(int(y), 1.0) for y in labels])


def _target_dtype(batches) -> type:
    """Class ids are stored as int32; tag rows and values as float32."""
    return np.int32 if batches.element_spec[1].dtype.is_integer else np.float32


def _target_shape(batches) -> tuple[int, ...]:
    """A target's shape past the batch axis: () for a class id or a value, (tags,) for a tag row."""
    return tuple(int(d) for d in batches.element_spec[1].shape[1:])
