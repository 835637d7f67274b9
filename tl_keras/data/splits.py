"""The split policy: which example goes to train, validation and test, and when a recorded split may be reused.

A run writes its split to `split.json` so that a rerun, a resume or an
evaluation scores exactly the same files. A recorded split is only valid
for the settings that made it: it stores them (`SPLIT_SETTINGS`) and is
reused only when they all match, so a new seed or fraction never trains on
an old split while `config.json` claims the new one.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Protocol

import numpy as np
from absl import logging
import tensorflow as tf

from tl_keras.config.run_config import SPLIT_FOLDER_NAMES
from tl_keras.io import atomic, storage

# What a split depends on besides the files themselves; recorded in split.json and compared on reuse.
SPLIT_SETTINGS = ("source", "seed", "validation_fraction", "test_fraction", "validation_dir")


def split_folders_inside(root: str | Path, flag: str, train_flag: str, held_flags: dict[str, str], unused: str = "") -> str | None:
    """What to pass instead, when `root`'s sub-folders are splits (train/, val/, test/ of class folders), not classes; else None.

    The most common layout one level up from a class-per-folder tree: read
    as classes, it would train a classifier of "train" against "test"
    without a word. Each modality names its flag for the training tree, its
    flags for held-out trees (`held_flags`: {"validation" or "test": flag}),
    and how to use a split folder no flag takes (`unused`, formatted with
    `folder`).
    """
    def folders_in(folder: str) -> list[str]:
        return [name for name in storage.listdir(folder) if not name.startswith(".") and storage.isdir(storage.join(folder, name))]

    root = str(root)
    splits = {name.lower(): storage.join(root, name) for name in folders_in(root)
              if name.lower() in SPLIT_FOLDER_NAMES and folders_in(storage.join(root, name))}
    others = [name for name in folders_in(root) if name.lower() not in splits]
    if len(splits) < 2 and not (splits and not others):
        return None
    classes = sorted(folders_in(next(iter(splits.values()))))
    train = next((splits[n] for n in ("train", "training") if n in splits), None)
    if train is None:
        advice = f"pass {train_flag} a folder with one sub-folder per class"
    else:
        passed, left = [f"{train_flag}={train}"], []
        for name, folder in splits.items():
            kind = "validation" if name in ("val", "valid", "validation") else "test" if name in ("test", "testing") else None
            if kind in held_flags and not any(p.startswith(held_flags[kind] + "=") for p in passed):
                passed.append(f"{held_flags[kind]}={folder}")
            elif folder != train:
                left.append(folder)
        advice = "pass " + " ".join(passed)
        if left and unused:
            advice += "; then " + ", ".join(unused.format(folder=d) for d in left)
    return (f"{flag}={root}: its sub-folders {', '.join(storage.name_of(d) for d in splits.values())} are splits holding class "
            f"folders ({', '.join(classes[:5])}{', ...' if len(classes) > 5 else ''}), not classes; {advice}")


class IndexedSource(Protocol):
    """A split readable example by example (`vision.pipeline.IndexedSplit` for images): labels in index order, and subsets."""

    labels: np.ndarray

    def subset(self, indices: np.ndarray) -> "IndexedSource": ...

    def joined(self, other: "IndexedSource") -> "IndexedSource | None": ...

    def dataset(self, order=None) -> tf.data.Dataset: ...


class SplitMismatchError(ValueError):
    """A recorded split was made with other settings than this run's."""


