"""SavedModel export in the layout TF Serving polls: <export_dir>/<name>/<version>/.

A version is written into a hidden temporary folder beside the versions and
renamed into place only when complete, so a server polling the folder never
loads a half-written model; a failed export leaves nothing behind. Versions
are integers that only increase.
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

from tl_keras.io import atomic
from tl_keras.models.anatomy import SINGLE, anatomy
from tl_keras.vision.orientation import decode_upright
from tl_keras.vision.pixels import IMAGE_SIGNATURES, WEBP_RIFF, WEBP_TAG, to_uint8
from tl_keras.config.settings import check_model_name
from tl_keras.export.signatures import (  # noqa: F401 - the export's contract, re-exported for its callers
    BYTES_INPUT, CLASSES, EXTRA_ASSETS, HUB_MODULES, KERAS_COPY, LABELS_FILE, MODEL_CARD, PIXELS_INPUT, PIXELS_SIGNATURE,
    PROBABILITIES, SCORES, SERVING_SIGNATURE, TTA_SIGNATURE, WARMUP_FILE,
)
from tl_keras.vision.tta import check_mode, tta_views, view_count

DEFAULT_TOP_K = 5



def validate_model_name(name: str) -> str:
    """Refuses names that could escape the export folder or confuse TF Serving (settings.check_model_name)."""
    return check_model_name(name)


def existing_versions(model_dir: str | os.PathLike) -> list[int]:
    """The integer version folders TF Serving would see, ascending."""
    path = Path(model_dir)
    if not path.is_dir():
        return []
    return sorted(int(p.name) for p in path.iterdir() if p.is_dir() and p.name.isdigit())


# Highest version ever issued under a model folder: a deleted version's number is never given again
# (a server or a client cache that saw version 3 must not meet a different model called 3).
_LAST_VERSION_FILE = ".last_version"


def next_version(model_dir: str | os.PathLike) -> int:
    versions = existing_versions(model_dir)
    issued = Path(model_dir) / _LAST_VERSION_FILE
    last = int(issued.read_text().strip() or 0) if issued.is_file() else 0
    return max(versions[-1] if versions else 0, last) + 1


def _record_issued(model_dir: Path, version: int) -> None:
    issued = model_dir / _LAST_VERSION_FILE
    last = int(issued.read_text().strip() or 0) if issued.is_file() else 0
    atomic.write_text(issued, f"{max(last, version)}\n")


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


def export_saved_model(
    model: keras.Model,
    export_dir: str | os.PathLike,
    name: str,
    class_names: Sequence[str],
    *,
    version: int | None = None,
    metadata: dict | None = None,
    top_k: int = DEFAULT_TOP_K,
    warmup: bool = True,
    tta: str = "none",
) -> Path:
    """Exports `model` as `<export_dir>/<name>/<version>/`, atomically, for TF Serving.

    (Nine parameters and seventy lines: a public entry point writing one atomic version; each step is a file of the layout.)

    Signatures:
      * `serving_default`: `image_bytes` (string [N], encoded JPEG/PNG/GIF/BMP/
        WebP, base64 `{"b64": ...}` over REST) -> `probabilities` [N, C],
        `classes` [N, k] (class names, best first) and `scores` [N, k].
      * `predict_pixels`: `images` (float32 [N, H, W, 3], RGB values in
        0-255, any H and W) -> the same three outputs.
      * `serving_tta` (only when `tta` is not "none"): `image_bytes` -> the
        same outputs, probabilities averaged over the `tl_keras.vision.tta` views.
    Decoding, resizing and normalisation happen in the graph, so both equal
    the Keras model on the same pixels. `assets.extra/` holds `labels.txt`,
    `model_card.json` (`metadata` plus signatures), `model.keras` (to resume
    training from an export) and `tf_serving_warmup_requests`.

    Args:
        model: a classifier from `build_classifier` (uint8 image input).
        export_dir: root of the layout (e.g. "saved_models").
        name: model name; validated.
        class_names: one per output unit, in order.
        version: force a version number; an existing one is refused.
        metadata: JSON-serialisable facts for the model card.
        top_k: how many classes `classes`/`scores` list (at most C).
        warmup: write TF Serving warmup requests.
        tta: test-time augmentation of the extra `serving_tta` signature
            ("flip", "crops", "flip_crops"); "none" adds no signature.

    Returns:
        The final version folder.
    """
    validate_model_name(name)
    num_outputs = int(model.outputs[0].shape[-1])
    if len(class_names) != num_outputs:
        raise ValueError(f"{len(class_names)} class names for a model with {num_outputs} outputs")
    top_k = max(1, min(int(top_k), num_outputs))
    check_mode(tta)
    with versioned_folder(export_dir, name, version) as (staging, version):
        _write_saved_model(model, staging, list(class_names), top_k, tta)
        extra = staging / EXTRA_ASSETS
        extra.mkdir()
        (extra / LABELS_FILE).write_text("".join(f"{c}\n" for c in class_names))
        card = model_card(model, name, version, class_names, top_k, metadata)
        if tta != "none":
            card["signatures"][TTA_SIGNATURE] = {
                "inputs": {BYTES_INPUT: "string [N] encoded image"},
                "outputs": [PROBABILITIES, CLASSES, SCORES],
                "tta": tta,
                "views": view_count(tta),
            }
        atomic.write_json(extra / MODEL_CARD, card)
        model.save(extra / KERAS_COPY)
        _carry_hub_modules(model, extra / HUB_MODULES)
        if warmup:
            from tl_keras.export.warmup import write_warmup_requests

            write_warmup_requests(extra / WARMUP_FILE, name)
    return staging.parent / str(version)


def resize_front(model: keras.Model):
    """The model's leading Resizing layer and the rest of the model as a float-input model.

    Serving decodes images of different sizes; resizing each in the graph
    (the very op the Resizing layer runs) and batching the results lets the
    rest of the model run once per batch. Returns (None, None) when the model
    has no plain leading resize (then each image goes through the model alone).
    """
    try:
        parts = anatomy(model)
    except ValueError:
        return None, None
    if parts.kind != SINGLE or len(parts.resizes) != 1:  # fusion branches resize to their own sizes; members inside themselves
        return None, None
    resize = parts.resizes[0]
    if resize.crop_to_aspect_ratio or resize.pad_to_aspect_ratio:
        return None, None
    return resize, keras.Model(resize.output, model.output, name=f"{model.name}_after_resize")


# Every model card has these keys, in this order, whoever exported it (a run, the export or distillation script,
# an ensemble); None where the exporter did not know. Anything else an exporter records goes under "provenance".
CARD_FIELDS = (
    "model_kind", "backbone", "weights", "input_size", "preprocessing", "metrics", "calibration", "config", "config_fingerprint",
    "provenance", "versions",
)


@contextlib.contextmanager
def versioned_folder(export_dir: str | os.PathLike, name: str, version: int | None = None):
    """Yields (staging folder, version) for one export of any modality; renamed to `<export_dir>/<name>/<version>` on success.

    The staging folder is hidden from TF Serving (a dot name); rename(2) is
    atomic on one filesystem, so a server sees the whole version or none of
    it, and a racing exporter that took the same number fails instead of
    mixing two models. On any error the staging folder is removed.
    """
    validate_model_name(name)
    model_dir = Path(export_dir) / name
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(model_dir)
    if version is None:
        version = next_version(model_dir)
    elif version < 1:
        raise ValueError(f"version={version}: must be a positive integer")
    final = model_dir / str(version)
    if final.exists():
        raise FileExistsError(f"{final} already exists; versions are never overwritten (leave --version unset for the next one)")
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.partial-{os.getpid()}-", dir=model_dir))
    try:
        yield staging, version
        os.rename(staging, final)
        _record_issued(model_dir, version)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def model_card(model: keras.Model, name: str, version: int, class_names: Sequence[str], top_k: int, metadata: dict | None) -> dict:
    """The export's model_card.json: what the model is, what it was measured at, how to call it, and what made it.

    The model's kind, input size and normalisation are read from the model
    itself (`tl_keras.models.anatomy`), so they are right even when the exporter
    passes nothing; `metadata` fills or overrides the `CARD_FIELDS`.
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
    signatures = {
        SERVING_SIGNATURE: {"inputs": {BYTES_INPUT: "string [N] encoded image"}, "outputs": [PROBABILITIES, CLASSES, SCORES]},
        PIXELS_SIGNATURE: {"inputs": {PIXELS_INPUT: "float32 [N, H, W, 3] RGB 0-255"}, "outputs": [PROBABILITIES, CLASSES, SCORES]},
    }
    return {"name": name, "version": version, "class_names": list(class_names), "signatures": signatures, "top_k": top_k, **card}


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


