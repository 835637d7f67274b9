"""Training epochs that permute example *indices* and only then read pixels.

Why not `dataset.shuffle(buffer)`: its buffer holds decoded images, so it is
capped at a few thousand, and an image folder is listed class by class; past
the cap every batch comes from a few neighbouring classes, which quietly
ruins SGD on exactly the large datasets transfer learning is for. A
permutation of indices costs 8 bytes per example, mixes the whole split
every epoch, and is stateless: epoch `e`'s order is a pure function of
(seed, e), so a resumed run sees the batches an uninterrupted one saw.

Where the pixels come from, per split:

* ``memory``: the split resized once, in index order, into one uint8 array
  (when it fits the budget); epochs gather batches from it.
* ``disk``: the same array as a ``.npy`` memory map in the run folder,
  written under a temporary name and renamed when complete, so a killed
  write leaves nothing that looks finished and the next run rebuilds it.
* ``none``: each epoch reads and decodes its files again, in the permuted
  order, with a parallel ordered `map` and prefetch; memory does not grow
  with the split.

A source that cannot read by index (TFDS records) still fills a memory or
disk store in its own order; with no store it falls back to a buffered
shuffle (TFDS shuffles records when it prepares a dataset, so its order is
not grouped by class).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
from absl import logging

from tl_keras.vision.orientation import decode_upright
from tl_keras.vision.pixels import to_uint8
from tl_keras.data.epochs import EpochBatches, epoch_seed, seeded_shuffle
from tl_keras.config.settings import MEMORY_BUDGET_BYTES  # a resized split is kept in RAM up to this (about 14k images at 224 px)

# Images resized and written per step while a store is filled.
_FILL_BATCH = 256


def as_targets(labels) -> np.ndarray:
    """Class ids as int32; tag rows and values (multi-label and regression targets) as float32."""
    labels = np.asarray(labels)
    return labels.astype(np.int32) if np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool else labels.astype(np.float32)


@dataclasses.dataclass
class IndexedSplit:
    """A split whose examples can be read one by one by index: what lets an epoch shuffle indices.

    Every example has a key (a file path, or a row of an in-memory array)
    that `load` turns into pixels. An epoch permutes the key and label
    lists once and decodes from them, with no per-image index lookups
    (which cost a noticeable share of the throughput on small JPEGs).

    Args:
        labels: int32 label of every example, in index order.
        keys: one per example, in index order.
        load: traceable `key -> uint8 HxWx3 image`.
        may_fail: loads can fail (files): failed examples are dropped with a warning.
        sizes: (height, width) of every decoded image when known (the data
            check records them), so resizing is decided once for the split
            rather than by a per-image branch, which costs a share of the
            throughput on small images.
    """

    labels: np.ndarray
    keys: np.ndarray
    load: Callable[[tf.Tensor], tf.Tensor]
    may_fail: bool = False
    sizes: np.ndarray | None = None

    def __post_init__(self):
        self._keys_t, self._labels_t = tf.constant(self.keys), tf.constant(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def dataset(self, order=None, image_size: int | None = None) -> tf.data.Dataset:
        """The examples in `order` (default: index order), decoded in parallel, in that order.

        `image_size` resizes in the same parallel step (one pipeline stage
        per image instead of two, measurably faster on small images).
        """
        order = np.arange(len(self), dtype=np.int64) if order is None else order
        ordered = tf.data.Dataset.from_tensor_slices((tf.gather(self._keys_t, order), tf.gather(self._labels_t, order)))
        load = self.load
        fit = "maybe" if image_size is None else self.fitting(image_size)

        def decode(key, label):
            image = load(key)
            if image_size is None:
                return image, label
            if fit == "all":  # every image is already image_size square: nothing to resize
                image.set_shape([image_size, image_size, 3])
                return image, label
            return resize_uint8(image, label, image_size, needed=True if fit == "none" else None)

        ds = ordered.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.ignore_errors(log_warning=True) if self.may_fail else ds

    def readable(self) -> "IndexedSplit":
        """The examples that load, as a split whose loads cannot fail; itself when none can fail.

        One parallel pass over the files (what the data check does, when it
        was skipped with --nodata_check): an epoch then has exactly its step
        count, and epoch boundaries, so --resume, do not move.
        """
        if not self.may_fail:
            return self
        positions = tf.data.Dataset.from_tensor_slices((tf.range(len(self), dtype=tf.int64), self._keys_t))
        loads = positions.map(lambda i, key: (i, tf.shape(self.load(key))[0]), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        good = np.array([int(i) for i, _ in loads.ignore_errors().as_numpy_iterator()], dtype=np.int64)
        if len(good) < len(self):
            logging.warning(
                "%d of %d files could not be read and are left out of training (run the data check to see which)",
                len(self) - len(good),
                len(self),
            )
        return IndexedSplit(self.labels[good], self.keys[good], self.load, False, self.sizes[good] if self.sizes is not None else None)

    def fitting(self, image_size: int) -> str:
        """Whether "all", "none" or "maybe" some of the images are already `image_size` square (unknown sizes: "maybe")."""
        if self.sizes is None or len(self.sizes) == 0:
            return "maybe"
        square = np.all(self.sizes == image_size, axis=1)
        return "all" if square.all() else "none" if not square.any() else "maybe"

    def subset(self, indices: np.ndarray) -> "IndexedSplit":
        """The examples at `indices` (in that order) as a split of their own."""
        indices = np.asarray(indices, dtype=np.int64)
        sizes = self.sizes[indices] if self.sizes is not None else None
        return IndexedSplit(self.labels[indices], self.keys[indices], self.load, self.may_fail, sizes)

    def joined(self, other: "IndexedSplit") -> "IndexedSplit | None":
        """This split's examples then `other`'s, as one split; None when they load differently (not subsets of one source)."""
        if other.load is not self.load:
            return None
        sizes = None if self.sizes is None or other.sizes is None else np.concatenate([self.sizes, other.sizes])
        return IndexedSplit(
            np.concatenate([self.labels, other.labels]), np.concatenate([self.keys, other.keys]), self.load,
            self.may_fail or other.may_fail, sizes,
        )

    @classmethod
    def from_files(cls, paths, labels, *, checked: bool = False, sizes=None) -> "IndexedSplit":
        """Image files (any format `tf.io.decode_image` reads; first frame of a GIF).

        `checked`: every file decoded once already (the data check), so a
        read failure is an error, not a file to skip. Skipping costs a
        pipeline stage (a share of the throughput on small JPEGs) and
        makes an epoch shorter than its step count. `sizes`: the decoded
        (height, width) of each file, as the data check found them.
        """
        sizes = None if sizes is None else np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        return cls(as_targets(labels), np.asarray(paths, dtype=str), decode_file, may_fail=not checked, sizes=sizes)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray) -> "IndexedSplit":
        """uint8 (N, H, W, 3) images already in memory; the keys are their rows."""
        images_t = tf.constant(images)
        return cls(np.asarray(labels, dtype=np.int32), np.arange(len(images), dtype=np.int64), lambda row: tf.gather(images_t, row))


def decode_file(path: tf.Tensor) -> tf.Tensor:
    """An image file's bytes to uint8 RGB as a photo viewer shows it: JPEG (EXIF orientation applied), PNG, BMP, GIF's first frame, WebP.

    One `DecodeImage` op, which sniffs the format itself (as fast as
    `decode_jpeg` on JPEGs, where sniffing in the graph with a `tf.cond`
    cost ~5% of the throughput on small images), then the JPEG's EXIF
    orientation, as the exported bytes signature does too.
    """
    return decode_upright(tf.io.read_file(path))


def resize_uint8(image, label, image_size: int, needed: bool | None = None):
    """Bilinear resize that stays uint8: only makes images batchable; the model's own resize is then an identity.

    `needed`: True resizes every image; None decides per image (a branch
    in the graph), leaving one already at `image_size` untouched.
    """
    def resized():
        scaled = tf.image.resize(image, (image_size, image_size), method="bilinear")
        return to_uint8(scaled)

    if needed:
        out = resized()
    else:
        shape = tf.shape(image)
        already = tf.logical_and(tf.equal(shape[0], image_size), tf.equal(shape[1], image_size))
        out = tf.cond(already, lambda: tf.cast(image, tf.uint8), resized)
    out.set_shape([image_size, image_size, 3])
    return out, label


def storage_for(cache: str, count: int, image_size: int, budget_bytes: int = MEMORY_BUDGET_BYTES) -> str:
    """"memory", "disk" or "none" for `--cache` (auto: memory when the resized split fits `budget_bytes`, else none)."""
    if cache in ("memory", "disk", "none"):
        return cache
    if cache != "auto":
        raise ValueError(f"cache={cache!r}: must be auto, memory, disk or none")
    fits = 0 < count and count * image_size * image_size * 3 <= budget_bytes
    return "memory" if fits else "none"


def training_epochs(
    dataset: tf.data.Dataset,
    image_size: int,
    batch_size: int,
    *,
    seed: int = 0,
    indexed: IndexedSplit | None = None,
    num_examples: int = -1,
    cache: str = "auto",
    cache_path: str | os.PathLike | None = None,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    per_epoch: Callable[[tf.Tensor, int], tf.data.Dataset] | None = None,
) -> EpochBatches:
    """Batches of (uint8 images at `image_size`, labels) whose epoch `e` order depends only on (seed, e).

    (Ten parameters: the split, the size, the batch, the seed and the cache's choices, each a setting.)

    Args:
        dataset: the split in a fixed order (fills a store; the fallback when
            `indexed` is None and nothing is stored).
        indexed: the same split readable by index, where the source can.
        per_epoch: `per_epoch(e, image_size)`: epoch e's examples in their order for e, resized, where the source
            shuffles itself (sharded records).
        num_examples: the split's size when neither `indexed` nor tf.data knows it.
        cache: "auto", "memory", "disk" (at `cache_path`) or "none".
    """
    count = len(indexed) if indexed is not None else int(dataset.cardinality())
    if count < 0:
        count = num_examples
    storage = storage_for(cache, count, image_size, memory_budget_bytes)
    if storage != "none":
        store = ImageStore.build(dataset, image_size, count, storage, cache_path)
        return store.epochs(batch_size, seed)
    if indexed is not None:
        return _decoded_per_epoch(indexed.readable(), image_size, batch_size, seed)
    if per_epoch is not None and count > 0:
        def make_epoch(epoch):
            return per_epoch(epoch, image_size).batch(batch_size)

        return EpochBatches(make_epoch, math.ceil(count / batch_size))
    return _buffered_fallback(dataset, image_size, batch_size, seed, count)


def ordered_batches(
    dataset: tf.data.Dataset,
    image_size: int,
    batch_size: int,
    *,
    num_examples: int = -1,
    cache: str = "auto",
    cache_path: str | os.PathLike | None = None,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
) -> tf.data.Dataset:
    """Batches in the split's own order (validation, test, evaluation), stored as `training_epochs` would store them."""
    count = int(dataset.cardinality())
    if count < 0:
        count = num_examples
    storage = storage_for(cache, count, image_size, memory_budget_bytes)
    if storage != "none":
        return ImageStore.build(dataset, image_size, count, storage, cache_path).batches(batch_size).prefetch(tf.data.AUTOTUNE)
    resized = dataset.map(lambda x, y: resize_uint8(x, y, image_size), num_parallel_calls=tf.data.AUTOTUNE)
    return resized.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _decoded_per_epoch(indexed: IndexedSplit, image_size: int, batch_size: int, seed: int) -> EpochBatches:
    count = len(indexed)
    if count == 0:
        raise ValueError("the training split is empty")

    def make_epoch(epoch):
        return indexed.dataset(epoch_order(count, seed, epoch), image_size).batch(batch_size)

    return EpochBatches(make_epoch, math.ceil(count / batch_size))


def _buffered_fallback(dataset, image_size, batch_size, seed, count) -> EpochBatches:
    if count <= 0:
        count = int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
    if count == 0:
        raise ValueError("the training split is empty")
    buffer = max(1, min(count, 4096))
    logging.info(
        "training split of %d examples read in source order with a %d-example shuffle buffer (the source cannot be read by index)",
        count,
        buffer,
    )
    resized = dataset.map(lambda x, y: resize_uint8(x, y, image_size), num_parallel_calls=tf.data.AUTOTUNE)

    def make_epoch(epoch):
        return seeded_shuffle(resized, buffer, seed, epoch).batch(batch_size)

    return EpochBatches(make_epoch, math.ceil(count / batch_size))


def epoch_order(count: int, seed: int, epoch) -> tf.Tensor:
    """Epoch `epoch`'s permutation of `count` indices: stateless, so a function of (seed, epoch) alone."""
    pair = tf.stack([tf.constant(seed, tf.int64), epoch_seed(seed, epoch)])
    return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=pair)


