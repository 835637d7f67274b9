"""Text splits with the image sources' contract: sorted class names, a seeded stratified split, split.json.

A source file gives train (and validation and test, split off it by the
same stratified rule as images) unless separate validation or test files
are named. The data check reports what was skipped, warns about texts that
appear in more than one split (a test score that measures memory), and,
once a tokenizer is known, the length distribution and how many texts the
sequence length truncates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path

import numpy as np
from absl import logging

from tl_keras.io import storage
from tl_keras.data.splits import SplitMismatchError
from tl_keras.config.settings import ConfigError, DataSettings
from tl_keras.tasks import SINGLE_LABEL, TargetSpec, spec_for_training, with_scale
from tl_keras.text.sources import LabelledTexts, read_text_source

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class TextSplits:
    """Texts and targets per split (test may be empty), the output names in order, and the record of how.

    Targets are in the user's units: class ids (int), tag rows (0/1 per tag)
    or values; `target.training_targets` gives what `fit` sees.
    """

    class_names: list[str]
    texts: dict[str, list[str]]
    labels: dict[str, np.ndarray]
    record: dict
    problems: list[str]
    target: TargetSpec | None = None

    def __post_init__(self):
        if self.target is None:
            self.target = TargetSpec(SINGLE_LABEL, list(self.class_names))

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        task = self.target.task
        return {s: task.counts(self.labels[s], self.class_names) for s in SPLITS if len(self.texts[s])}

    def has(self, split: str) -> bool:
        return len(self.texts[split]) > 0


def load_text_splits(
    train_source: str, *, validation_source: str = "", test_source: str = "", text_column: str = "", label_column: str = "",
    validation_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 42, min_per_class: int = DataSettings.min_images_per_class,
    max_train_per_class: int = 0, class_order: list[str] | None = None, task: str = "auto",
) -> TextSplits:
    """Reads the sources and splits them; what a separate file provides is not carved from the training file.

    `task` (auto, single_label, multi_label, regression) says what a label
    is; auto decides from the training labels (`tasks.decide_task`). Classes
    are in `class_order` where the source has one (a TFDS ClassLabel's
    names), else in numeric order when every label is a whole number ("2"
    before "10"), else sorted; tags likewise, or sorted.

    (Twelve parameters: the sources and the split's settings, each a flag of its own.)

    Raises:
        ConfigError: a class has fewer than `min_per_class` training texts
            (named), or a validation/test file holds a label the training
            data lacks.
    """
    read = {"train": read_text_source(train_source, text_column=text_column, label_column=label_column)}
    for split, source in (("validation", validation_source), ("test", test_source)):
        if source:
            read[split] = read_text_source(source, text_column=text_column, label_column=label_column)
    train = read["train"]
    try:
        spec, targets, kept, label_problems = spec_for_training(train.labels, train.where or [train.source] * len(train), task, class_order)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if spec.kind == SINGLE_LABEL:
        class_names = ordered_classes(set(train.labels), class_order)
        spec = dataclasses.replace(spec, names=class_names)
        targets = spec.encode(train.labels, train.where)[0]
        index = {name: i for i, name in enumerate(class_names)}
        for split in ("validation", "test"):
            unknown = sorted(set(read[split].labels) - set(index)) if split in read else []
            if unknown:
                raise ConfigError(f"{split} file {read[split].source}: labels {unknown} never occur in the training data")
    elif max_train_per_class:
        raise ConfigError(f"--max_train_per_class={max_train_per_class} counts texts per class; a {spec.kind} run has no classes")
    else:
        logging.info("text data: %s: %s", spec.kind.replace("_", "-"), spec.decided)
    fractions = (0.0 if "validation" in read else validation_fraction, 0.0 if "test" in read else test_fraction)
    parts = spec.task.split(targets, *fractions, seed)
    if spec.kind == SINGLE_LABEL:
        parts["train"] = _limit_per_class(parts["train"], targets, max_train_per_class, seed)
        _check_class_sizes(targets[parts["train"]], spec.names, min_per_class)
    spec = with_scale(spec, targets[parts["train"]])
    texts = {split: [train.texts[kept[i]] for i in parts[split]] for split in SPLITS}
    labels = {split: targets[parts[split]] for split in SPLITS}
    problems = [*(p for part in read.values() for p in part.problems), *label_problems]
    for split in ("validation", "test"):
        if split in read:
            part = read[split]
            held, held_kept, held_problems = spec.encode(part.labels, part.where or [part.source] * len(part))
            texts[split], labels[split] = [part.texts[i] for i in held_kept], held
            problems += held_problems
    _log_problems(problems)
    record = {
        "source": {s: r.source for s, r in read.items()}, "seed": seed, "validation_fraction": validation_fraction,
        "test_fraction": test_fraction, "max_train_per_class": max_train_per_class, "class_names": spec.names,
        "indices_into_train_source": {s: kept[parts[s]].tolist() for s in SPLITS if s not in read or s == "train"},
        "data_sha256": _fingerprint(train), "data_sha256_by_split": {split: _fingerprint(r) for split, r in read.items()},
        "counts": {s: spec.task.counts(labels[s], spec.names) for s in SPLITS if len(texts[s])},
        "task": {k: v for k, v in spec.to_dict().items() if k != "thresholds"},
    }
    return TextSplits(spec.names, texts, labels, record, problems, spec)


def _log_problems(problems: list[str]) -> None:
    for problem in problems[:20]:
        logging.warning("text data: %s", problem)
    if len(problems) > 20:
        logging.warning("text data: %d more problems (data_report.json lists all)", len(problems) - 20)


# The flag that names each split's source, for messages.
SOURCE_FLAGS = {"train": "--text_file", "validation": "--validation_file", "test": "--test_file"}


def check_same_data(split_file: Path, splits: TextSplits, fix: str) -> None:
    """Refuses texts other than those `split_file` (split.json) was made from: same data hash per source, same class names.

    A resume on an edited file would continue the saved weights on a new
    split (texts trained on could land in test), and scoring a run on a file
    whose classes moved scores every column against the wrong label.
    `fix` ends the message: what the caller can do (--overwrite, a new run).

    Raises:
        SplitMismatchError: a source's texts or labels, or the class names, differ from the record (one line naming the file).
    """
    if not split_file.is_file():
        return
    record = json.loads(split_file.read_text(encoding="utf-8"))
    now = splits.record
    hashes = record.get("data_sha256_by_split") or {"train": record.get("data_sha256")}
    for split, recorded in hashes.items():
        current = now["data_sha256_by_split"].get(split)
        if recorded != current:
            source = now["source"].get(split) or record.get("source", {}).get(split, "?")
            what = "is gone" if current is None else "changed (its texts or labels differ)"
            flag = "--text_dir" if split == "train" and storage.isdir(source) else SOURCE_FLAGS[split]
            raise SplitMismatchError(
                f"{flag}={source} {what} since {split_file} was written: the run's split and weights belong to the "
                f"data it recorded; restore that data, or {fix}"
            )
    if record.get("class_names") != now["class_names"]:
        raise SplitMismatchError(
            f"{split_file} records classes {record.get('class_names')}, the data now gives {now['class_names']}; {fix}"
        )


def ordered_classes(names: set[str], order: list[str] | None = None) -> list[str]:
    """`names` in `order` (those it lacks after, sorted), else numerically when all are whole numbers, else sorted."""
    if order:
        return [n for n in order if n in names] + sorted(names - set(order))
    if names and all(re.fullmatch(r"-?\d+", n) for n in names):
        return sorted(names, key=int)
    return sorted(names)


def duplicates_across_splits(splits: TextSplits) -> dict[str, int]:
    """How many distinct texts of validation and of test also occur in train (exact match after stripping)."""
    train = set(splits.texts["train"])
    return {split: len(set(splits.texts[split]) & train) for split in ("validation", "test") if splits.has(split)}


def length_report(lengths: list[int], sequence_length: int) -> dict:
    """Token counts (with [CLS] and [SEP]) of a split: percentiles and how many exceed the sequence length."""
    array = np.asarray(lengths)
    return {
        "texts": int(len(array)), "mean": round(float(array.mean()), 1) if len(array) else 0.0,
        "percentiles": {str(p): int(np.percentile(array, p)) for p in (50, 90, 95, 99, 100)} if len(array) else {},
        "sequence_length": int(sequence_length), "truncated": int(np.sum(array > sequence_length)),
    }


def covering_length(lengths: list[int], limit: int, share: float = 0.99) -> int:
    """The sequence length that holds `share` of the texts whole, capped at the encoder's `limit` (at least 8)."""
    return int(min(limit, max(8, int(np.ceil(np.percentile(np.asarray(lengths), share * 100))))))


def _limit_per_class(indices: np.ndarray, labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    if per_class <= 0:
        return indices
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(indices[labels[indices] == c])[:per_class] for c in np.unique(labels[indices])]
    return np.sort(np.concatenate(kept))


def _check_class_sizes(train_labels: np.ndarray, class_names: list[str], minimum: int) -> None:
    counts = np.bincount(train_labels, minlength=len(class_names))
    small = {name: int(n) for name, n in zip(class_names, counts) if n < minimum}
    if len(class_names) < 2:
        raise ConfigError(f"the text data has {len(class_names)} class {class_names}; a classifier needs at least two")
    if small:
        raise ConfigError(
            f"classes with fewer than {minimum} training texts: {small}; add texts, drop the class, or lower --min_images_per_class"
        )


def _fingerprint(texts: LabelledTexts) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts.texts, texts.labels):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()