@dataclasses.dataclass
class DataSplits:
    """Unbatched splits of (example, int32 label) and the class names; an image source's example is uint8 HxWx3 pixels.

    `test` is None when the source has no data left for a test split.
    `test_carved` says the test split was drawn by `--test_fraction` from
    the user's labelled examples (the source named no test split of its
    own): once the report is written, those labels can still train the
    export, where a test split the source supplied stays held out.
    `split_record` says exactly which examples went where (file lists, index
    lists or TFDS split strings) and with which settings. `indexed` holds
    the splits that can be read by index (image folders, arrays): training
    epochs then permute indices instead of pixels.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset | None
    class_names: list[str]
    counts: dict[str, dict[str, int]]
    split_record: dict
    # Labels of `train` in dataset order, where the source knows them up front.
    train_labels: np.ndarray | None = None
    indexed: dict[str, IndexedSource] = dataclasses.field(default_factory=dict)
    # The run's `tasks.TargetSpec` where the labels are tags or values (a labels file); None: one class per example.
    target: object = None
    # Splits read from shards (`data.records`): (e, image_size) -> epoch e's examples, in an order fixed by (seed, e).
    epoch_sources: dict = dataclasses.field(default_factory=dict)
    test_carved: bool = False

    def size(self, split: str) -> int:
        """Examples in a split as listed (before undecodable files are dropped); -1 if unknown."""
        return sum(self.counts[split].values()) if split in self.counts else -1


def stratified_split(labels: np.ndarray, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Index arrays for train/validation/test, each class split in the same proportions.

    Every class keeps at least one training example; a class too small for a
    validation or test share simply contributes none to it. (scikit-learn's
    `train_test_split(stratify=)` refuses classes with a single member, which
    small user folders have.) Indices come back sorted; epochs shuffle them.
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


def balanced_indices(labels: np.ndarray, count: int, seed: int = 0) -> np.ndarray:
    """Up to `count` positions drawn evenly across classes (seeded), sorted: a sample that sees every class.

    Taking the first `count` examples instead would take the first classes
    only, since folders are listed class by class.
    """
    labels = np.asarray(labels)
    if count <= 0 or count >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    picks, round_ = [], 0
    while len(picks) < count:  # round robin: a small class runs out, the others fill its share
        row = [pool[round_] for pool in pools if round_ < len(pool)]
        picks.extend(row[: count - len(picks)])
        round_ += 1
    return np.sort(np.array(picks, dtype=np.int64))


def split_settings(source: str, seed: int, validation_fraction: float, test_fraction: float, validation_dir: str | None) -> dict:
    """The settings a split is keyed to, as recorded in split.json."""
    return {"source": source, "seed": int(seed), "validation_fraction": float(validation_fraction),
            "test_fraction": float(test_fraction), "validation_dir": str(validation_dir or "")}


def recorded_split(split_file: Path | None, settings: dict, class_names: list[str], paths: list[str]) -> dict[str, np.ndarray] | None:
    """The split recorded in `split_file` as index arrays into `paths`, or None when there is none to reuse.

    Raises:
        SplitMismatchError: the record was made with other settings or
            classes (names each differing field with both values), or lists
            files that are no longer usable.
    """
    if split_file is None or not split_file.is_file():
        return None
    record = json.loads(split_file.read_text())
    differing = [
        f"{key}: recorded {record.get(key)!r}, now {value!r}"
        for key, value in settings.items()
        if key in record and record[key] != value
    ]
    missing = [key for key in settings if key not in record]
    if missing:
        differing.append(f"the record predates split settings (has no {', '.join(missing)})")
    if record.get("class_names") != class_names:
        differing.append(f"class_names: recorded {record.get('class_names')}, now {class_names}")
    if differing:
        raise SplitMismatchError(
            f"{split_file} was made with other settings ({'; '.join(differing)}); "
            "pass --overwrite to make a new split there, or use a new --run_dir"
        )
    index = {p: i for i, p in enumerate(paths)}
    gone = [p for split in ("train", "validation", "test") for p in record[split] if p not in index]
    if gone:
        raise SplitMismatchError(f"{split_file} lists {len(gone)} files no longer usable, e.g. {gone[0]}; pass --overwrite for a new split")
    recorded = {p for split in ("train", "validation", "test") for p in record[split]}
    new = [p for p in paths if p not in recorded]
    if new:
        logging.warning(
            "%s predates %d usable file(s) now in the folder (e.g. %s); they are not used: pass --overwrite to split again",
            split_file, len(new), new[0],
        )
    return {k: np.array([index[p] for p in record[k]], dtype=np.int64) for k in ("train", "validation", "test")}


def write_split(split_file: Path | None, record: dict) -> None:
    """Writes split.json atomically (a half-written record would be refused, not silently reused)."""
    if split_file is None:
        return
    atomic.write_json(split_file, record, indent=1)


def counts_by_class(labels: np.ndarray, parts: dict[str, np.ndarray], class_names: list[str]) -> dict[str, dict[str, int]]:
    return {
        split: {name: int(np.sum(labels[idx] == i)) for i, name in enumerate(class_names)}
        for split, idx in parts.items()
        if len(idx)
    }


def splits_by_index(
    indexed: IndexedSource, parts: dict[str, np.ndarray], class_names: list[str], record: dict, *, test_carved: bool = False,
) -> DataSplits:
    """`DataSplits` whose split k is the examples of `indexed` at `parts[k]` (None when empty); `test_carved`: see `DataSplits`."""
    by_split = {k: indexed.subset(idx) for k, idx in parts.items() if len(idx)}
    datasets = {k: by_split[k].dataset() if k in by_split else None for k in ("train", "validation", "test")}
    return DataSplits(
        train=datasets["train"],
        validation=datasets["validation"],
        test=datasets["test"],
        class_names=class_names,
        counts=counts_by_class(indexed.labels, parts, class_names),
        split_record=record,
        train_labels=indexed.labels[parts["train"]],
        indexed=by_split,
        test_carved=test_carved and len(parts.get("test", ())) > 0,
    )
