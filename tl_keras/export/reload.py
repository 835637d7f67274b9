"""Reloading a classifier of ours to continue training: from a .keras file, a run folder or an export.

Every export carries `assets.extra/model.keras`, because a SavedModel is a
serving graph and cannot be trained further as a Keras model.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from tl_keras.io.mirror import local_copy
from tl_keras.export.saved_model import EXTRA_ASSETS, HUB_MODULES, KERAS_COPY, latest_version_dir


def classifier_file(path: str | os.PathLike, flag: str = "--init_from") -> Path:
    """The .keras file behind a .keras path, a run folder, an export version or a model folder.

    `flag` is the option the path came from, named in the error.
    """
    path = Path(local_copy(str(path), refresh=True))  # a run or export on a store: its latest state, read locally
    if path.is_file() and path.suffix == ".keras":
        return path
    if (path / "model.keras").is_file():
        return path / "model.keras"
    if path.is_dir():
        try:
            version = latest_version_dir(path)
        except ValueError:
            version = None
        if version is not None and (version / EXTRA_ASSETS / KERAS_COPY).is_file():
            return version / EXTRA_ASSETS / KERAS_COPY
    raise ValueError(f"{flag}: no classifier at {str(path)!r}; pass a .keras file, a run folder with model.keras, or an export folder")


def load_classifier(path: str | os.PathLike, flag: str = "--init_from") -> keras.Model:
    """Loads a saved classifier in Keras safe mode (no pickled code); errors name `flag`.

    The Keras copy inside an export finds the Hub modules the export carries
    when their original handles are not on this machine.
    """
    from tl_keras.models.hub_layer import module_search_path

    file = classifier_file(path, flag)
    with module_search_path(file.parent / HUB_MODULES):
        # Not compiled: every caller predicts or recompiles, and restoring the saved optimizer only warns that its
        # variables do not match the layer-wise optimizer's.
        return keras.models.load_model(file, safe_mode=True, compile=False)
