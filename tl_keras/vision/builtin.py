"""Source: datasets that ship with tl_keras or scikit-learn, so they need no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tl_keras.vision.arrays import in_memory_splits
from tl_keras.vision.folders import scan_image_folder
from tl_keras.vision.pipeline import IndexedSplit
from tl_keras.data.splits import DataSplits, per_class_split, splits_by_index, stratified_split

BUILTIN_DATASETS = ("flowers", "digits_0_4", "digits_5_9", "digits")
# Few labels on the target task is where transfer learning earns its keep.
DIGITS_TARGET_TRAIN_PER_CLASS = 20
DIGITS_TARGET_VALIDATION_PER_CLASS = 20
# The embedded default: 100 real photos per class ship in the package; 40 train, 20 validate, 40 test.
FLOWERS_DIR = Path(__file__).resolve().parent.parent / "assets" / "flowers"
FLOWERS_TRAIN_PER_CLASS = 40
FLOWERS_VALIDATION_PER_CLASS = 20


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
        raise ValueError(
            f"--dataset: unknown built-in dataset {name!r}; known: {', '.join(BUILTIN_DATASETS)} (or use --image_dir / --tfds)"
        )
    # The package's own data sets keep their test splits out of every export (no `test_carved`): their scores are the
    # reference numbers the docs quote.
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
    return in_memory_splits(images, labels, parts, class_names, {"source": f"builtin:{name}", "seed": seed})


def load_bundled_flowers(seed: int = 42) -> DataSplits:
    """The photos that ship in the package, split per class by `seed` (the files are known good: no data check)."""
    scan = scan_image_folder(FLOWERS_DIR, flag="--dataset=flowers")
    parts = per_class_split(scan.labels, FLOWERS_TRAIN_PER_CLASS, FLOWERS_VALIDATION_PER_CLASS, seed)
    relative = np.array([str(Path(p).relative_to(FLOWERS_DIR)) for p in scan.paths])
    record = {
        "source": "builtin:flowers",
        "seed": seed,
        "class_names": scan.class_names,
        **{k: relative[idx].tolist() for k, idx in parts.items()},
    }
    return splits_by_index(IndexedSplit.from_files(scan.paths, scan.labels, checked=True), parts, scan.class_names, record)
