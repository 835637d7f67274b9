"""Data sources -> (uint8 image, int label) `tf.data` pipelines with a fixed class order.

Three sources feed the same training code: built-in offline datasets (the
scikit-learn digits that make the embedded default), an image folder with
one sub-folder per class, and any TFDS image-classification dataset. Splits
are stratified and seeded, and written to the run folder so a rerun trains
and tests on exactly the same files.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import logging

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
BUILTIN_DATASETS = ("digits_0_4", "digits_5_9", "digits")
# Few labels on the target task is where transfer learning earns its keep.
DIGITS_TARGET_TRAIN_PER_CLASS = 20
DIGITS_TARGET_VALIDATION_PER_CLASS = 20
_MAX_IN_MEMORY_CACHE_BYTES = 2 << 30


@dataclasses.dataclass
class DataSplits:
    """Unbatched splits of (uint8 HxWx3 image, int32 label) and the class names.

    `test` is None when the source has no data left for a test split.
    `split_record` says exactly which examples went where (file lists, index
    lists or TFDS split strings).
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset | None
    class_names: list[str]
    counts: dict[str, dict[str, int]]
    split_record: dict

    def size(self, split: str) -> int:
        """Examples in a split as listed (before undecodable files are dropped); -1 if unknown."""
        return sum(self.counts[split].values()) if split in self.counts else -1


def load_data(config, run_dir: str | os.PathLike | None = None) -> DataSplits:
    """Loads the data source a `RunConfig` names (image_dir, tfds, or a built-in dataset)."""
    if config.image_dir:
        return load_image_folder(
            config.image_dir, config.validation_fraction, config.test_fraction, config.seed, split_file=_split_file(run_dir)
        )
    if config.tfds:
        return load_tfds(config.tfds, config.tfds_data_dir or None, config.validation_fraction, config.test_fraction)
    return load_builtin(config.dataset, config.validation_fraction, config.test_fraction, config.seed)


def _split_file(run_dir) -> Path | None:
    return Path(run_dir) / "split.json" if run_dir else None


# ------------------------------------------------------------------ built-in


def load_builtin(name: str, validation_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 42) -> DataSplits:
    """scikit-learn's 8x8 handwritten digits as uint8 RGB, split into tasks.

    `digits_0_4` is the source task (all its images, fractional splits);
    `digits_5_9` is the few-label target task: 20 training and 20 validation
    images per class, every other image kept for the test; `digits` is all
    ten classes with fractional splits.
    """
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"--dataset: unknown built-in dataset {name!r}; known: {', '.join(BUILTIN_DATASETS)} (or use --image_dir / --tfds)")
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    images = np.repeat(pixels[..., None], 3, axis=-1)
    wanted = {"digits_0_4": range(0, 5), "digits_5_9": range(5, 10), "digits": range(10)}[name]
    keep = np.isin(digits.target, list(wanted))
    images, targets = images[keep], digits.target[keep]
    class_names = [str(d) for d in wanted]
    labels = np.searchsorted(np.array(list(wanted)), targets).astype(np.int32)
    if name == "digits_5_9":
        parts = per_class_split(labels, DIGITS_TARGET_TRAIN_PER_CLASS, DIGITS_TARGET_VALIDATION_PER_CLASS, seed)
    else:
        parts = stratified_split(labels, validation_fraction, test_fraction, seed)
    datasets = {k: tf.data.Dataset.from_tensor_slices((images[idx], labels[idx])) if len(idx) else None for k, idx in parts.items()}
    return DataSplits(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        class_names=class_names,
        counts=_counts(labels, parts, class_names),
        split_record={"source": f"builtin:{name}", "seed": seed, **{k: idx.tolist() for k, idx in parts.items()}},
    )


# ------------------------------------------------------------------ splits


def stratified_split(labels: np.ndarray, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Index arrays for train/validation/test, each class split in the same proportions.

    Every class keeps at least one training example; a class too small for a
    validation or test share simply contributes none to it.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * validation_fraction))
        n_test = int(round(len(idx) * test_fraction))
        while n_val + n_test >= len(idx) and (n_val or n_test):
            if n_test >= n_val:
                n_test -= 1
            else:
                n_val -= 1
        parts["validation"].extend(idx[:n_val])
        parts["test"].extend(idx[n_val : n_val + n_test])
        parts["train"].extend(idx[n_val + n_test :])
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in parts.items()}


