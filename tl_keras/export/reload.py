"""Reloading a classifier of ours to continue training: from a .keras file, a run folder or an export.

Every export carries `assets.extra/model.keras`, because a SavedModel is a
serving graph and cannot be trained further as a Keras model.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from tl_keras.models.backbones import Backbone
from tl_keras.export.saved_model import EXTRA_ASSETS, HUB_MODULES, KERAS_COPY, latest_version_dir
from tl_keras.models.anatomy import SINGLE, anatomy


def classifier_file(path: str | os.PathLike, flag: str = "--init_from") -> Path:
    """The .keras file behind a .keras path, a run folder, an export version or a model folder.

    `flag` is the option the path came from, named in the error.
    """
    path = Path(path)
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


def backbone_of(classifier: keras.Model) -> Backbone:
    """The backbone inside a classifier built by `build_classifier` (found from the graph, see `tl_keras.models.anatomy`).

    Raises:
        ValueError: the model is not a single-backbone classifier of ours
            (a fusion model has several; an ensemble has members).
    """
    parts = anatomy(classifier)
    if parts.kind != SINGLE:
        raise ValueError(
            f"{classifier.name} is a {parts.kind} model, not a single-backbone classifier; it has no one backbone to continue from"
        )
    layer = parts.backbone
    size = int(parts.resizes[0].height) if parts.resizes else 0
    preprocess = parts.preprocessors[0] if parts.preprocessors else None
    return Backbone(
        name=layer.name,
        layer=layer,
        input_size=size,
        preprocessing=preprocess.mode if preprocess is not None else "none",
        owns_input=preprocess is None,
    )
