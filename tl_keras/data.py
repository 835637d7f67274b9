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
import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import logging

from tl_keras.epochs import EpochBatches, seeded_shuffle

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
BUILTIN_DATASETS = ("flowers", "digits_0_4", "digits_5_9", "digits")
# Few labels on the target task is where transfer learning earns its keep.
DIGITS_TARGET_TRAIN_PER_CLASS = 20
DIGITS_TARGET_VALIDATION_PER_CLASS = 20
# The embedded default: 100 real photos per class ship in the package; 40 train, 20 validate, 40 test.
FLOWERS_DIR = Path(__file__).resolve().parent / "assets" / "flowers"
FLOWERS_TRAIN_PER_CLASS = 40
FLOWERS_VALIDATION_PER_CLASS = 20
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
    # Labels of `train` in dataset order, where the source knows them up front.
    train_labels: np.ndarray | None = None

    def size(self, split: str) -> int:
        """Examples in a split as listed (before undecodable files are dropped); -1 if unknown."""
        return sum(self.counts[split].values()) if split in self.counts else -1


def load_data(config, run_dir: str | os.PathLike | None = None, progress=None) -> DataSplits:
    """Loads the data source a `RunConfig` names (image_dir, tfds, or a built-in dataset)."""
    if config.image_dir:
        return load_image_folder(
            config.image_dir, config.validation_fraction, config.test_fraction, config.seed,
            split_file=_split_file(run_dir), check=config.data_check, min_images_per_class=config.min_images_per_class,
            report_file=Path(run_dir) / "data_report.json" if run_dir else None, progress=progress,
            validation_dir=config.validation_dir or None,
        )
    if config.tfds:
        return load_tfds(config.tfds, config.tfds_data_dir or None, config.validation_fraction, config.test_fraction, config.seed)
    return load_builtin(config.dataset, config.validation_fraction, config.test_fraction, config.seed)


def load_evaluation_data(image_dir: str, run_dir: Path | None, split: str = "", run_flag: str = "--model") -> tuple[tf.data.Dataset, str, DataSplits]:
    """What the evaluation scripts score a model on: `image_dir` whole, or a split of the run in `run_dir`.

    Args:
        split: the run's split; empty takes test, or validation when the run has no test split.
        run_flag: the flag that names the run, for the error when neither source is given.

    Returns:
        (dataset, its name: "image_dir" or the split, the loaded splits).
    """
    if image_dir:
        splits = load_image_folder(image_dir, 0.0, 0.0)
        return splits.train, "image_dir", splits
    if run_dir is None or not (Path(run_dir) / "config.json").is_file():
        raise ValueError(f"pass --image_dir, or a run folder as {run_flag}")
    from tl_keras.config import RunConfig

    splits = load_data(RunConfig.from_json(Path(run_dir) / "config.json"), run_dir)
    split = split or ("test" if splits.test is not None else "validation")
    dataset = getattr(splits, split)
    if dataset is None:
        raise ValueError(f"--split: the run has no {split} split")
    return dataset, split, splits


def _split_file(run_dir) -> Path | None:
    return Path(run_dir) / "split.json" if run_dir else None


# ------------------------------------------------------------------ built-in


def load_builtin(name: str, validation_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 42) -> DataSplits:
    """A dataset that ships with tl_keras or scikit-learn, so it needs no network.

    `flowers` is 500 real photos in 5 classes (tl_keras/assets/flowers,
    CC BY 2.0, credits in its LICENSE.txt) with a fixed label budget: 40
    training and 20 validation photos per class, the other 40 for the test.
    The rest are scikit-learn's 8x8 handwritten digits as uint8 RGB, split into tasks:

    `digits_0_4` is the source task (all its images, fractional splits);
    `digits_5_9` is the few-label target task: 20 training and 20 validation
    images per class, every other image kept for the test; `digits` is all
    ten classes with fractional splits.
    """
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"--dataset: unknown built-in dataset {name!r}; known: {', '.join(BUILTIN_DATASETS)} (or use --image_dir / --tfds)")
    if name == "flowers":
        return load_bundled_flowers(seed)
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
    return _in_memory_splits(images, labels, parts, class_names, {"source": f"builtin:{name}", "seed": seed})


