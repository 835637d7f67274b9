"""SavedModel export in the layout TF Serving polls: <export_dir>/<name>/<version>/.

A version is written into a hidden temporary folder beside the versions and
renamed into place only when complete, so a server polling the folder never
loads a half-written model; a failed export leaves nothing behind. Versions
are integers that only increase.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

SERVING_SIGNATURE = "serving_default"
PIXELS_INPUT = "images"
PROBABILITIES = "probabilities"
EXTRA_ASSETS = "assets.extra"
LABELS_FILE = "labels.txt"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def validate_model_name(name: str) -> str:
    """Refuses names that could escape the export folder or confuse TF Serving."""
    if not name or not _NAME_RE.match(name) or ".." in name:
        raise ValueError(
            f"invalid model name {name!r}: use letters, digits, '_', '-' and '.', "
            "no path separators, no '..', not starting with '.' (flag --name)"
        )
    return name


def existing_versions(model_dir: str | os.PathLike) -> list[int]:
    """The integer version folders TF Serving would see, ascending."""
    path = Path(model_dir)
    if not path.is_dir():
        return []
    return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir: str | os.PathLike) -> int:
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    name: str,
    class_names: Sequence[str],
    *,
    version: int | None = None,
    metadata: dict | None = None,
) -> Path:
    """Exports `model` as `<export_dir>/<name>/<version>/`, atomically.

    The `serving_default` signature takes `images`: a uint8 batch
    [N, H, W, 3] of any size, and returns `probabilities` [N, C] in float32.
    `assets.extra/labels.txt` lists the class names in output order, and
    `assets.extra/model_card.json` holds `metadata`.

    Args:
        model: a classifier from `build_classifier`.
        export_dir: root of the layout (e.g. "saved_models").
        name: model name; validated.
        class_names: one per output unit, in order.
        version: force a version number; an existing one is refused.
        metadata: JSON-serialisable facts to store beside the model.

    Returns:
        The final version folder.
    """
    validate_model_name(name)
    num_outputs = int(model.outputs[0].shape[-1])
    if len(class_names) != num_outputs:
        raise ValueError(f"{len(class_names)} class names for a model with {num_outputs} outputs")
    model_dir = Path(export_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    if version is None:
        version = next_version(model_dir)
    elif version < 1:
        raise ValueError(f"--version must be a positive integer, got {version}")
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} already exists; versions are never overwritten (leave --version unset for the next one)")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.partial-", dir=model_dir))
    try:
        _write_saved_model(model, staging)
        extra = staging / EXTRA_ASSETS
        extra.mkdir()
        (extra / LABELS_FILE).write_text("".join(f"{c}\n" for c in class_names))
        card = {"class_names": list(class_names), "version": version, **(metadata or {})}
        (extra / "model_card.json").write_text(json.dumps(card, indent=2, default=str))
        # rename(2) is atomic on one filesystem; a racing exporter that took
        # the same number makes this fail instead of mixing two models.
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final


def _write_saved_model(model: keras.Model, path: Path) -> None:
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve_pixels(images):
        return {PROBABILITIES: model(images, training=False)}

    archive.add_endpoint(
        SERVING_SIGNATURE,
        serve_pixels,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=PIXELS_INPUT)],
    )
    archive.write_out(str(path), verbose=False)


def read_labels(version_dir: str | os.PathLike) -> list[str]:
    """Class names of an export, in output order."""
    return Path(version_dir, EXTRA_ASSETS, LABELS_FILE).read_text().splitlines()
