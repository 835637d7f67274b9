"""Image data: sources -> (uint8 image, int label) `tf.data` pipelines with a fixed class order.

Laid out by job, all in this folder:

* sources: `folders` (one sub-folder per class), `tfds_source`, `arrays`
  (NumPy / .npz), `builtin` (what ships offline: the flower photos and
  scikit-learn's digits);
* `pipeline`: training epochs that permute indices before decoding, and the
  memory / disk / no-cache storage of resized images.

The split policy (`data.splits`) and the modality-free subsets
(`data.subsets`: label budgets, class weights, every label for the refit)
are the core's; this module ties the image sources to a `DataSettings` and
keeps the names callers use (`from tl_keras.vision import data as data_lib`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from tl_keras.vision.arrays import load_arrays, load_npz
from tl_keras.vision.builtin import BUILTIN_DATASETS, FLOWERS_DIR, load_builtin, load_bundled_flowers
from tl_keras.vision.folders import IMAGE_EXTENSIONS, FolderScan, load_image_folder, scan_image_folder
from tl_keras.vision.pipeline import (
    MEMORY_BUDGET_BYTES, ImageStore, IndexedSplit, ordered_batches, resize_uint8, storage_for, training_epochs,
)
from tl_keras.data.subsets import all_labelled, balanced_class_weights, limit_train_per_class
from tl_keras.data.splits import DataSplits, SplitMismatchError, balanced_indices, per_class_split, stratified_split, write_split
from tl_keras.vision.tfds_source import load_tfds
from tl_keras.data.epochs import EpochBatches
from tl_keras.io.run_folder import RunFolder
from tl_keras.config.settings import DataSettings, require_settings, settings_from

__all__ = [
    "all_labelled",
    "BUILTIN_DATASETS",
    "FLOWERS_DIR",
    "IMAGE_EXTENSIONS",
    "MEMORY_BUDGET_BYTES",
    "DataSplits",
    "EpochBatches",
    "EvaluationData",
    "balanced_indices",
    "sample_arrays",
    "FolderScan",
    "ImageStore",
    "IndexedSplit",
    "SplitMismatchError",
    "balanced_class_weights",
    "epoch_batches",
    "limit_train_per_class",
    "load_arrays",
    "load_builtin",
    "load_bundled_flowers",
    "load_data",
    "load_recorded",
    "load_evaluation_data",
    "load_image_folder",
    "load_npz",
    "load_tfds",
    "make_batches",
    "per_class_split",
    "scan_image_folder",
    "storage_for",
    "stratified_split",
    "write_split",
]


def load_data(source: DataSettings, run_dir: str | os.PathLike | None = None, progress=None) -> DataSplits:
    """Loads the data `source` names (image_dir, tfds, or a built-in dataset), split per its settings.

    With `run_dir`, the split is recorded in (and reused from) its
    split.json, and an image folder's check report goes to data_report.json.
    """
    require_settings(DataSettings, source, "source", "load_data")
    data = source
    if data.records:
        from tl_keras.vision.records import load_image_records

        return load_image_records(data.records, data.seed, RunFolder(run_dir).split if run_dir else None)
    if data.image_dir and data.labels_file:
        from tl_keras.vision.labels_file import load_labelled_images

        return load_labelled_images(
            data.image_dir, data.labels_file, task=data.task, validation_fraction=data.validation_fraction,
            test_fraction=data.test_fraction, seed=data.seed, split_file=RunFolder(run_dir).split if run_dir else None,
            check=data.data_check, progress=progress,
        )[0]
    if data.image_dir:
        return load_image_folder(
            data.image_dir, data.validation_fraction, data.test_fraction, data.seed,
            split_file=RunFolder(run_dir).split if run_dir else None, check=data.data_check,
            min_images_per_class=data.min_images_per_class,
            report_file=RunFolder(run_dir).data_report if run_dir else None, progress=progress,
            validation_dir=data.validation_dir or None,
        )
    if data.tfds:
        return load_tfds(data.tfds, data.tfds_data_dir or None, data.validation_fraction, data.test_fraction, data.seed)
    return load_builtin(data.dataset, data.validation_fraction, data.test_fraction, data.seed)


def load_recorded(source: DataSettings, run_dir: str | os.PathLike) -> DataSplits:
    """A finished run's splits, for scoring it: the recorded split.json is reused and nothing is rewritten.

    The data check is skipped when the split is recorded, since the record
    lists only files that passed it (and re-decoding a large folder to score
    a model costs minutes); the run's data_report.json stays as it was.
    """
    require_settings(DataSettings, source, "source", "load_recorded")
    if source.image_dir and RunFolder(run_dir).split.is_file():
        source = dataclasses.replace(source, data_check=False)
    return load_data(source, run_dir)



@dataclasses.dataclass(frozen=True)
class EvaluationData:
    """What an evaluation script scores: (image, label) examples, where they came from, and the classes the labels index."""

    dataset: tf.data.Dataset
    name: str  # "image_dir", or the run's split
    class_names: list[str]


def load_evaluation_data(image_dir: str, run_dir: Path | None, split: str = "", run_flag: str = "--model") -> EvaluationData:
    """What the evaluation scripts score a model on: `image_dir` whole, or a split of the run in `run_dir`.

    The labels of an `image_dir` are positions in *its* sorted class
    folders; map them onto the model's classes by name
    (`tl_keras.export.classes.align`) before scoring.

    Args:
        split: the run's split; empty takes test, or validation when the run has no test split.
        run_flag: the flag that names the run, for the error when neither source is given.
    """
    if image_dir:
        # The folder is loaded as a split with nothing held out (its files checked, one image per class enough); every image is scored.
        whole = load_image_folder(image_dir, 0.0, 0.0, min_images_per_class=1)
        return EvaluationData(whole.train, "image_dir", whole.class_names)
    if run_dir is None or not RunFolder(run_dir).is_run():
        raise ValueError(f"pass --image_dir, or a run folder as {run_flag}")
    recorded = RunFolder(run_dir).read_config()
    splits = load_recorded(settings_from(DataSettings, recorded), run_dir)
    split = split or ("test" if splits.test is not None else "validation")
    dataset = getattr(splits, split)
    if dataset is None:
        raise ValueError(f"--split: the run has no {split} split")
    return EvaluationData(dataset, split, splits.class_names)


def make_batches(
    dataset: tf.data.Dataset,
    image_size: int,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    num_examples: int = -1,
    cache: str = "auto",
    cache_path: str | os.PathLike | None = None,
) -> tf.data.Dataset:
    """Resized (still uint8) batches in the split's order, stored in memory or on disk as `cache` says.

    Resizing here only makes differently sized images batchable; the model's
    own resize layer then sees the size it wants and is an identity. For
    training prefer `epoch_batches` (index-shuffled, resumable); `shuffle`
    here is a plain reshuffling buffer for simple loops (source pretraining).

    Args:
        cache: "auto" stores in memory when the resized split fits in 2 GiB
            (else not at all), "memory", "disk" (at `cache_path`), or "none".
        num_examples: sizes the cache decision when tf.data cannot count the
            dataset (files that may fail to decode are dropped, so it can't).
    """
    if not shuffle:
        return ordered_batches(dataset, image_size, batch_size, num_examples=num_examples, cache=cache, cache_path=cache_path)
    count = int(dataset.cardinality())
    count = count if count > 0 else num_examples
    resized = dataset.map(lambda x, y: resize_uint8(x, y, image_size), num_parallel_calls=tf.data.AUTOTUNE)
    if storage_for(cache, count, image_size) == "memory":
        resized = resized.cache()
    buffer = max(1, count if count > 0 else 1024)
    return resized.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def epoch_batches(
    dataset: tf.data.Dataset,
    image_size: int,
    batch_size: int,
    *,
    seed: int = 0,
    num_examples: int = -1,
    cache: str = "auto",
    cache_path: str | os.PathLike | None = None,
    indexed: IndexedSplit | None = None,
    memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
    per_epoch=None,
) -> EpochBatches:
    """Shuffled training batches whose epoch `e` order depends only on (seed, e); see `pipeline.training_epochs`.

    (Ten parameters: the split and the pipeline's knobs, each a setting of its own.)
    """
    return training_epochs(
        dataset, image_size, batch_size, seed=seed, indexed=indexed, num_examples=num_examples, cache=cache,
        cache_path=cache_path, memory_budget_bytes=memory_budget_bytes, per_epoch=per_epoch,
    )



def sample_arrays(splits: DataSplits, split: str, image_size: int, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Up to `count` images of a split, evenly across classes (tags and values: drawn at random), as uint8 arrays at `image_size`;
    only those are decoded.

    For calibration and parity checks, which need a few hundred images, not
    the whole split in memory. A source that cannot be read by
    index (TFDS, whose records are shuffled when prepared) gives its first
    `count` examples.
    """
    indexed = splits.indexed.get(split)
    if indexed is not None:
        if splits.target is None:
            rows = balanced_indices(indexed.labels, count, seed)
        else:  # tags or values: no classes to balance; a seeded sample in file order
            rows = np.sort(np.random.default_rng(seed).permutation(len(indexed.labels))[:count]) if count > 0 else None
        dataset = indexed.subset(rows).dataset() if rows is not None else indexed.dataset()
    else:
        dataset = getattr(splits, split)
        if dataset is None:
            raise ValueError(f"the data has no {split} split")
        dataset = dataset.take(count) if count > 0 else dataset
    images, labels = [], []
    for x, y in make_batches(dataset, image_size, 64, cache="none").as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise ValueError(f"no image of the {split} split could be read")
    return np.concatenate(images), np.concatenate(labels)
