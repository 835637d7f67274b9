"""Reloading a classifier of ours to continue training: from a .keras file, a run folder or an export.

Every export carries `assets.extra/model.keras`, because a SavedModel is a
serving graph and cannot be trained further as a Keras model.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from tl_keras.backbones import Backbone
from tl_keras.export import EXTRA_ASSETS, KERAS_COPY, latest_version_dir
from tl_keras.layers import ImagePreprocessing


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
    """Loads a saved classifier in Keras safe mode (no pickled code); errors name `flag`."""
    return keras.models.load_model(classifier_file(path, flag), safe_mode=True)


def backbone_of(classifier: keras.Model) -> Backbone:
    """The backbone inside a classifier built by `build_classifier`.

    It is the layer just before the global pooling (or the dropout when the
    backbone already pools).
    """
    names = [layer.name for layer in classifier.layers]
    if "dropout" not in names:
        raise ValueError(f"{classifier.name} was not built by build_classifier (no 'dropout' layer); layers: {names}")
    index = names.index("dropout") - 1
    if names[index] == "pool":
        index -= 1
    layer = classifier.layers[index]
    try:
        resize = classifier.get_layer("resize")
        size = int(resize.height)
    except ValueError:
        size = 0
    preprocess = next((l for l in classifier.layers if isinstance(l, ImagePreprocessing)), None)
    return Backbone(
        name=layer.name,
        layer=layer,
        input_size=size,
        preprocessing=preprocess.mode if preprocess is not None else "none",
        owns_input=preprocess is None,
    )
