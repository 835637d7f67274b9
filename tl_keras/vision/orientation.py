"""Phone photos upright: the JPEG EXIF Orientation tag read and applied inside the TensorFlow graph.

A phone stores a portrait photo as landscape pixels plus an Orientation tag;
Pillow's `ImageOps.exif_transpose`, browsers and photo viewers turn it
upright, but `tf.io.decode_image` ignores the tag, so without this a folder
of phone photos trains partly sideways and the served model sees what no
viewer shows. TensorFlow has no op for the tag, and Pillow cannot run inside
a SavedModel that TF Serving loads, so the few bytes of the tag are parsed
here with string and byte ops: the same function runs in the training
pipeline, the data check and the exported bytes signature, so training and
serving see the same pixels.

Only JPEG's APP1 Exif block is read (that is where cameras and phones write
the tag); other formats, files without the tag, and malformed or truncated
Exif blocks all come out as orientation 1, unchanged. The TFLite model takes
pixels: a phone app passes them upright, as its camera API reports.
"""

from __future__ import annotations

import tensorflow as tf

from tl_keras.vision.pixels import JPEG_MAGIC

ORIENTATION_TAG = 0x0112
_EXIF_ID = b"Exif\x00\x00"
_HEAD_BYTES = 1 << 16  # the Exif block comes before the image data, within a JPEG's first segments
# Where "Exif\0\0" is looked for: the Exif standard puts its APP1 segment right after the start marker, and files that
# put a JFIF APP0 or other small segments first still start it within a few hundred bytes.
_SEARCH_BYTES = 4096
_MAX_ENTRIES = 32  # IFD0 lists tags in ascending order; Orientation (274) is about the tenth
_PAD = b"\x00" * (8 + 2 + 12 * _MAX_ENTRIES)  # so every fixed-length read below stays inside the string


def exif_orientation(data: tf.Tensor) -> tf.Tensor:
    """The Orientation tag (int32, 1-8) of one encoded image; 1 when it has none or the bytes are not a readable JPEG Exif block.

    Args:
        data: a scalar tf.string, the encoded file.
    """
    data = tf.convert_to_tensor(data, tf.string)
    head = tf.strings.substr(data, 0, _HEAD_BYTES)
    is_jpeg = tf.strings.substr(head, 0, len(JPEG_MAGIC)) == JPEG_MAGIC
    before, found = _split_at(tf.strings.substr(head, 0, _SEARCH_BYTES), _EXIF_ID)
    # Most files carry no Exif block: they skip the ~50 small ops of parsing it.
    return tf.cond(tf.logical_and(is_jpeg, found), lambda: _orientation_in(head, tf.strings.length(before)), lambda: tf.constant(1))


def _orientation_in(head: tf.Tensor, exif_at: tf.Tensor) -> tf.Tensor:
    """The Orientation tag of the Exif block whose "Exif\\0\\0" starts at `exif_at` in `head`; 1 when unreadable."""
    marker = tf.strings.substr(head + b"\x00\x00\x00\x00", tf.maximum(exif_at - 4, 0), 2)
    in_app1 = tf.logical_and(exif_at >= 4, marker == b"\xff\xe1")

    padded = head + _PAD
    tiff = exif_at + len(_EXIF_ID)
    tiff_start = tf.minimum(tiff, tf.strings.length(head))
    header = _bytes(padded, tiff_start, 8)
    order = tf.strings.substr(padded, tiff_start, 2)
    little = order == b"II"
    known_order = tf.logical_or(little, order == b"MM")
    ifd_offset = _unsigned(header[4:8], little)
    ifd_at = tf.cast(tiff, tf.int64) + ifd_offset
    ifd_inside = tf.logical_and(ifd_offset >= 8, ifd_at + 2 <= tf.cast(tf.strings.length(head), tf.int64))
    ifd_start = tf.cast(tf.where(ifd_inside, ifd_at, 0), tf.int32)

    table = _bytes(padded, ifd_start, 2 + 12 * _MAX_ENTRIES)
    count = _unsigned(table[0:2], little)
    entries = tf.reshape(table[2:], (_MAX_ENTRIES, 12))
    tags = _unsigned_rows(entries[:, 0:2], little)
    values = _unsigned_rows(entries[:, 8:10], little)
    listed = tf.range(_MAX_ENTRIES, dtype=tf.int64) < count
    is_tag = tf.logical_and(listed, tags == ORIENTATION_TAG)
    value = tf.reduce_max(tf.where(is_tag, values, 0))

    readable = tf.reduce_all(tf.stack([in_app1, known_order, ifd_inside, tf.reduce_any(is_tag)]))
    valid = tf.logical_and(readable, tf.logical_and(value >= 1, value <= 8))
    return tf.cast(tf.where(valid, value, 1), tf.int32)


