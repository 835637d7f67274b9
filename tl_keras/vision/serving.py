"""The image SavedModel's signatures: encoded image bytes or float pixels in, probabilities and top-k classes out.

The folder, its versions, the model card and the Hub-module copies are the
export layer's (`tl_keras.export.saved_model`); what is image-specific is
here: decoding (EXIF orientation applied, as training decodes), the resize
the model's own Resizing layer does, batched once per request, and the
test-time-augmentation signature.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from tl_keras.export.saved_model import (
    BYTES_INPUT, CLASSES, DEFAULT_TOP_K, EXTRA_ASSETS, HUB_MODULES, KERAS_COPY, LABELS_FILE, MODEL_CARD, PIXELS_INPUT, PIXELS_SIGNATURE,
    PROBABILITIES, SCORES, SERVING_SIGNATURE, TTA_SIGNATURE, WARMUP_FILE, carry_hub_modules, model_card, validate_model_name,
    versioned_folder,
)
from tl_keras.io import atomic
from tl_keras.models.anatomy import SINGLE, anatomy
from tl_keras.vision.orientation import decode_upright
from tl_keras.vision.pixels import IMAGE_SIGNATURES, WEBP_RIFF, WEBP_TAG, to_uint8
from tl_keras.vision.tta import check_mode, tta_views, view_count


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
        card = model_card(model, name, version, class_names, top_k, metadata, {
            SERVING_SIGNATURE: {"inputs": {BYTES_INPUT: "string [N] encoded image"}, "outputs": [PROBABILITIES, CLASSES, SCORES]},
            PIXELS_SIGNATURE: {"inputs": {PIXELS_INPUT: "float32 [N, H, W, 3] RGB 0-255"}, "outputs": [PROBABILITIES, CLASSES, SCORES]},
        })
        if tta != "none":
            card["signatures"][TTA_SIGNATURE] = {
                "inputs": {BYTES_INPUT: "string [N] encoded image"},
                "outputs": [PROBABILITIES, CLASSES, SCORES],
                "tta": tta,
                "views": view_count(tta),
            }
        atomic.write_json(extra / MODEL_CARD, card)
        model.save(extra / KERAS_COPY)
        carry_hub_modules(model, extra / HUB_MODULES)
        if warmup:
            from tl_keras.vision.warmup import write_warmup_requests

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
