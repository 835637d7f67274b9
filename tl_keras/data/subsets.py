"""Subsets of a run's splits that know nothing of what an example is: label budgets, class weights, every label for the refit.

`select_positions` keeps given positions of a dataset that cannot be read by
index (TFDS records); the others work on `DataSplits` through the index
sources' `subset` and `joined`.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from tl_keras.data.splits import DataSplits


def select_positions(dataset: tf.data.Dataset, positions: np.ndarray, total: int) -> tf.data.Dataset:
    """The elements of `dataset` (of `total`) at `positions`, in dataset order: for sources that cannot be read by index.

    Select before decoding (on encoded records) where the source allows, so
    the discarded elements cost a read and no decode.
    """
    mask = np.zeros(total, dtype=bool)
    mask[positions] = True
    keep = tf.constant(mask)

    def kept(position, element):
        return keep[position]

    def without_position(position, element):
        return element

    return dataset.enumerate().filter(kept).map(without_position)


def limit_train_per_class(splits: DataSplits, per_class: int, seed: int = 0) -> DataSplits:
    """Keeps at most `per_class` training examples of each class (seeded), for learning curves.

    Validation and test are untouched, so scores at different label budgets
    compare on the same images.
    """
    if per_class <= 0:
        return splits
    if splits.train_labels is None:
        raise ValueError(
            "--max_train_per_class needs a source whose training labels are known up front (image folder, arrays, built-in, TFDS)"
        )
    rng = np.random.default_rng(seed)
    keep = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(splits.train_labels == c))[:per_class] for c in range(len(splits.class_names))])
    )
    indexed = dict(splits.indexed)
    if "train" in indexed:
        indexed["train"] = indexed["train"].subset(keep)
        train = indexed["train"].dataset()
    else:
        train = select_positions(splits.train, keep, len(splits.train_labels))
    labels = splits.train_labels[keep]
    counts = {**splits.counts, "train": {name: int(np.sum(labels == i)) for i, name in enumerate(splits.class_names)}}
    record = {**splits.split_record, "max_train_per_class": per_class, "train_kept_positions": keep.tolist()}
    return dataclasses.replace(splits, train=train, counts=counts, split_record=record, train_labels=labels, indexed=indexed)


def balanced_class_weights(train_counts: dict[str, int], class_names: list[str]) -> dict[int, float]:
    """Weights n / (k * n_c) (scikit-learn's "balanced"): each class contributes equally to the loss.

    Raises:
        ValueError: a class has no training example (its weight would be infinite).
    """
    from sklearn.utils.class_weight import compute_class_weight

    counts = np.array([train_counts.get(name, 0) for name in class_names], dtype=np.int64)
    if np.any(counts == 0):
        missing = [n for n, c in zip(class_names, counts) if c == 0]
        raise ValueError(f"--class_weights=auto: classes {missing} have no training examples")
    labels = np.repeat(np.arange(len(class_names)), counts)
    weights = compute_class_weight("balanced", classes=np.arange(len(class_names)), y=labels)
    return {i: float(w) for i, w in enumerate(weights)}


def all_labelled(splits: DataSplits, include_test: bool = False) -> DataSplits:
    """The splits with validation (and, with `include_test`, test) folded into training: what a refit on every label trains on.

    Validation becomes None (and test too, when folded in), so nothing
    downstream can pick an epoch on, or score on, images the model trained on.
    """
    folded = ["validation"] + (["test"] if include_test else [])
    counts = {**splits.counts, "train": {n: sum(splits.counts.get(s, {}).get(n, 0) for s in ["train", *folded])
                                         for n in splits.class_names}}
    indexed = dict(splits.indexed)
    train, joined = splits.train, indexed.get("train")
    for split in folded:
        part = getattr(splits, split)
        counts.pop(split, None)
        if part is None:
            continue
        joined = joined.joined(indexed[split]) if joined is not None and split in indexed else None
        train = joined.dataset() if joined is not None else train.concatenate(part)
    if joined is not None:
        indexed["train"] = joined
    else:
        indexed.pop("train", None)
    labels = None
    if splits.train_labels is not None and all(s in splits.indexed for s in folded if getattr(splits, s) is not None):
        labels = np.concatenate([splits.train_labels] + [splits.indexed[s].labels for s in folded if getattr(splits, s) is not None])
    for split in folded:
        indexed.pop(split, None)
    return dataclasses.replace(splits, train=train, validation=None, counts=counts, train_labels=labels, indexed=indexed,
                               **({"test": None} if include_test else {}))
