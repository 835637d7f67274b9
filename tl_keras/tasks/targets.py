"""From the labels a user wrote to the targets a model trains on: which task, which names, which rows are usable.

`--task=auto` decides from the labels themselves and says why: labels that
hold tags joined by `|` or `;` are multi-label; labels that are all numbers
are a regression when some have fractions or there are more distinct
values than a classifier's classes would plausibly be (star ratings 1-5
stay classes; say `--task=regression` to read them as numbers). Rows that
cannot be used (an empty tag set, a value that is not a number, a tag seen
only once) are reported by where they came from and left out.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Sequence

import keras
import numpy as np

from tl_keras.tasks.base import KINDS, MULTI_LABEL, REGRESSION, SINGLE_LABEL, Task, head_of
from tl_keras.tasks.multi_label import MultiLabel
from tl_keras.tasks.regression import Regression
from tl_keras.tasks.single_label import SingleLabel

TASKS: dict[str, Task] = {task.kind: task for task in (SingleLabel(), MultiLabel(), Regression())}
_BY_ACTIVATION = {task.activation: task for task in TASKS.values()}
TASK_CHOICES = ("auto", *KINDS)
SEPARATORS = ("|", ";")
# More distinct whole numbers than this read as a quantity (counts, years, scores), fewer as class ids.
MAX_NUMERIC_CLASSES = 20
MIN_TAG_EXAMPLES = 2  # a tag seen once in training cannot be both learned and checked


def task_named(kind: str) -> Task:
    if kind not in TASKS:
        raise ValueError(f"task={kind!r}: use one of {', '.join(TASK_CHOICES)}")
    return TASKS[kind]


def task_of(model: keras.Model) -> Task:
    """The task a model was built for, read from its head's activation (a model without a Dense head, such as an
    averaged ensemble, is single-label)."""
    return task_of_head(head_of(model))


def task_of_head(head: keras.layers.Layer | None) -> Task:
    """The task a head's activation says (softmax, sigmoid, linear); single-label for anything else."""
    return _BY_ACTIVATION.get(getattr(getattr(head, "activation", None), "__name__", "softmax"), TASKS[SINGLE_LABEL])