class ImageStore:
    """A resized split as one uint8 (N, S, S, 3) array in RAM or memory-mapped from disk, and its labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, as_targets(labels)

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def build(
        cls, dataset: tf.data.Dataset, image_size: int, count: int, storage: str, path: str | os.PathLike | None = None
    ) -> "ImageStore":
        """Reads `dataset` once in order into RAM (`storage="memory"`) or into `<path>.images.npy` ("disk").

        A complete disk store from an earlier process (same path) is reused;
        the path carries the run's settings fingerprint and the image size.
        """
        if storage == "disk":
            if path is None:
                raise ValueError("cache='disk' needs a cache path")
            images_file, labels_file = Path(f"{path}.images.npy"), Path(f"{path}.labels.npy")
            if images_file.is_file() and labels_file.is_file():
                images, labels = np.load(images_file, mmap_mode="r"), np.load(labels_file)
                if len(images) == len(labels) and images.shape[1:] == (image_size, image_size, 3):
                    logging.info("reusing the disk cache %s (%d images)", images_file, len(images))
                    return cls(images, labels)
            return cls._fill_disk(dataset, image_size, count, images_file, labels_file)
        images, labels = cls._fill(dataset, image_size, np.zeros((max(count, 0), image_size, image_size, 3), np.uint8))
        return cls(images, labels)

    @staticmethod
    def _fill(dataset, image_size, images: np.ndarray):
        """Writes resized batches into `images` (grown if the count was short); returns (images[:n], labels)."""
        labels, n = [], 0
        batches = dataset.map(lambda x, y: resize_uint8(x, y, image_size), num_parallel_calls=tf.data.AUTOTUNE).batch(_FILL_BATCH)
        for batch_images, batch_labels in batches.prefetch(2).as_numpy_iterator():
            k = len(batch_labels)
            if n + k > len(images):  # only arrays (memory) grow; the count is exact for every indexed source
                images = np.concatenate([images, np.zeros((n + k - len(images), *images.shape[1:]), np.uint8)])
            images[n:n + k] = batch_images
            labels.append(batch_labels)
            n += k
        if n == 0:
            raise ValueError("the training split is empty (no image could be read)")
        return images[:n], as_targets(np.concatenate(labels))

    @classmethod
    def _fill_disk(cls, dataset, image_size, count, images_file: Path, labels_file: Path) -> "ImageStore":
        images_file.parent.mkdir(parents=True, exist_ok=True)
        partial = images_file.with_name(images_file.name + ".partial")  # overwritten if a killed run left one
        if count <= 0:  # size unknown up front: gather in RAM, then write
            images, labels = cls._fill(dataset, image_size, np.zeros((0, image_size, image_size, 3), np.uint8))
            count = len(labels)
            stored = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=images.shape)
            stored[:] = images
            del images
        else:
            stored = np.lib.format.open_memmap(partial, mode="w+", dtype=np.uint8, shape=(count, image_size, image_size, 3))
            stored, labels = cls._fill(dataset, image_size, stored)
        if len(labels) < count:  # files that failed to decode: keep only what did
            logging.warning("%d of %d training images could not be read; the disk cache holds %d", count - len(labels), count, len(labels))
            shorter = np.lib.format.open_memmap(partial.with_name(partial.name + "2"), mode="w+", dtype=np.uint8, shape=stored.shape)
            shorter[:] = stored
            shorter.flush()
            del stored
            os.replace(shorter.filename, partial)
        else:
            stored.flush()
            del stored
        np.save(labels_file, labels)
        os.replace(partial, images_file)  # the images file appears only when complete
        return cls(np.load(images_file, mmap_mode="r"), labels)

    def epochs(self, batch_size: int, seed: int) -> EpochBatches:
        """Every epoch a stateless permutation of the store's indices, gathered a batch at a time."""
        count = len(self)

        def make_epoch(epoch):
            return self._gathered(tf.data.Dataset.from_tensor_slices(epoch_order(count, seed, epoch)).batch(batch_size))

        return EpochBatches(make_epoch, math.ceil(count / batch_size))

    def batches(self, batch_size: int) -> tf.data.Dataset:
        """The store in index order, batched (validation and test)."""
        return self._gathered(tf.data.Dataset.range(len(self)).batch(batch_size))

    def _gathered(self, index_batches: tf.data.Dataset) -> tf.data.Dataset:
        images, labels_t = self.images, tf.constant(self.labels)
        shape = images.shape[1:]

        def gather(indices):
            return np.ascontiguousarray(images[indices])

        def read(indices):
            batch = tf.numpy_function(gather, [indices], tf.uint8, stateful=False)
            batch.set_shape([None, *shape])
            return batch, tf.gather(labels_t, indices)

        return index_batches.map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
