"""One source of truth for a model's classes, and folder labels mapped onto them by name.

A folder of evaluation images labels its examples by the position of their
class in *its own* sorted sub-folders. A model predicts positions in the
class list it was trained on. The two agree only by luck: a missing or empty
class folder, an extra one, or another spelling shifts every label and
gives silently wrong metrics. Everything that scores a folder
against a model maps labels through `align`, by class name, never by
position.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tl_keras.io.run_folder import RunFolder
from tl_keras.export.signatures import LABELS_FILE


class ClassMismatchError(ValueError):
    """Evaluation data holds classes the model cannot predict, or the model's classes are unknown."""


def model_classes(path: str | os.PathLike) -> list[str] | None:
    """The classes a saved classifier predicts, in output order; None when nothing beside it says.

    Looks at, in order: an export's `assets.extra/labels.txt` (a model folder
    means its latest version), a run folder's `summary.json` then
    `split.json`, and a `labels.txt` beside a `.keras` file or in its folder.
    """
    from tl_keras.export.saved_model import EXTRA_ASSETS, latest_version_dir, read_labels_file

    path = Path(path)
    folder = path.parent if path.is_file() or path.suffix == ".keras" else path
    candidates = [folder]
    if folder.name == EXTRA_ASSETS:  # the Keras copy inside an export
        candidates.append(folder.parent)
    if path.is_dir():
        try:
            candidates.append(latest_version_dir(path))
        except ValueError:
            pass
    for place in candidates:
        for labels in (place / EXTRA_ASSETS / LABELS_FILE, place / LABELS_FILE):
            if labels.is_file():
                return read_labels_file(labels)
        names = RunFolder(place).class_names()
        if names:
            return names
    return None


def align(model_names: list[str], data_names: list[str], *, data: str = "the data") -> np.ndarray:
    """`mapping[i]` = the model's output index for the data's class `i`, matched by name.

    Model classes that the data lacks are allowed (they just have no
    examples); data classes the model lacks are refused, since no
    prediction could ever be right for them.

    Raises:
        ClassMismatchError: naming the data's classes the model does not have.
    """
    index = {name: i for i, name in enumerate(model_names)}
    unknown = [name for name in data_names if name not in index]
    if unknown:
        raise ClassMismatchError(
            f"{data} has classes the model does not predict: {', '.join(unknown)} (the model's classes: {', '.join(model_names)}); "
            "remove those folders or evaluate a model trained on them"
        )
    return np.array([index[name] for name in data_names], dtype=np.int64)


def absent_classes(model_names: list[str], data_names: list[str]) -> list[str]:
    """The model's classes with no folder in the data (reported, not refused)."""
    present = set(data_names)
    return [name for name in model_names if name not in present]


def classes_or_error(path: str | os.PathLike, flag: str) -> list[str]:
    """`model_classes(path)`, or a clear error naming `flag` when nothing records them."""
    names = model_classes(path)
    if not names:
        raise ClassMismatchError(
            f"{flag}: cannot tell which classes {path} predicts (no labels.txt, summary.json or split.json beside it); "
            "pass its run folder or export folder, or write labels.txt (one class per line, in output order) beside the file"
        )
    return names


def require_same_classes(path: str | os.PathLike, data_names: list[str], flag: str) -> None:
    """Refuses a model (--init_from, --teacher) whose outputs are not the data's classes in the data's order.

    Equal counts are not enough: a 5-class flower model would otherwise
    continue or teach on any 5-class folder, and a model with the same
    classes in another order from a permuted head.

    Raises:
        ClassMismatchError: naming both lists.
    """
    model_names = classes_or_error(path, flag)
    if list(model_names) != list(data_names):
        raise ClassMismatchError(
            f"{flag}: {path} predicts [{', '.join(model_names)}] but the data's classes are [{', '.join(data_names)}]; "
            "they must be the same classes in the same order"
        )
