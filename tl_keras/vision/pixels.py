"""The two rules about pixels that several layers share: float pixels back to uint8, and which bytes start an image file.

uint8 by rounding (a plain cast truncates, darkening every pixel by half a
level on average) and clipping to 0-255; once here, so training, augmentation,
export and the Grad-CAM overlay agree to the last level.
"""

from __future__ import annotations

import numpy as np
from keras import ops

# First bytes of each format `tf.io.decode_image` reads (WebP: "RIFF", 4 bytes of size, "WEBP": `is_webp`).
JPEG_MAGIC = b"\xff\xd8\xff"
IMAGE_SIGNATURES = {
    JPEG_MAGIC: "jpeg",
    b"\x89PNG\r\n\x1a\n": "png",
    b"GIF87a": "gif",
    b"GIF89a": "gif",
    b"BM": "bmp",
}
WEBP_RIFF, WEBP_TAG = b"RIFF", b"WEBP"  # at offsets 0 and 8


def to_uint8(images):
    """Float pixels (tensor, any shape) rounded and clipped to 0-255 as uint8; Keras ops, so it runs in a layer or in tf.data."""
    return ops.cast(ops.clip(ops.round(images), 0, 255), "uint8")


def to_uint8_array(images: np.ndarray) -> np.ndarray:
    """`to_uint8` for NumPy arrays."""
    return np.clip(np.round(images), 0, 255).astype(np.uint8)


def format_of(data: bytes) -> str | None:
    """The image format the first bytes claim, whatever the file name says; None when they claim none."""
    for magic, name in IMAGE_SIGNATURES.items():
        if data.startswith(magic):
            return name
    if data[:4] == WEBP_RIFF and data[8:12] == WEBP_TAG:
        return "webp"
    return None
