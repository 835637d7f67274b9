"""Source: a folder with one sub-folder of images per class (optionally a second tree for validation)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from absl import logging

from tl_keras.config.settings import DataSettings
from tl_keras.io import storage
from tl_keras.vision.pipeline import IndexedSplit
from tl_keras.data.splits import (
    DataSplits, recorded_split, split_folders_inside, split_settings, splits_by_index, stratified_split, write_split,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


@dataclasses.dataclass
class FolderScan:
    """A class-per-folder tree as found on disk, before any file is opened."""

    class_names: list[str]
    paths: list[str]
    labels: np.ndarray
    empty_class_folders: list[str]
    ignored_files: list[str]


def scan_image_folder(image_dir: str | os.PathLike, flag: str = "--image_dir") -> FolderScan:
    """Finds class folders (sorted) and their image files, matched by extension.

    Hidden files and folders are ignored, and so are files with other
    extensions (both listed). A class folder with no image files at all is
    left out of the classes and listed: it is usually a leftover, and
    training on the others is what the user wants.

    Raises:
        ValueError: the folder is missing or has fewer than two classes with images.
    """
    root = storage.normal(image_dir)
    if not storage.isdir(root):
        raise ValueError(f"{flag}: folder not found: {root!r}")
    layout = split_folders_inside(root, flag, "--image_dir", {"validation": "--validation_dir"},
                                  unused="experiments/evaluate.py --model=runs/NAME --image_dir={folder} scores {folder}")
    if layout:
        raise ValueError(layout)
    entries = storage.listdir(root)
    class_dirs = [storage.join(root, name) for name in entries if not name.startswith(".") and storage.isdir(storage.join(root, name))]
    class_names, paths, labels, empty, ignored = [], [], [], [], []
    for class_dir in class_dirs:
        files = []
        for path in sorted(storage.files_under(class_dir), key=lambda p: storage.relative_parts(p, root)):  # as pathlib sorts
            hidden = any(part.startswith(".") for part in storage.relative_parts(path, root))
            if hidden or storage.suffix_of(path).lower() not in IMAGE_EXTENSIONS:
                ignored.append(path)
            else:
                files.append(path)
        if not files:
            empty.append(class_dir)
            logging.warning("class folder %s has no images (%s); leaving it out", class_dir, ", ".join(IMAGE_EXTENSIONS))
            continue
        paths.extend(files)
        labels.extend([len(class_names)] * len(files))
        class_names.append(storage.name_of(class_dir))
    if len(class_names) < 2:
        loose = sum(1 for name in entries if storage.suffix_of(name).lower() in IMAGE_EXTENSIONS
                    and storage.isfile(storage.join(root, name)))
        raise ValueError(
            f"{flag}: {root} has {len(class_names)} class folder(s) with images; need at least 2, one sub-folder of images per class"
            + (f" (empty: {', '.join(empty)})" if empty else "")
            + (f"; the {loose} image{'s' if loose > 1 else ''} directly in it belong{'' if loose > 1 else 's'} in a sub-folder named "
               "after the class" if loose else "")
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
    min_images_per_class: int = DataSettings.min_images_per_class,
    report_file: Path | None = None,
    progress=None,
    validation_dir: str | os.PathLike | None = None,
) -> DataSplits:
    """Loads a class-per-folder tree with a stratified, seeded split.

    (Ten parameters: the folders, the split's settings and the data check's
    outputs, each a flag of its own.)

    With `check`, every file is decoded once first (`datacheck`): unreadable
    files are dropped before the split and listed in `report_file`. When
    `split_file` holds a split made with the same settings (a rerun), its
    file lists are used as they are, so the test set never leaks into
    training between runs; one made with other settings is refused by name.

    With `validation_dir` (a second tree with the same class folders, as
    many datasets ship), all of `image_dir` trains and `validation_dir` is
    split into validation and a `test_fraction` share of test;
    `validation_fraction` is then unused.

    Raises:
        ValueError: a class has fewer than `min_images_per_class` usable images,
            or the two trees hold different classes.
        SplitMismatchError: `split_file` was made with other settings.
    """
    scan, held_out = _scan_trees(image_dir, validation_dir)
    class_names, paths, labels = scan.class_names, scan.paths, scan.labels
    report, sizes = None, None
    if check:
        report, paths, labels, sizes, held_out = _checked(scan, held_out, progress)
    _require_enough(class_names, labels, image_dir, min_images_per_class, report_file)
    settings = split_settings(f"image_dir:{image_dir}", seed, 0.0 if validation_dir else validation_fraction, test_fraction, validation_dir)
    parts = recorded_split(split_file, settings, class_names, paths)
    if parts is None:
        parts = _new_split(labels, held_out, validation_fraction, test_fraction, seed, bool(validation_dir))
    paths_array = np.array(paths)
    record = {**settings, "class_names": class_names, **{k: paths_array[idx].tolist() for k, idx in parts.items()}}
    if split_file is not None and not split_file.is_file():
        write_split(split_file, record)
    if report is not None and report_file is not None:
        _write_report(report, record, report_file)
    return splits_by_index(IndexedSplit.from_files(paths, labels, checked=check, sizes=sizes), parts, class_names, record,
                           test_carved=True)


def _scan_trees(image_dir, validation_dir) -> tuple["FolderScan", np.ndarray]:
    """The scan of `image_dir` (and `validation_dir` after it, the same classes required) and which files the second tree holds."""
    scan = scan_image_folder(image_dir)
    held_out = np.zeros(len(scan.paths), dtype=bool)
    if not validation_dir:
        return scan, held_out
    held = scan_image_folder(validation_dir, flag="--validation_dir")
    if held.class_names != scan.class_names:
        raise ValueError(
            f"--validation_dir {validation_dir} has class folders {held.class_names} but --image_dir {image_dir} has {scan.class_names}; "
            "both trees need the same class folders"
        )
    joined = dataclasses.replace(
        scan, paths=[*scan.paths, *held.paths], labels=np.concatenate([scan.labels, held.labels]),
        empty_class_folders=[*scan.empty_class_folders, *held.empty_class_folders],
        ignored_files=[*scan.ignored_files, *held.ignored_files],
    )
    return joined, np.concatenate([held_out, np.ones(len(held.paths), dtype=bool)])


def _checked(scan, held_out: np.ndarray, progress):
    """Every file decoded once (`datacheck`): (the report, usable paths, their labels, their sizes or None, which are held out)."""
    from tl_keras.vision import datacheck

    report = datacheck.check_files(scan.paths, scan.labels, scan.class_names, progress=progress)
    report.empty_class_folders = scan.empty_class_folders
    report.ignored_files = scan.ignored_files
    usable = [c for c in report.checks if c.ok]
    held_paths = {p for p, h in zip(scan.paths, held_out) if h}
    paths = [c.path for c in usable]
    labels = np.array([c.label for c in usable], dtype=np.int32)
    sizes = [c.size for c in usable] if all(c.size for c in usable) else None
    turned = [c.path for c in usable if datacheck.ROTATED in c.notes]
    if turned:
        logging.info("%d photo(s) carry an EXIF orientation (e.g. %s): trained, evaluated and served turned upright, as viewers show "
                     "them", len(turned), turned[0])
    return report, paths, labels, sizes, np.array([p in held_paths for p in paths], dtype=bool)


def _require_enough(class_names, labels: np.ndarray, image_dir, min_images_per_class: int, report_file) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    for name, count in zip(class_names, counts):
        if count < max(1, min_images_per_class):
            raise ValueError(
                f"class folder {storage.join(image_dir, name)} has {count} usable image(s); need at least {max(1, min_images_per_class)} "
                "(--min_images_per_class); add images or remove the folder" + (f" (see {report_file})" if report_file else "")
            )


def _new_split(labels, held_out, validation_fraction: float, test_fraction: float, seed: int, second_tree: bool) -> dict:
    """Stratified and seeded; with a second tree, all of the first trains and the second gives validation and test."""
    if not second_tree:
        return stratified_split(labels, validation_fraction, test_fraction, seed)
    held_index = np.flatnonzero(held_out)
    held_parts = stratified_split(labels[held_index], 0.0, test_fraction, seed)
    return {"train": np.flatnonzero(~held_out), "validation": held_index[held_parts["train"]], "test": held_index[held_parts["test"]]}


def _write_report(report, record: dict, report_file: Path) -> None:
    """data_report.json, with each file's split; byte-identical images in two splits are also warned about in the log."""
    split_of = {p: k for k in ("train", "validation", "test") for p in record[k]}
    report.write(report_file, split_of)
    skipped = report.skipped()
    if skipped:
        logging.warning(
            "%d of %d files skipped (%s; e.g. %s): %s lists them", sum(map(len, skipped.values())), len(report.checks),
            ", ".join(f"{len(paths)} {reason.replace('_', ' ')}" for reason, paths in skipped.items()),
            next(iter(skipped.values()))[0], report_file,
        )
    leaks = [group for group in report.duplicates(split_of) if group["across_splits"]]
    if leaks:
        logging.warning(
            "%d group(s) of byte-identical images sit in more than one split (e.g. %s): the held-out score counts them as "
            "unseen; remove the copies (see %s)", len(leaks), " = ".join(leaks[0]["paths"][:2]), report_file,
        )
