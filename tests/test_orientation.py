"""Phone photos: the JPEG EXIF orientation is read in the graph and applied alike in training, the data check and serving."""

import io

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import logging as absl_logging
from PIL import Image, ImageOps

from tl_keras.vision import datacheck
from tl_keras.vision import serving
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.vision import folders
from tl_keras.vision.pipeline import decode_file
from tl_keras.vision.orientation import decode_upright, exif_orientation


def _pixels(height=24, width=40):
    """An image whose eight orientations all differ (no symmetry), smooth enough for JPEG to keep it recognisable."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([rows * 255 // height, cols * 255 // width, (rows + 2 * cols) % 256], axis=-1).astype(np.uint8)


def _jpeg(orientation: int | None, pixels=None, big_endian: bool = False) -> bytes:
    image = Image.fromarray(_pixels() if pixels is None else pixels)
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, "JPEG", quality=95)
    else:
        exif = Image.Exif()
        exif[0x010F] = "tl_keras test camera"  # another tag first, so the orientation is not the only entry
        exif[0x0112] = orientation
        data = exif.tobytes()
        if big_endian:  # Pillow writes little-endian ("II"); cameras also write "MM"
            data = _as_big_endian(data)
        image.save(buffer, "JPEG", quality=95, exif=data)
    return buffer.getvalue()


def _as_big_endian(exif: bytes) -> bytes:
    """The same two-entry Exif block written in Motorola byte order."""
    block = Image.Exif()
    block.load(exif)
    orientation = block[0x0112]
    maker = b"tl_keras test camera\x00"
    header = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08"
    entries = (2).to_bytes(2, "big")
    maker_offset = 8 + 2 + 2 * 12 + 4
    entries += (0x010F).to_bytes(2, "big") + (2).to_bytes(2, "big") + len(maker).to_bytes(4, "big") + maker_offset.to_bytes(4, "big")
    entries += (0x0112).to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big") + orientation.to_bytes(2, "big") + b"\x00\x00"
    return header + entries + b"\x00\x00\x00\x00" + maker


def _upright_per_pillow(data: bytes) -> np.ndarray:
    """Pillow's `exif_transpose` applied to TensorFlow's own decode of the stored pixels (the same pixels, turned by Pillow's table)."""
    stored = tf.io.decode_image(data, channels=3).numpy()
    image = Image.fromarray(stored)
    image.getexif()[0x0112] = Image.open(io.BytesIO(data)).getexif().get(0x0112, 1)
    return np.asarray(ImageOps.exif_transpose(image))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("big_endian", [False, True])
def test_each_orientation_comes_out_as_pillow_turns_it(orientation, big_endian):
    data = _jpeg(orientation, big_endian=big_endian)
    assert int(exif_orientation(tf.constant(data))) == orientation
    upright = decode_upright(tf.constant(data)).numpy()
    expected = _upright_per_pillow(data)
    assert upright.shape == expected.shape == ((24, 40, 3) if orientation < 5 else (40, 24, 3))
    np.testing.assert_array_equal(upright, expected)


@pytest.mark.parametrize("data", [
    _jpeg(None),
    tf.io.encode_png(_pixels()).numpy(),
    _jpeg(6)[:30],  # cut inside the Exif block
    b"not an image at all",
    b"",
])
def test_files_without_a_readable_tag_read_as_normal(data):
    assert int(exif_orientation(tf.constant(data))) == 1


@pytest.mark.slow  # several seconds: the full suite runs it
def test_pipeline_data_check_and_both_serving_signatures_see_the_same_upright_photo(tmp_path):
    rotated = _jpeg(6)
    (tmp_path / "photos" / "a").mkdir(parents=True)
    (tmp_path / "photos" / "b").mkdir(parents=True)
    (tmp_path / "photos" / "a" / "phone.jpg").write_bytes(rotated)
    (tmp_path / "photos" / "b" / "plain.jpg").write_bytes(_jpeg(None))
    path = str(tmp_path / "photos" / "a" / "phone.jpg")

    check = datacheck.check_file(path, 0)
    assert check.ok and datacheck.ROTATED in check.notes and check.size == (40, 24)
    assert datacheck.ROTATED not in datacheck.check_file(str(tmp_path / "photos" / "b" / "plain.jpg"), 1).notes
    pipeline_pixels = decode_file(tf.constant(path)).numpy()
    np.testing.assert_array_equal(pipeline_pixels, _upright_per_pillow(rotated))

    keras.utils.set_random_seed(0)  # a fixed network: how different the sideways photo looks to it must not vary by run
    model = build_classifier(load_backbone("small_cnn", None, image_size=16), 2, name="tiny")
    keras_probabilities = model.predict(pipeline_pixels[None], verbose=0)
    sideways = model.predict(tf.io.decode_image(rotated, channels=3).numpy()[None], verbose=0)
    assert np.abs(keras_probabilities - sideways).max() > 1e-3, "the test photo must look different sideways, or it proves nothing"

    served = tf.saved_model.load(str(serving.export_saved_model(model, tmp_path / "exports", "tiny", ["a", "b"], warmup=False)))
    by_bytes = served.signatures["serving_default"](image_bytes=tf.constant([rotated]))["probabilities"].numpy()
    by_pixels = served.signatures["predict_pixels"](images=tf.constant(pipeline_pixels[None].astype(np.float32)))["probabilities"].numpy()
    assert np.abs(by_bytes - keras_probabilities).max() < 1e-5
    assert np.abs(by_pixels - keras_probabilities).max() < 1e-5


def test_the_folder_loader_counts_rotated_photos_in_the_log(tmp_path, caplog):
    for name, orientation in (("a", 6), ("a", None), ("b", 3), ("b", None)):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{orientation}.jpg").write_bytes(_jpeg(orientation))
    before = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        with caplog.at_level("INFO", logger="absl"):
            folders.load_image_folder(str(tmp_path / "photos"), validation_fraction=0.0, test_fraction=0.0, min_images_per_class=1)
    finally:
        absl_logging.set_verbosity(before)
    assert any("2 photo(s) carry an EXIF orientation" in r.getMessage() for r in caplog.records)