def per_class_split(labels: np.ndarray, train_per_class: int, validation_per_class: int, seed: int) -> dict[str, np.ndarray]:
    """Fixed numbers of training and validation examples per class; the rest is test."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list] = {"train": [], "validation": [], "test": []}
    for label in np.unique(labels):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        parts["train"].extend(idx[:train_per_class])
        parts["validation"].extend(idx[train_per_class : train_per_class + validation_per_class])
        parts["test"].extend(idx[train_per_class + validation_per_class :])
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in parts.items()}


def _counts(labels: np.ndarray, parts: dict[str, np.ndarray], class_names: list[str]) -> dict[str, dict[str, int]]:
    return {
        split: {name: int(np.sum(labels[idx] == i)) for i, name in enumerate(class_names)}
        for split, idx in parts.items()
        if len(idx)
    }


# ------------------------------------------------------------------ image folders


def scan_image_folder(image_dir: str | os.PathLike) -> tuple[list[str], list[str], np.ndarray]:
    """Class names (sorted sub-folders), image paths and labels of a class-per-folder tree.

    Hidden files and folders are ignored; files are matched by extension.

    Raises:
        ValueError: fewer than two class folders, or a class folder with no images.
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise ValueError(f"--image_dir: folder not found: {str(root)!r}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise ValueError(f"--image_dir: {root} has {len(class_dirs)} class folder(s); need at least 2, one sub-folder of images per class")
    paths, labels = [], []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(
            str(p)
            for p in class_dir.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )
        if not files:
            raise ValueError(f"--image_dir: class folder {class_dir} has no images ({', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder")
        paths.extend(files)
        labels.extend([label] * len(files))
    return [p.name for p in class_dirs], paths, np.array(labels, dtype=np.int32)


def load_image_folder(
    image_dir: str | os.PathLike,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 42,
    split_file: Path | None = None,
) -> DataSplits:
    """Loads a class-per-folder tree with a stratified, seeded split.

    When `split_file` exists (a rerun), its file lists are used as they are,
    so the test set never leaks into training between runs.
    """
    class_names, paths, labels = scan_image_folder(image_dir)
    if split_file is not None and split_file.is_file():
        record = json.loads(split_file.read_text())
        if record.get("class_names") != class_names:
            raise ValueError(f"{split_file} was written for classes {record.get('class_names')}, but {image_dir} has {class_names}; use a new run directory")
        index = {p: i for i, p in enumerate(paths)}
        missing = [p for split in ("train", "validation", "test") for p in record[split] if p not in index]
        if missing:
            raise ValueError(f"{split_file} lists {len(missing)} files no longer in {image_dir}, e.g. {missing[0]}; use a new run directory")
        parts = {k: np.array([index[p] for p in record[k]], dtype=np.int64) for k in ("train", "validation", "test")}
    else:
        parts = stratified_split(labels, validation_fraction, test_fraction, seed)
    paths_array = np.array(paths)
    record = {"source": f"image_dir:{image_dir}", "seed": seed, "class_names": class_names, **{k: paths_array[idx].tolist() for k, idx in parts.items()}}
    if split_file is not None and not split_file.is_file():
        split_file.parent.mkdir(parents=True, exist_ok=True)
        split_file.write_text(json.dumps(record, indent=1))
    datasets = {k: _decode_files(paths_array[idx], labels[idx]) if len(idx) else None for k, idx in parts.items()}
    return DataSplits(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        class_names=class_names,
        counts=_counts(labels, parts, class_names),
        split_record=record,
    )


def _decode_files(paths: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.image.convert_image_dtype(image, tf.uint8, saturate=True), label

    files = tf.data.Dataset.from_tensor_slices((paths, labels))
    # A file that fails to decode is dropped with a warning instead of
    # killing the epoch; the data check (issue: data) reports it up front.
    return files.map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)


# ------------------------------------------------------------------ TFDS


def load_tfds(name: str, data_dir: str | None = None, validation_fraction: float = 0.2, test_fraction: float = 0.1) -> DataSplits:
    """Loads a TFDS image-classification dataset, using its own splits where it has them.

    A dataset with only `train` is sliced by percentage (TFDS's deterministic
    split strings, recorded in the run). Downloads unless `data_dir` already
    holds the prepared dataset.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    splits = builder.info.splits
    label_feature = builder.info.features["label"]
    class_names = list(label_feature.names)
    train_pct = int(round(100 * (1 - validation_fraction - test_fraction)))
    val_end = int(round(100 * (1 - test_fraction)))
    split_strings = {
        "train": "train" if "validation" in splits else f"train[:{train_pct}%]",
        "validation": "validation" if "validation" in splits else f"train[{train_pct}%:{val_end}%]",
        "test": "test" if "test" in splits else (f"train[{val_end}%:]" if test_fraction else None),
    }
    if "validation" in splits and "test" not in splits and test_fraction:
        split_strings["train"] = f"train[:{100 - int(round(100 * test_fraction))}%]"
        split_strings["test"] = f"train[{100 - int(round(100 * test_fraction))}%:]"

    def as_rgb(image, label):
        image = tf.cond(tf.shape(image)[-1] == 1, lambda: tf.image.grayscale_to_rgb(image), lambda: image[..., :3])
        return tf.cast(image, tf.uint8), tf.cast(label, tf.int32)

    datasets = {
        k: builder.as_dataset(split=s, as_supervised=True, shuffle_files=False).map(as_rgb, num_parallel_calls=tf.data.AUTOTUNE)
        if s
        else None
        for k, s in split_strings.items()
    }
    return DataSplits(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        class_names=class_names,
        counts={},
        split_record={"source": f"tfds:{name}", "data_dir": data_dir, **split_strings},
    )


# ------------------------------------------------------------------ batching


def make_batches(
    dataset: tf.data.Dataset, image_size: int, batch_size: int, *, shuffle: bool = False, seed: int = 0, num_examples: int = -1
) -> tf.data.Dataset:
    """Resizes to the model's input size (still uint8), caches, shuffles, batches, prefetches.

    Resizing here only makes differently sized images batchable; the model's
    own resize layer then sees the size it wants and is an identity.
    `num_examples` sizes the cache decision when tf.data cannot count the
    dataset (files that may fail to decode).
    """

    def resize(image, label):
        resized = tf.image.resize(image, (image_size, image_size), method="bilinear")
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8), label

    ds = dataset.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    cardinality = int(dataset.cardinality())
    if cardinality < 0 and num_examples > 0:
        cardinality = num_examples
    if cardinality > 0 and cardinality * image_size * image_size * 3 <= _MAX_IN_MEMORY_CACHE_BYTES:
        ds = ds.cache()
    elif cardinality < 0:
        logging.info("dataset size unknown; not caching it in memory")
    if shuffle:
        ds = ds.shuffle(max(cardinality, 1024) if cardinality > 0 else 1024, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
