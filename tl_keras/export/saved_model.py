"""SavedModel export in the layout TF Serving polls: <export_dir>/<name>/<version>/, for any modality.

A version is written into a hidden temporary folder beside the versions and
renamed into place only when complete, so a server polling the folder never
loads a half-written model; a failed export leaves nothing behind. Versions
are integers that only increase. Each modality writes its own signatures into
the folder: images in `tl_keras.vision.serving`, texts in `tl_keras.text.export`.
"""

from __future__ import annotations

import contextlib

import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from tl_keras.io import atomic, storage
from tl_keras.models.anatomy import anatomy
from tl_keras.config.settings import check_model_name
from tl_keras.export.signatures import (  # noqa: F401 - the export's contract, re-exported for its callers
    BYTES_INPUT, CLASSES, EXTRA_ASSETS, HUB_MODULES, KERAS_COPY, LABELS_FILE, MODEL_CARD, PIXELS_INPUT, PIXELS_SIGNATURE,
    PROBABILITIES, SCORES, SERVING_SIGNATURE, TTA_SIGNATURE, WARMUP_FILE,
)

DEFAULT_TOP_K = 5



def validate_model_name(name: str) -> str:
    """Refuses names that could escape the export folder or confuse TF Serving (settings.check_model_name)."""
    return check_model_name(name)


def existing_versions(model_dir: str | os.PathLike) -> list[int]:
    """The integer version folders TF Serving would see, ascending (on any filesystem, `io.storage`)."""
    if not storage.isdir(model_dir):
        return []
    return sorted(int(name) for name in storage.listdir(model_dir) if name.isdigit() and storage.isdir(storage.join(model_dir, name)))


# Highest version ever issued under a model folder: a deleted version's number is never given again
# (a server or a client cache that saw version 3 must not meet a different model called 3).
_LAST_VERSION_FILE = ".last_version"


def next_version(model_dir: str | os.PathLike) -> int:
    versions = existing_versions(model_dir)
    return max(versions[-1] if versions else 0, _last_issued(model_dir)) + 1


def _last_issued(model_dir: str | os.PathLike) -> int:
    issued = storage.join(model_dir, _LAST_VERSION_FILE)
    return int(storage.read_text(issued).strip() or 0) if storage.isfile(issued) else 0


def _record_issued(model_dir: str | os.PathLike, version: int) -> None:
    storage.write_bytes(storage.join(model_dir, _LAST_VERSION_FILE), f"{max(_last_issued(model_dir), version)}\n".encode())


def remove_abandoned_staging(model_dir: str | os.PathLike) -> list[Path]:
    """Deletes staging folders left by exports that were killed (their process is gone); returns them.

    A staging folder is named `.<version>.partial-<pid>-<random>`; one whose
    process still runs belongs to a concurrent export and is left alone.
    """
    removed = []
    for staging in Path(model_dir).glob(".*.partial-*"):
        try:
            pid = int(staging.name.split(".partial-", 1)[1].split("-", 1)[0])
        except ValueError:
            continue
        if not _process_alive(pid):
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# Every model card has these keys, in this order, whoever exported it (a run, the export or distillation script,
# an ensemble); None where the exporter did not know. Anything else an exporter records goes under "provenance".
CARD_FIELDS = (
    "modality", "model_kind", "backbone", "weights", "input_size", "preprocessing", "metrics", "calibration", "config",
    "config_fingerprint",
    "provenance", "versions",
)