@dataclasses.dataclass
class TargetSpec:
    """What a run's targets are: the task, the names of the outputs (classes, tags, or the value), how tags are joined,
    the training split's mean and spread of a value, and the tags' decision thresholds once chosen."""

    kind: str
    names: list[str]
    separator: str = ""
    mean: float = 0.0
    std: float = 1.0
    thresholds: list[float] | None = None
    decided: str = ""  # why --task=auto chose the kind, for the log

    @property
    def task(self) -> Task:
        return TASKS[self.kind]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, record: dict | None, class_names: Sequence[str] = ()) -> "TargetSpec":
        """A recorded spec; a record written before tasks existed is single-label over `class_names`."""
        if not record:
            return cls(SINGLE_LABEL, list(class_names))
        return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls) if f.name in record})

    def encode(self, raw: Sequence[str], where: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(targets of the usable rows, their positions in `raw`, one problem line per row left out) under this spec."""
        if self.kind == SINGLE_LABEL:
            index = {name: i for i, name in enumerate(self.names)}
            return np.array([index[r] for r in raw], np.int64), np.arange(len(raw)), []
        if self.kind == REGRESSION:
            return _numbers(raw, where)
        return _tag_rows(raw, where, self.separator, self.names)

    def training_targets(self, targets: np.ndarray) -> np.ndarray:
        """What `fit` sees: class ids as int32, tag rows as float32, a value standardised by the training split's mean and spread."""
        if self.kind == SINGLE_LABEL:
            return np.asarray(targets, np.int32)
        if self.kind == REGRESSION:
            return ((np.asarray(targets, np.float64) - self.mean) / self.std).astype(np.float32)
        return np.asarray(targets, np.float32)

    def user_targets(self, trained: np.ndarray) -> np.ndarray:
        """`training_targets` undone: a standardised value back in the user's units; class ids and tag rows as they are."""
        if self.kind == REGRESSION:
            return np.asarray(trained, np.float64).reshape(-1) * self.std + self.mean
        return np.asarray(trained)

    def describe(self) -> str:
        if self.kind == REGRESSION:
            return f"regression of {self.names[0]} (training mean {self.mean:.4g}, standard deviation {self.std:.4g})"
        if self.kind == MULTI_LABEL:
            return f"multi-label over {len(self.names)} tags"
        return f"single-label over {len(self.names)} classes"


def decide_task(raw: Sequence[str], requested: str = "auto") -> tuple[str, str, str]:
    """(kind, separator, why) for labels as written; `requested` other than auto is taken as given."""
    separator = next((s for s in SEPARATORS if any(s in label for label in raw)), "")
    if requested != "auto":
        task_named(requested)
        if requested == MULTI_LABEL and not separator:
            separator = "|"
        return requested, separator if requested == MULTI_LABEL else "", f"--task={requested}"
    if separator:
        example = next(label for label in raw if separator in label)
        return MULTI_LABEL, separator, f"labels hold tags joined by {separator!r} (e.g. {example[:60]!r})"
    numbers = [_number(label) for label in raw]
    if raw and all(n is not None for n in numbers):
        fractional = next((label for label, n in zip(raw, numbers) if not float(n).is_integer()), None)
        if fractional is not None:
            return REGRESSION, "", f"every label is a number, some with a fraction (e.g. {fractional!r})"
        distinct = len(set(numbers))
        if distinct > MAX_NUMERIC_CLASSES:
            return REGRESSION, "", f"every label is a whole number, with {distinct} distinct values (more than {MAX_NUMERIC_CLASSES})"
    return SINGLE_LABEL, "", ""


def spec_for_training(raw: Sequence[str], where: Sequence[str], requested: str = "auto",
                      class_order: Sequence[str] | None = None) -> tuple[TargetSpec, np.ndarray, np.ndarray, list[str]]:
    """The spec the training labels call for, and (targets, positions kept, problems) of those labels under it.

    Single-label names are left to the caller's class order (it has rules of
    its own); tags are sorted, or in `class_order`; a tag seen fewer than
    `MIN_TAG_EXAMPLES` times is dropped from its rows, each reported.
    """
    kind, separator, why = decide_task(raw, requested)
    if kind == SINGLE_LABEL:
        return TargetSpec(SINGLE_LABEL, [], decided=why), np.zeros(0), np.arange(len(raw)), []
    if kind == REGRESSION:
        values, kept, problems = _numbers(raw, where)
        if not len(values):
            raise ValueError(f"{where[0] if where else 'the labels'}: no label is a number; a regression needs numeric targets")
        return TargetSpec(REGRESSION, ["value"], decided=why), values, kept, problems
    sets = [_tags(label, separator) for label in raw]
    seen: dict[str, int] = {}
    for tags in sets:
        for tag in tags:
            seen[tag] = seen.get(tag, 0) + 1
    rare = {tag for tag, n in seen.items() if n < MIN_TAG_EXAMPLES}
    order = list(class_order or [])
    names = [t for t in order if t in seen and t not in rare] + sorted(t for t in seen if t not in rare and t not in order)
    problems = [f"{where[i]}: tag {tag!r} occurs only once in the training data; dropped from this row"
                for i, tags in enumerate(sets) for tag in tags if tag in rare]
    targets, kept, more = _tag_rows(raw, where, separator, names, rare)
    if not names:
        raise ValueError(f"{where[0] if where else 'the labels'}: no tag occurs twice; a multi-label model has nothing to learn")
    return TargetSpec(MULTI_LABEL, names, separator=separator, decided=why), targets, kept, problems + more


def with_scale(spec: TargetSpec, training_values: np.ndarray) -> TargetSpec:
    """A regression spec standardising by the training split's values (a constant target gets a spread of 1)."""
    if spec.kind != REGRESSION:
        return spec
    values = np.asarray(training_values, np.float64)
    spread = float(values.std()) if len(values) > 1 else 0.0
    return dataclasses.replace(spec, mean=float(values.mean()), std=spread if spread > 0 else 1.0)


def _number(label: str) -> float | None:
    try:
        value = float(label)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _numbers(raw, where) -> tuple[np.ndarray, np.ndarray, list[str]]:
    values, kept, problems = [], [], []
    for i, label in enumerate(raw):
        value = _number(label)
        if value is None:
            problems.append(f"{where[i]}: the value {label!r} is not a finite number; skipped")
        else:
            values.append(value)
            kept.append(i)
    return np.array(values, np.float64), np.array(kept, np.int64), problems


def _tags(label: str, separator: str) -> list[str]:
    parts = re.split(re.escape(separator), label) if separator else [label]
    return list(dict.fromkeys(p.strip() for p in parts if p.strip()))


def _tag_rows(raw, where, separator: str, names: Sequence[str], rare: set[str] = frozenset()) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rows of 0/1 over `names`; a row whose tags are all unknown (or rare) is left out and reported, an unknown tag beside known ones
    is reported and dropped."""
    index = {name: j for j, name in enumerate(names)}
    rows, kept, problems = [], [], []
    for i, label in enumerate(raw):
        tags = _tags(label, separator)
        unknown = [t for t in tags if t not in index and t not in rare]
        if unknown:
            problems.append(f"{where[i]}: tags {unknown} never occur (twice) in the training data; dropped from this row")
        known = [index[t] for t in tags if t in index]
        if not known:
            problems.append(f"{where[i]}: no usable tag (the tag set is empty once unknown tags are dropped); skipped")
            continue
        row = np.zeros(len(names), np.float32)
        row[known] = 1.0
        rows.append(row)
        kept.append(i)
    return (np.stack(rows) if rows else np.zeros((0, len(names)), np.float32)), np.array(kept, np.int64), problems
