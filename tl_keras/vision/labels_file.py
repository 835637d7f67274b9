"""Images named in a labels file: tags or numbers per photo, where a class-per-folder tree cannot say them.

`--labels_file=labels.csv` beside `--image_dir`: a CSV with a header whose
first column names the file (relative to the image folder) and whose
second holds its label: tags joined by `|` or `;` (multi-label), a number
(regression), or one class name. `--task=auto` decides which from the
labels and says why. Rows naming a file that is not there, an empty tag
set or a value that is not a number are reported by file and line and left
out; images in the folder the file does not name are counted in one line.
The split is the task's (iterative stratification of tag sets, quantile
bins of values), recorded in split.json and reused by a rerun.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
from absl import logging

from tl_keras.config.settings import ConfigError
from tl_keras.io import storage
from tl_keras.data.labelled_table import read_labelled_table
from tl_keras.data.splits import DataSplits, recorded_split, split_settings, splits_by_index, write_split
from tl_keras.tasks import SINGLE_LABEL, TargetSpec, spec_for_training, with_scale
from tl_keras.vision.folders import IMAGE_EXTENSIONS
from tl_keras.vision.pipeline import IndexedSplit

FILE_COLUMNS = ("filename", "file", "image", "path", "file_name", "image_path")
LABEL_COLUMNS = ("labels", "label", "tags", "value", "target", "class", "count", "score")


@dataclasses.dataclass
class LabelledImages:
    """What a labels file says: the image paths (in file order), their labels as written, where each row is, and problems."""

    paths: list[str]
    labels: list[str]
    where: list[str]
    problems: list[str]


def read_labels_file(labels_file: str | Path, image_dir: str | Path) -> LabelledImages:
    """The rows of `labels_file` whose image exists under `image_dir`.

    Raises:
        ConfigError: no such file, no header naming a file column and a label column, or no usable row.
    """
    labels_file, image_dir = storage.normal(labels_file), storage.normal(image_dir)
    if not storage.isfile(labels_file):
        raise ConfigError(f"--labels_file={labels_file}: file not found")
    table = read_labelled_table(labels_file, "--labels_file", FILE_COLUMNS, LABEL_COLUMNS, file_noun="file",
                                example="filename,labels")
    present = set(storage.files_under(image_dir))  # one listing, not a stat per row (a round trip each on an object store)
    found = LabelledImages([], [], [], [])
    seen: set[str] = set()
    for row in table.rows:
        where, name = row.where, row.file
        path = storage.join(image_dir, name) if name else ""
        if row.problem:
            found.problems.append(row.problem)
        elif name in seen:
            found.problems.append(f"{where}: {name} is labelled twice; this row skipped")
        elif path not in present:
            found.problems.append(f"{where}: no image {path}; skipped")
        elif not row.label:
            found.problems.append(f"{where}: empty label; skipped")
        else:
            seen.add(name)
            found.paths.append(path)
            found.labels.append(row.label)
            found.where.append(where)
    named = set(found.paths)
    unlabelled = [p for p in sorted(present) if storage.suffix_of(p).lower() in IMAGE_EXTENSIONS and p not in named]
    if unlabelled:
        found.problems.append(f"{image_dir}: {len(unlabelled)} images the labels file does not name are not used, e.g. {unlabelled[0]}")
    if not found.paths:
        raise ConfigError(f"--labels_file={labels_file}: no row names an image under --image_dir={image_dir}")
    return found


def load_labelled_images(
    image_dir: str, labels_file: str, *, task: str = "auto", validation_fraction: float = 0.2, test_fraction: float = 0.1,
    seed: int = 42, split_file: Path | None = None, check: bool = True, progress=None,
) -> tuple[DataSplits, TargetSpec]:
    """The images a labels file names, split by the task's rule; (splits whose labels are the training targets, the spec).

    (Nine parameters: the sources and the split's settings, each a flag of its own.)

    Raises:
        ConfigError: a bad labels file, a single-label file (use class folders), nothing left to learn.
        SplitMismatchError: `split_file` was made with other settings.
    """
    found = read_labels_file(labels_file, image_dir)
    try:
        spec, targets, kept, problems = spec_for_training(found.labels, found.where, task)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if spec.kind == SINGLE_LABEL:
        raise ConfigError(f"--labels_file={labels_file}: its labels are one class per image ({spec.decided or 'no tags, no numbers'}); "
                          "put the images in one folder per class instead, or pass --task=multi_label or --task=regression")
    logging.info("labels file: %s: %s", spec.kind.replace("_", "-"), spec.decided)
    paths = [found.paths[i] for i in kept]
    sizes = None
    if check:
        paths, targets, sizes, more = _decodable(paths, targets, progress)
        problems += more
    for problem in (found.problems + problems)[:20]:
        logging.warning("labels file: %s", problem)
    if len(found.problems + problems) > 20:
        logging.warning("labels file: %d more problems", len(found.problems + problems) - 20)
    # The labels file's content is part of what the split stands for: a rerun or --resume on edited labels is refused by name.
    settings = {**split_settings(f"labels_file:{labels_file}:{image_dir}", seed, validation_fraction, test_fraction, None),
                "labels_sha256": hashlib.sha256(storage.read_bytes(labels_file)).hexdigest()}
    parts = recorded_split(split_file, settings, spec.names, paths)
    if parts is None:
        parts = spec.task.split(targets, validation_fraction, test_fraction, seed)
    spec = with_scale(spec, targets[parts["train"]])
    record = {**settings, "class_names": spec.names, **{k: np.array(paths)[idx].tolist() for k, idx in parts.items()},
              "task": {k: v for k, v in spec.to_dict().items() if k != "thresholds"}}
    if split_file is not None and not split_file.is_file():
        write_split(split_file, record)
    indexed = IndexedSplit.from_files(paths, spec.training_targets(targets), checked=check, sizes=sizes)
    splits = splits_by_index(indexed, parts, spec.names, record, test_carved=True)
    splits.counts = {k: spec.task.counts(targets[idx], spec.names) for k, idx in parts.items() if len(idx)}
    splits.train_labels = None  # per-class balancing has no meaning for tags or values
    splits.target = spec
    return splits, spec


def _decodable(paths: list[str], targets: np.ndarray, progress):
    """The images that decode (each decoded once, `datacheck`), their targets and sizes, and a problem line per one that does not."""
    from tl_keras.vision import datacheck

    report = datacheck.check_files(paths, [0] * len(paths), ["labelled"], progress=progress)
    good = [i for i, c in enumerate(report.checks) if c.ok]
    problems = [f"{c.path}: {c.reason or 'unreadable'}; skipped" for c in report.checks if not c.ok]
    sizes = [report.checks[i].size for i in good]
    return [paths[i] for i in good], targets[good], (sizes if all(sizes) else None), problems
