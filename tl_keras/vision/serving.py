"""The image SavedModel's signatures: encoded image bytes or float pixels in, probabilities and top-k classes out.

The folder, its versions, the outputs, the model card and the Hub-module
copies are the export layer's (`tl_keras.export.endpoints`); what is
image-specific is here, as endpoints: decoding (EXIF orientation applied,
as training decodes), the resize the model's own Resizing layer does,
batched once per request, and the test-time-augmentation signature.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from tl_keras.export.endpoints import Endpoint, export_classifier
from tl_keras.export.saved_model import DEFAULT_TOP_K
from tl_keras.export.signatures import BYTES_INPUT, PIXELS_INPUT, PIXELS_SIGNATURE, SERVING_SIGNATURE, TTA_SIGNATURE, WARMUP_FILE
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
    allow_new_classes: bool = False,
    target=None,
) -> Path:
    """Exports `model` as `<export_dir>/<name>/<version>/`, atomically, for TF Serving (through `export.endpoints`).

    (Eleven parameters: a public entry point; each is a choice of the user.) A
    multi-label or regression model (`target`, a `tasks.TargetSpec`) answers
    with its task's outputs instead (`scores` and `tags`, or `value`).

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
        allow_new_classes: export even when the latest version of `name` predicts other classes.

    Returns:
        The final version folder.
    """
    check_mode(tta)

    def add_files(extra: Path) -> None:
        if warmup:
            from tl_keras.vision.warmup import write_warmup_requests

            write_warmup_requests(extra / WARMUP_FILE, name)

    return export_classifier(
        model, export_dir, name, class_names, image_endpoints(model, len(class_names), tta), metadata=metadata, top_k=top_k,
        version=version, add_files=add_files, allow_new_classes=allow_new_classes, target=target,
    )


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


def image_endpoints(model: keras.Model, num_classes: int, tta: str = "none") -> list[Endpoint]:
    """`serving_default` (encoded bytes), `predict_pixels` (float pixels, any size) and, with `tta`, `serving_tta`.

    Each runs the model itself: where the model starts with a plain resize,
    every decoded image is resized in the graph (the very op the layer runs)
    and the rest of the model runs once per batch; otherwise each image goes
    through the whole model alone.
    """
    resize, tail = resize_front(model)

    def resize_like_model(image):
        size = (int(resize.height), int(resize.width))
        return tf.image.resize(tf.cast(image, tf.float32), size, method=resize.interpolation, antialias=resize.antialias)

    def serve_pixels(images):
        if tail is not None:
            return tail(resize_like_model(images), training=False)
        return model(to_uint8(images), training=False)

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
            fn_output_signature=tf.TensorSpec((num_classes,), tf.float32),
        )

    image_bytes = [tf.TensorSpec([None], tf.string, name=BYTES_INPUT)]
    endpoints = [
        Endpoint(SERVING_SIGNATURE, image_bytes, None, {BYTES_INPUT: "string [N] encoded image"},
                 predict=lambda data: bytes_to_probabilities(data, "none")),
        Endpoint(PIXELS_SIGNATURE, [tf.TensorSpec([None, None, None, 3], tf.float32, name=PIXELS_INPUT)], None,
                 {PIXELS_INPUT: "float32 [N, H, W, 3] RGB 0-255"}, predict=serve_pixels),
    ]
    if tta != "none":
        endpoints.append(Endpoint(TTA_SIGNATURE, image_bytes, None, {BYTES_INPUT: "string [N] encoded image"},
                                  predict=lambda data: bytes_to_probabilities(data, tta), card={"tta": tta, "views": view_count(tta)}))
    return endpoints


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