def load_bundled_flowers(seed: int = 42) -> DataSplits:
    """The photos that ship in the package, split per class by `seed` (the files are known good: no data check)."""
    scan = scan_image_folder(FLOWERS_DIR)
    if not scan.paths:
        raise ValueError(f"--dataset=flowers: no photos in {FLOWERS_DIR}; the package was installed without its assets (reinstall tl_keras)")
    parts = per_class_split(scan.labels, FLOWERS_TRAIN_PER_CLASS, FLOWERS_VALIDATION_PER_CLASS, seed)
    paths = np.array(scan.paths)
    relative = np.array([str(Path(p).relative_to(FLOWERS_DIR)) for p in scan.paths])
    record = {"source": "builtin:flowers", "seed": seed, "class_names": scan.class_names, **{k: relative[idx].tolist() for k, idx in parts.items()}}
    return _splits_by_index(lambda idx: _decode_files(paths[idx], scan.labels[idx]), scan.labels, parts, scan.class_names, record)


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


def _in_memory_splits(images: np.ndarray, labels: np.ndarray, parts: dict[str, np.ndarray], class_names: list[str], record: dict) -> DataSplits:
    """Splits of in-memory uint8 images by index arrays; the indices are the split record."""
    return _splits_by_index(
        lambda idx: tf.data.Dataset.from_tensor_slices((images[idx], labels[idx])),
        labels, parts, class_names, {**record, **{k: idx.tolist() for k, idx in parts.items()}},
    )


def _splits_by_index(make_dataset, labels: np.ndarray, parts: dict[str, np.ndarray], class_names: list[str], record: dict) -> DataSplits:
    """`DataSplits` whose split k is `make_dataset(parts[k])` (None when empty), counted from `labels`."""
    datasets = {k: make_dataset(idx) if len(idx) else None for k, idx in parts.items()}
    return DataSplits(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        class_names=class_names,
        counts=_counts(labels, parts, class_names),
        split_record=record,
        train_labels=labels[parts["train"]],
    )


def _counts(labels: np.ndarray, parts: dict[str, np.ndarray], class_names: list[str]) -> dict[str, dict[str, int]]:
    return {
        split: {name: int(np.sum(labels[idx] == i)) for i, name in enumerate(class_names)}
        for split, idx in parts.items()
        if len(idx)
    }


# ------------------------------------------------------------------ image folders


@dataclasses.dataclass
class FolderScan:
    """A class-per-folder tree as found on disk, before any file is opened."""

    class_names: list[str]
    paths: list[str]
    labels: np.ndarray
    empty_class_folders: list[str]
    ignored_files: list[str]


def scan_image_folder(image_dir: str | os.PathLike) -> FolderScan:
    """Finds class folders (sorted) and their image files, matched by extension.

    Hidden files and folders are ignored, and so are files with other
    extensions (both listed). A class folder with no image files at all is
    left out of the classes and listed: it is usually a leftover, and
    training on the others is what the user wants.

    Raises:
        ValueError: the folder is missing or has fewer than two classes with images.
    """
    root = Path(image_dir)
    if not root.is_dir():
        raise ValueError(f"--image_dir: folder not found: {str(root)!r}")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    class_names, paths, labels, empty, ignored = [], [], [], [], []
    for class_dir in class_dirs:
        files = []
        for p in sorted(class_dir.rglob("*")):
            if not p.is_file():
                continue
            hidden = any(part.startswith(".") for part in p.relative_to(root).parts)
            if hidden or p.suffix.lower() not in IMAGE_EXTENSIONS:
                ignored.append(str(p))
            else:
                files.append(str(p))
        if not files:
            empty.append(str(class_dir))
            logging.warning("class folder %s has no images (%s); leaving it out", class_dir, ", ".join(IMAGE_EXTENSIONS))
            continue
        paths.extend(files)
        labels.extend([len(class_names)] * len(files))
        class_names.append(class_dir.name)
    if len(class_names) < 2:
        raise ValueError(
            f"--image_dir: {root} has {len(class_names)} class folder(s) with images; need at least 2, one sub-folder of images per class"
            + (f" (empty: {', '.join(empty)})" if empty else "")
        )
    return FolderScan(class_names, paths, np.array(labels, dtype=np.int32), empty, ignored)


