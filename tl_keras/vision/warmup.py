"""The image SavedModel's warmup requests: one JPEG, a JPEG+PNG batch (both decoders), one pixel array (see `export.warmup`)."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from tl_keras.export import warmup
from tl_keras.export.warmup import read_warmup_requests  # noqa: F401 - read beside the writer, as before
from tl_keras.export.signatures import BYTES_INPUT, PIXELS_INPUT, PIXELS_SIGNATURE, SERVING_SIGNATURE


def _sample_image(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1).astype(np.uint8)


def image_warmup_payloads() -> list[tuple[str, dict]]:
    """(signature, {input: TensorProto}) for one JPEG, a JPEG+PNG batch, one pixel array."""
    jpeg = tf.io.encode_jpeg(_sample_image(240, 320)).numpy()
    png = tf.io.encode_png(_sample_image(96, 128)).numpy()
    pixels = _sample_image(64, 64)[None].astype(np.float32)
    return [
        (SERVING_SIGNATURE, {BYTES_INPUT: tf.make_tensor_proto([jpeg], dtype=tf.string)}),
        (SERVING_SIGNATURE, {BYTES_INPUT: tf.make_tensor_proto([jpeg, png], dtype=tf.string)}),
        (PIXELS_SIGNATURE, {PIXELS_INPUT: tf.make_tensor_proto(pixels, dtype=tf.float32)}),
    ]


def write_warmup_requests(path: str | os.PathLike, model_name: str) -> None:
    warmup.write_warmup_requests(path, model_name, image_warmup_payloads())
