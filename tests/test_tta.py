"""Test-time augmentation: the views are what they say, and the export's serving_tta signature equals the evaluation's average."""

import json

import numpy as np
import pytest
import tensorflow as tf


from tl_keras.vision import serving
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.vision.tta import predict_views, tta_views, view_count


@pytest.fixture(scope="module")
def classifier():
    tf.keras.utils.set_random_seed(0)
    return build_classifier(load_backbone("small_cnn", None, image_size=16), 3, name="tiny")


def test_flip_views_are_the_batch_and_its_mirror():
    images = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    original, mirrored = [v.numpy() for v in tta_views(tf.constant(images), "flip")]
    np.testing.assert_array_equal(original, images)
    np.testing.assert_array_equal(mirrored, images[:, :, ::-1])


def test_crop_views_keep_size_and_dtype_and_show_the_corners():
    images = np.zeros((1, 16, 16, 3), np.uint8)
    images[:, :8, :8] = 255  # a bright top-left quarter
    views = tta_views(tf.constant(images), "flip_crops")
    assert len(views) == view_count("flip_crops") == 10
    assert all(v.shape == images.shape and v.dtype == tf.uint8 for v in views)
    top_left, top_right = views[1].numpy(), views[2].numpy()
    assert top_left.mean() > images.mean() > top_right.mean()  # the top-left crop enlarges the bright quarter


def test_unknown_mode_is_refused_by_name():
    with pytest.raises(ValueError, match="tta='five' is not a test-time augmentation"):
        view_count("five")


@pytest.mark.slow  # several seconds: the full suite runs it
def test_serving_tta_signature_equals_the_evaluation_average(classifier, tmp_path):
    version = serving.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"], tta="flip_crops", warmup=False)
    card = json.loads((version / "assets.extra" / "model_card.json").read_text())
    assert card["signatures"]["serving_tta"]["views"] == 10
    pixels = np.random.default_rng(0).integers(
        0, 256, (2, 16, 16, 3), dtype=np.uint8
    )  # already at the model's size: no resampling differences
    encoded = [tf.io.encode_png(p).numpy() for p in pixels]
    loaded = tf.saved_model.load(str(version))
    served = loaded.signatures["serving_tta"](image_bytes=tf.constant(encoded))["probabilities"].numpy()
    np.testing.assert_allclose(served, predict_views(classifier, pixels, "flip_crops"), atol=1e-5)
    plain = loaded.signatures["serving_default"](image_bytes=tf.constant(encoded))["probabilities"].numpy()
    np.testing.assert_allclose(plain, classifier.predict(pixels, verbose=0), atol=1e-5)


def test_no_tta_signature_unless_asked(classifier, tmp_path):
    version = serving.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"], warmup=False)
    assert "serving_tta" not in tf.saved_model.load(str(version)).signatures


def test_flip_crops_views_contain_the_other_modes_views_in_order():
    images = tf.constant(np.random.default_rng(1).integers(0, 256, (1, 12, 10, 3), dtype=np.uint8))
    every = [v.numpy() for v in tta_views(images, "flip_crops")]
    for mode, positions in (("flip", [0, 5]), ("crops", [0, 1, 2, 3, 4])):
        for view, position in zip(tta_views(images, mode), positions):
            np.testing.assert_array_equal(view.numpy(), every[position])