def load_image_folder(
    image_dir: str | os.PathLike,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 42,
    split_file: Path | None = None,
    *,
    check: bool = True,
    min_images_per_class: int = 1,
    report_file: Path | None = None,
    progress=None,
    validation_dir: str | os.PathLike | None = None,
) -> DataSplits:
    """Loads a class-per-folder tree with a stratified, seeded split.

    With `check`, every file is decoded once first (`datacheck`): unreadable
    files are dropped before the split and listed in `report_file`. When
    `split_file` exists (a rerun), its file lists are used as they are, so
    the test set never leaks into training between runs.

    With `validation_dir` (a second tree with the same class folders, as
    many datasets ship), all of `image_dir` trains and `validation_dir` is
    split into validation and a `test_fraction` share of test;
    `validation_fraction` is then unused.

    Raises:
        ValueError: a class has fewer than `min_images_per_class` usable images,
            or the two trees hold different classes.
    """
    scan = scan_image_folder(image_dir)
    class_names, paths, labels = scan.class_names, scan.paths, scan.labels
    held_out = np.zeros(len(paths), dtype=bool)
    if validation_dir:
        held = scan_image_folder(validation_dir)
        if held.class_names != class_names:
            raise ValueError(
                f"--validation_dir {validation_dir} has class folders {held.class_names} but --image_dir {image_dir} has {class_names}; "
                "both trees need the same class folders"
            )
        paths = [*paths, *held.paths]
        labels = np.concatenate([labels, held.labels])
        held_out = np.concatenate([held_out, np.ones(len(held.paths), dtype=bool)])
        scan.empty_class_folders = [*scan.empty_class_folders, *held.empty_class_folders]
        scan.ignored_files = [*scan.ignored_files, *held.ignored_files]
    report = None
    if check:
        from tl_keras import datacheck

        report = datacheck.check_files(paths, labels, class_names, progress=progress)
        report.empty_class_folders = scan.empty_class_folders
        report.ignored_files = scan.ignored_files
        usable = [c for c in report.checks if c.ok]
        held_paths = {p for p, h in zip(paths, held_out) if h}
        paths = [c.path for c in usable]
        labels = np.array([c.label for c in usable], dtype=np.int32)
        held_out = np.array([p in held_paths for p in paths], dtype=bool)
    counts = np.bincount(labels, minlength=len(class_names))
    for name, count in zip(class_names, counts):
        if count < max(1, min_images_per_class):
            raise ValueError(
                f"class folder {Path(image_dir) / name} has {count} usable image(s); need at least {max(1, min_images_per_class)} "
                "(--min_images_per_class); add images or remove the folder" + (f" (see {report_file})" if report_file else "")
            )
    if split_file is not None and split_file.is_file():
        parts = _reuse_split(split_file, class_names, paths, image_dir)
    elif validation_dir:
        held_index = np.flatnonzero(held_out)
        held_parts = stratified_split(labels[held_index], 0.0, test_fraction, seed)
        parts = {"train": np.flatnonzero(~held_out), "validation": held_index[held_parts["train"]], "test": held_index[held_parts["test"]]}
    else:
        parts = stratified_split(labels, validation_fraction, test_fraction, seed)
    paths_array = np.array(paths)
    record = {"source": f"image_dir:{image_dir}", "seed": seed, "class_names": class_names, **{k: paths_array[idx].tolist() for k, idx in parts.items()}}
    if split_file is not None and not split_file.is_file():
        split_file.parent.mkdir(parents=True, exist_ok=True)
        split_file.write_text(json.dumps(record, indent=1))
    if report is not None and report_file is not None:
        split_of = {p: k for k in ("train", "validation", "test") for p in record[k]}
        report.write(report_file, split_of)
    return _splits_by_index(lambda idx: _decode_files(paths_array[idx], labels[idx]), labels, parts, class_names, record)


def _reuse_split(split_file: Path, class_names: list[str], paths: list[str], image_dir) -> dict[str, np.ndarray]:
    record = json.loads(split_file.read_text())
    if record.get("class_names") != class_names:
        raise ValueError(f"{split_file} was written for classes {record.get('class_names')}, but {image_dir} has {class_names}; use a new --run_dir")
    index = {p: i for i, p in enumerate(paths)}
    missing = [p for split in ("train", "validation", "test") for p in record[split] if p not in index]
    if missing:
        raise ValueError(f"{split_file} lists {len(missing)} files no longer usable in {image_dir}, e.g. {missing[0]}; use a new --run_dir")
    return {k: np.array([index[p] for p in record[k]], dtype=np.int64) for k in ("train", "validation", "test")}


def _decode_files(paths: np.ndarray, labels: np.ndarray) -> tf.data.Dataset:
    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return tf.image.convert_image_dtype(image, tf.uint8, saturate=True), label

    files = tf.data.Dataset.from_tensor_slices((paths, labels))
    # The data check drops unreadable files up front; this is the last line
    # of defence (a file changed since, or the check turned off): the file
    # is dropped with a warning instead of killing the epoch.
    return files.map(decode, num_parallel_calls=tf.data.AUTOTUNE).ignore_errors(log_warning=True)


# ------------------------------------------------------------------ arrays