def _carry_hub_modules(model: keras.Model, folder: Path) -> None:
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


def _write_saved_model(model: keras.Model, path: Path, class_names: list[str], top_k: int, tta: str = "none") -> None:
    resize, tail = resize_front(model)
    names = tf.constant(class_names)

    def outputs(probabilities):
        best = tf.math.top_k(probabilities, k=top_k)
        return {PROBABILITIES: probabilities, CLASSES: tf.gather(names, best.indices), SCORES: best.values}

    def resize_like_model(image):
        size = (int(resize.height), int(resize.width))
        return tf.image.resize(tf.cast(image, tf.float32), size, method=resize.interpolation, antialias=resize.antialias)

    def serve_pixels(images):
        if tail is not None:
            return outputs(tail(resize_like_model(images), training=False))
        return outputs(model(to_uint8(images), training=False))

    def mean_over_views(run, images, mode):
        return tf.add_n([run(view) for view in tta_views(images, mode)]) / float(view_count(mode))

    def bytes_to_probabilities(image_bytes, mode):
        image_bytes = _assert_images(image_bytes)
        if tail is not None:
            size = (int(resize.height), int(resize.width))
            batch = tf.map_fn(
                lambda data: resize_like_model(_decode(data)), image_bytes, fn_output_signature=tf.TensorSpec((*size, 3), tf.float32)
            )
            return mean_over_views(lambda view: tail(view, training=False), batch, mode)
        return tf.map_fn(
            lambda data: mean_over_views(lambda view: model(view, training=False), _decode(data)[None], mode)[0], image_bytes,
            fn_output_signature=tf.TensorSpec((len(class_names),), tf.float32),
        )

    def serve_bytes(image_bytes):
        return outputs(bytes_to_probabilities(image_bytes, "none"))

    def serve_tta(image_bytes):
        return outputs(bytes_to_probabilities(image_bytes, tta))

    archive = keras.export.ExportArchive()
    # Not archive.track(model): the endpoints track the variables and resources they use; track() would store every weight twice.
    archive.add_endpoint(SERVING_SIGNATURE, serve_bytes, input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)])
    archive.add_endpoint(
        PIXELS_SIGNATURE, serve_pixels, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=PIXELS_INPUT)]
    )
    if tta != "none":
        archive.add_endpoint(TTA_SIGNATURE, serve_tta, input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)])
    archive.write_out(str(path), verbose=False)