def apply_orientation(image: tf.Tensor, orientation: tf.Tensor) -> tf.Tensor:
    """`image` (H, W, C) turned as the Orientation tag says, so it shows upright; 5-8 swap height and width.

    The eight values are the EXIF specification's: 2 mirrored, 3 upside
    down, 4 mirrored upside down, 5 transposed, 6 turned 90 degrees
    clockwise to show upright, 7 transversed, 8 turned 90 degrees
    counter-clockwise.
    """
    def transposed():
        # Pixels gathered in transposed order (output row i, column j is input pixel j * width + i), built by broadcasting:
        # tf.transpose makes oneDNN print an error line into every run's output on CPUs without AVX-512.
        shape = tf.shape(image)
        height, width, channels = shape[0], shape[1], shape[2]
        order = tf.reshape(tf.range(height)[None, :] * width + tf.range(width)[:, None], [-1])
        return tf.reshape(tf.gather(tf.reshape(image, (-1, channels)), order), (width, height, channels))

    # tf.reverse rather than [::-1] slices: Grappler's remapper logs an error for negative strides on shapes it cannot see.
    branches = [
        lambda: image,
        lambda: tf.reverse(image, [1]),
        lambda: tf.reverse(image, [0, 1]),
        lambda: tf.reverse(image, [0]),
        transposed,
        lambda: tf.reverse(transposed(), [1]),
        lambda: tf.reverse(transposed(), [0, 1]),
        lambda: tf.reverse(transposed(), [0]),
    ]
    out = tf.switch_case(tf.clip_by_value(orientation - 1, 0, 7), branches)
    out.set_shape([None, None, image.shape[-1]])
    return out


def decode_upright(data: tf.Tensor) -> tf.Tensor:
    """Encoded image bytes to uint8 RGB (H, W, 3) as a viewer shows them: `tf.io.decode_image`, then the EXIF orientation.

    JPEG, PNG (16-bit scaled to 8), BMP, GIF's first frame and WebP: one
    `DecodeImage` op sniffs the format itself.
    """
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    orientation = exif_orientation(data)
    return tf.cond(orientation == 1, lambda: image, lambda: apply_orientation(image, orientation))


def _split_at(text: tf.Tensor, separator: bytes):
    """The part of `text` before the first `separator`, and whether there was one."""
    parts = tf.strings.split(text, sep=separator, maxsplit=1)
    return parts[0], tf.size(parts) > 1


def _bytes(text: tf.Tensor, start: tf.Tensor, length: int) -> tf.Tensor:
    """`length` bytes of `text` from `start` as int64 values (the caller keeps start + length inside `text`)."""
    raw = tf.io.decode_raw(tf.strings.substr(text, start, length), tf.uint8)
    return tf.cast(tf.reshape(raw, [length]), tf.int64)  # a static length, which graph mode (tf.data, serving) cannot infer


def _unsigned(raw: tf.Tensor, little: tf.Tensor) -> tf.Tensor:
    """An unsigned integer from its bytes, in the Exif block's byte order."""
    return _unsigned_rows(raw[None], little)[0]


def _unsigned_rows(raw: tf.Tensor, little: tf.Tensor) -> tf.Tensor:
    """Each row of bytes (N, k) as one unsigned integer, little- or big-endian."""
    width = raw.shape[-1]
    big_weights = tf.constant([256 ** (width - 1 - i) for i in range(width)], tf.int64)
    weights = tf.where(little, tf.reverse(big_weights, [0]), big_weights)
    return tf.reduce_sum(raw * weights, axis=-1)