def load_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str] | None = None,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> DataSplits:
    """In-memory images (N, H, W, 3 or N, H, W) and integer labels, split stratified.

    Float images are taken as [0, 1] when their maximum is at most 1, else
    as [0, 255]; grayscale is repeated to RGB. Pixels become uint8, as every
    other source gives them.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be (N, H, W), (N, H, W, 1), (N, H, W, 3) or (N, H, W, 4); got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    images = images[..., :3]
    if images.dtype != np.uint8:
        scale = 255.0 if images.size and float(np.nanmax(images)) <= 1.0 else 1.0
        images = np.clip(np.round(images.astype(np.float64) * scale), 0, 255).astype(np.uint8)
    num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be integers from 0")
    class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if num_classes > len(class_names):
        raise ValueError(f"labels go up to {num_classes - 1} but only {len(class_names)} class names were given")
    parts = stratified_split(labels, validation_fraction, test_fraction, seed)
    return _in_memory_splits(images, labels, parts, class_names, {"source": "arrays", "seed": seed})


def load_npz(path: str | os.PathLike, validation_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 42) -> DataSplits:
    """An `.npz` with `images` (or `x`) and `labels` (or `y`), and optional `class_names`."""
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        image_key = "images" if "images" in keys else "x" if "x" in keys else None
        label_key = "labels" if "labels" in keys else "y" if "y" in keys else None
        if image_key is None or label_key is None:
            raise ValueError(f"{path} needs arrays named images (or x) and labels (or y); it has {sorted(keys)}")
        names = [str(n) for n in archive["class_names"]] if "class_names" in keys else None
        return load_arrays(archive[image_key], archive[label_key], names, validation_fraction, test_fraction, seed)


# ------------------------------------------------------------------ TFDS


def load_tfds(name: str, data_dir: str | None = None, validation_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 42) -> DataSplits:
    """Loads a TFDS image-classification dataset, using its own splits where it has them.

    Splits the source lacks are carved out of `train` by a stratified,
    seeded split of example indices (labels are read without decoding the
    images). Downloads unless `data_dir` already holds the prepared dataset.
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare()
    splits = builder.info.splits
    class_names = list(builder.info.features["label"].names)
    need_validation = "validation" not in splits
    need_test = "test" not in splits and test_fraction > 0
    record: dict = {"source": f"tfds:{name}", "data_dir": data_dir, "seed": seed}
    datasets: dict[str, tf.data.Dataset | None] = {"validation": None, "test": None}
    counts: dict[str, dict[str, int]] = {}
    if need_validation or need_test:
        labels = _tfds_labels(builder, "train")
        parts = stratified_split(labels, validation_fraction if need_validation else 0.0, test_fraction if need_test else 0.0, seed)
        counts = _counts(labels, parts, class_names)
        train_all = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
        for key, idx in parts.items():
            if key == "train" or len(idx):
                datasets[key] = _select_indices(train_all, idx, len(labels))
                record[key] = {"split": "train", "indices": idx.tolist()}
    else:
        datasets["train"] = builder.as_dataset(split="train", as_supervised=True, shuffle_files=False)
        record["train"] = "train"
        labels = _tfds_labels(builder, "train")
        counts = {"train": {name: int(np.sum(labels == i)) for i, name in enumerate(class_names)}}
    for key in ("validation", "test"):
        if key in splits:
            datasets[key] = builder.as_dataset(split=key, as_supervised=True, shuffle_files=False)
            record[key] = key

    def as_rgb(image, label):
        # Grayscale (and gray+alpha) to RGB by repeating the gray channel; drop alpha.
        image = tf.cond(tf.shape(image)[-1] < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
        return tf.cast(image, tf.uint8), tf.cast(label, tf.int32)

    mapped = {k: (ds.map(as_rgb, num_parallel_calls=tf.data.AUTOTUNE) if ds is not None else None) for k, ds in datasets.items()}
    return DataSplits(
        train=mapped["train"],
        validation=mapped["validation"],
        test=mapped["test"],
        class_names=class_names,
        counts=counts,
        split_record=record,
    )


def _tfds_labels(builder, split: str) -> np.ndarray:
    """Labels of a TFDS split, read without decoding a single image."""
    import tensorflow_datasets as tfds

    examples = builder.as_dataset(split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()})
    return np.array([int(example["label"]) for example in examples.as_numpy_iterator()], dtype=np.int32)


def _select_indices(dataset: tf.data.Dataset, indices: np.ndarray, total: int) -> tf.data.Dataset:
    mask = np.zeros(total, dtype=bool)
    mask[indices] = True
    keep = tf.constant(mask)
    return dataset.enumerate().filter(lambda i, example: keep[i]).map(lambda i, example: example)


# ------------------------------------------------------------------ fewer labels