def _decode(data):
    return decode_upright(data)  # the training pipeline's decode: the EXIF orientation applied, as viewers show the photo


def _assert_images(image_bytes):
    """Returns `image_bytes` once each entry looks like an image; fails the request with a readable message for empty or non-image entries.

    The error comes back to the client from the graph (TF Serving answers
    400 with it); the server process stays up for the next request.
    """
    padded = image_bytes + b"\x00" * 12  # substr must not run past a short entry
    head = tf.strings.substr(padded, 0, 4)
    known = tf.zeros_like(image_bytes, dtype=tf.bool)
    for magic in IMAGE_SIGNATURES:
        known = tf.logical_or(known, tf.strings.substr(padded, 0, len(magic)) == magic)
    webp = tf.logical_and(head == WEBP_RIFF, tf.strings.substr(padded, 8, 4) == WEBP_TAG)
    known = tf.logical_or(known, webp)
    check = tf.debugging.Assert(
        tf.reduce_all(known),
        ["image_bytes: an entry is empty or not a JPEG, PNG, GIF, BMP or WebP image; entries ok:", known],
        summarize=16,
    )
    with tf.control_dependencies([check]):  # decode only what passed the check
        return tf.identity(image_bytes)


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


def latest_version_dir(path: str | os.PathLike) -> Path:
    """A version folder as given, or the highest version under a model folder."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = existing_versions(path)
    if not versions:
        raise ValueError(f"{path} is neither a SavedModel version folder nor a model folder with numbered versions")
    return path / str(versions[-1])


def read_labels(version_dir: str | os.PathLike) -> list[str]:
    """Class names of an export, in output order."""
    return read_labels_file(Path(version_dir, EXTRA_ASSETS, LABELS_FILE))


def read_labels_file(path: str | os.PathLike) -> list[str]:
    """Class names from a labels.txt, one per line in output order; blank lines and line-end whitespace ignored."""
    return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