@contextlib.contextmanager
def versioned_folder(export_dir: str | os.PathLike, name: str, version: int | None = None):
    """Yields (staging folder, version, final folder) for one export of any modality; the staging folder becomes
    `<export_dir>/<name>/<version>` on success.

    Locally the staging folder is a hidden one beside the versions (a dot
    name TF Serving ignores) and rename(2) puts it in place atomically, so a
    server sees the whole version or none of it, and a racing exporter that
    took the same number fails instead of mixing two models. On an object
    store, where a folder's rename is a copy of each object, the version is
    written in a local staging folder and copied into place with
    `saved_model.pb`, which a server waits for, last (`storage.publish_tree`).
    On any error the staging folder is removed.
    """
    validate_model_name(name)
    model_dir = storage.join(export_dir, name)
    remote = storage.is_remote(model_dir)
    storage.makedirs(model_dir)
    if not remote:
        remove_abandoned_staging(model_dir)
    if version is None:
        version = next_version(model_dir)
    elif version < 1:
        raise ValueError(f"version={version}: must be a positive integer")
    final = storage.join(model_dir, str(version))
    if storage.exists(final):
        raise FileExistsError(f"{final} already exists; versions are never overwritten (leave --version unset for the next one)")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.partial-{os.getpid()}-", dir=None if remote else model_dir))
    try:
        yield staging, version, (final if remote else Path(final))
        if remote:
            storage.publish_tree(staging, final, last=("saved_model.pb",))
            shutil.rmtree(staging, ignore_errors=True)
        else:
            os.rename(staging, final)
        _record_issued(model_dir, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def model_card(
    model: keras.Model, name: str, version: int, class_names: Sequence[str], top_k: int, metadata: dict | None,
    signatures: dict | None = None,
) -> dict:
    """The export's model_card.json: what the model is, what it was measured at, how to call it, and what made it.

    The model's kind, input size and normalisation are read from the model
    itself (`tl_keras.models.anatomy`), so they are right even when the exporter
    passes nothing; `metadata` fills or overrides the `CARD_FIELDS`.
    `signatures`: {name: {"inputs": ..., "outputs": ...}}, as the modality's exporter wrote them.
    """
    from importlib import metadata as package_metadata

    try:
        package_version = package_metadata.version("tl_keras")
    except package_metadata.PackageNotFoundError:  # run from a source tree that was never installed
        package_version = "unknown"

    card = {field: None for field in CARD_FIELDS}
    try:
        parts = anatomy(model)
        card.update(
            model_kind=parts.kind,
            input_size=parts.input_size or None,
            preprocessing=parts.preprocessing or None,
        )
    except ValueError:
        pass
    card["versions"] = {
        "tl_keras": package_version,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
    }
    provenance = {}
    for key, value in (metadata or {}).items():
        if key in CARD_FIELDS and key != "provenance":
            card[key] = value
        else:
            provenance.update((value or {}) if key == "provenance" else {key: value})
    card["provenance"] = provenance or None
    return {"name": name, "version": version, "class_names": list(class_names), "signatures": dict(signatures or {}), "top_k": top_k,
            **card}


def hub_layers(model: keras.Model) -> list:
    """Every HubLayer inside `model`, nested models (ensemble members) included."""
    from tl_keras.models.hub_layer import HubLayer

    found = []
    for layer in model.layers:
        if isinstance(layer, HubLayer):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(hub_layers(layer))
    return found


def carry_hub_modules(model: keras.Model, folder: Path) -> None:
    """Copies each Hub module the model calls beside its Keras copy, under the module folder's own name.

    The SavedModel's signatures already contain the module's graph and
    weights; the `.keras` copy (for further training) only names its handle,
    which may be a local path or a download cache on the training machine.
    `reload.load_classifier` finds the copies (`hub_layer.module_search_path`).
    """
    for layer in hub_layers(model):
        source = layer.module_path
        if source is None or not source.is_dir():
            continue
        target = folder / Path(layer.handle).name
        if not target.exists():
            shutil.copytree(source, target)


def serving_config(names: Sequence[str], base_path: str = "/models") -> str:
    """A TF Serving `--model_config_file` for several models under one root."""
    lines = ["model_config_list {"]
    for name in names:
        validate_model_name(name)
        lines += [
            "  config {",
            f'    name: "{name}"',
            f'    base_path: "{base_path.rstrip("/")}/{name}"',
            '    model_platform: "tensorflow"',
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def rest_request(encoded_images: Sequence[bytes], signature: str = SERVING_SIGNATURE) -> dict:
    """The JSON body a REST client POSTs to `/v1/models/<name>:predict`."""
    import base64

    return {
        "signature_name": signature,
        "instances": [{BYTES_INPUT: {"b64": base64.b64encode(data).decode("ascii")}} for data in encoded_images],
    }


def latest_version_dir(path: str | os.PathLike) -> Path | str:
    """A version folder as given, or the highest version under a model folder (a string on an object store)."""
    if storage.is_remote(path):
        if storage.isfile(storage.join(path, "saved_model.pb")):
            return str(path)
        versions = existing_versions(path)
        if not versions:
            raise ValueError(f"{path} is neither a SavedModel version folder nor a model folder with numbered versions")
        return storage.join(path, str(versions[-1]))
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = existing_versions(path)
    if not versions:
        raise ValueError(f"{path} is neither a SavedModel version folder nor a model folder with numbered versions")
    return path / str(versions[-1])


def read_labels(version_dir: str | os.PathLike) -> list[str]:
    """Class names of an export, in output order."""
    return read_labels_file(storage.join(version_dir, EXTRA_ASSETS, LABELS_FILE))


def write_labels_file(path: str | os.PathLike, class_names: Sequence[str]) -> Path:
    """labels.txt: one class name per line in output order, UTF-8, written atomically (every export and TFLite folder has one)."""
    return atomic.write_text(path, "".join(f"{c}\n" for c in class_names))


def read_labels_file(path: str | os.PathLike) -> list[str]:
    """Class names from a labels.txt, one per line in output order; blank lines and line-end whitespace ignored."""
    return [line.strip() for line in storage.read_text(path).splitlines() if line.strip()]


# Old paths, for one release.