def limit_train_per_class(splits: DataSplits, per_class: int, seed: int = 0) -> DataSplits:
    """Keeps at most `per_class` training examples of each class (seeded), for learning curves.

    Validation and test are untouched, so scores at different label budgets
    compare on the same images.
    """
    if per_class <= 0:
        return splits
    if splits.train_labels is None:
        raise ValueError("--max_train_per_class needs a source whose training labels are known up front (image folder, arrays, built-in)")
    rng = np.random.default_rng(seed)
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(splits.train_labels == c))[:per_class] for c in range(len(splits.class_names))]))
    train = _select_indices(splits.train, keep, len(splits.train_labels))
    labels = splits.train_labels[keep]
    counts = {**splits.counts, "train": {name: int(np.sum(labels == i)) for i, name in enumerate(splits.class_names)}}
    record = {**splits.split_record, "max_train_per_class": per_class, "train_kept_positions": keep.tolist()}
    return dataclasses.replace(splits, train=train, counts=counts, split_record=record, train_labels=labels)


# ------------------------------------------------------------------ class weights


def balanced_class_weights(train_counts: dict[str, int], class_names: list[str]) -> dict[int, float]:
    """Weights n / (k * n_c): each class contributes equally to the loss.

    Raises:
        ValueError: a class has no training example (its weight would be infinite).
    """
    counts = np.array([train_counts.get(name, 0) for name in class_names], dtype=np.float64)
    if np.any(counts == 0):
        missing = [n for n, c in zip(class_names, counts) if c == 0]
        raise ValueError(f"--class_weights=auto: classes {missing} have no training examples")
    weights = counts.sum() / (len(counts) * counts)
    return {i: float(w) for i, w in enumerate(weights)}


# ------------------------------------------------------------------ batching


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
    """Resizes to the model's input size (still uint8), caches, shuffles, batches, prefetches.

    Resizing here only makes differently sized images batchable; the model's
    own resize layer then sees the size it wants and is an identity. For
    training prefer `epoch_batches`, whose order survives a resume.

    Args:
        cache: "auto" caches in memory when the resized split fits in 2 GiB
            (else not at all), "memory", "disk" (to `cache_path`), or "none".
        num_examples: sizes the cache decision when tf.data cannot count the
            dataset (files that may fail to decode are dropped, so it can't).
    """
    ds, count, in_memory = _resized_and_cached(dataset, image_size, num_examples, cache, cache_path)
    if shuffle:
        ds = ds.shuffle(_shuffle_buffer(count, in_memory), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def epoch_batches(
    dataset: tf.data.Dataset,
    image_size: int,
    batch_size: int,
    *,
    seed: int = 0,
    num_examples: int = -1,
    cache: str = "auto",
    cache_path: str | os.PathLike | None = None,
) -> EpochBatches:
    """Shuffled training batches whose epoch `e` order depends only on (seed, e).

    Same resizing and caching as `make_batches`. The batch count per epoch
    must be known; when neither tf.data nor `num_examples` knows it, the
    split is counted once (which also fills an in-memory cache).
    """
    ds, count, in_memory = _resized_and_cached(dataset, image_size, num_examples, cache, cache_path)
    if count <= 0:
        count = int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
        logging.info("counted %d training examples", count)
    if count == 0:
        raise ValueError("the training split is empty")
    buffer = _shuffle_buffer(count, in_memory)

    def make_epoch(epoch):
        return seeded_shuffle(ds, buffer, seed, epoch).batch(batch_size)

    return EpochBatches(make_epoch, math.ceil(count / batch_size))


def _resized_and_cached(dataset, image_size, num_examples, cache, cache_path):
    def resize(image, label):
        resized = tf.image.resize(image, (image_size, image_size), method="bilinear")
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8), label

    ds = dataset.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
    count = int(dataset.cardinality())
    if count < 0 and num_examples > 0:
        count = num_examples
    fits = 0 < count and count * image_size * image_size * 3 <= _MAX_IN_MEMORY_CACHE_BYTES
    in_memory = cache == "memory" or (cache == "auto" and fits)
    if in_memory:
        ds = ds.cache()
    elif cache == "disk":
        if cache_path is None:
            raise ValueError("cache='disk' needs a cache_path")
        Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
        ds = ds.cache(str(cache_path))
    return ds, count, in_memory


def _shuffle_buffer(count: int, in_memory: bool) -> int:
    """A memory-cached split is shuffled whole; otherwise the buffer is capped, as it holds decoded images."""
    buffer = count if in_memory and count > 0 else min(count, 4096) if count > 0 else 1024
    return max(buffer, 1)
