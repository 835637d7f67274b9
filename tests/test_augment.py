"""Each augmentation flag means what its help says; augmentation never reaches inference or exports."""

import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from tl_keras.config.run_config import recipe_config
from tl_keras.config.settings import AugmentSettings, settings_from
from tl_keras.models.builders import with_augmentation
from tl_keras.vision.augment import build_augmentation, mix_batches
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier

BASE = recipe_config("digits")


def _augment(images, **flags):
    layer = build_augmentation(settings_from(AugmentSettings, dataclasses.replace(BASE, **flags)))
    return np.stack([layer(images, training=True).numpy() for _ in range(40)])


def _bar(length=30, size=64):
    image = np.zeros((1, size, size, 3), np.uint8)
    image[:, size // 2 - 1 : size // 2 + 1, (size - length) // 2 : (size + length) // 2] = 255
    return image


def _orientation_degrees(image):
    ys, xs = np.nonzero(image[..., 0] > 127)
    x, y = xs - xs.mean(), ys - ys.mean()
    return math.degrees(0.5 * math.atan2(2 * np.mean(x * y), np.mean(x * x) - np.mean(y * y)))


def test_rotation_never_exceeds_the_flag_and_does_rotate():
    angles = [abs(_orientation_degrees(img[0])) for img in _augment(_bar(), rotation_degrees=10)]
    assert max(angles) <= 10.0 + 1.0, "1 degree of slack for pixel rounding"
    assert max(angles) >= 5.0


def test_horizontal_flip_only_mirrors_left_right():
    image = np.zeros((1, 8, 8, 3), np.uint8)
    image[:, 1, 2] = 255
    outputs = {tuple(np.argwhere(img[0, ..., 0] > 0)[0]) for img in _augment(image, flip="horizontal")}
    assert outputs == {(1, 2), (1, 5)}


def test_brightness_shift_is_bounded_by_the_flag():
    image = np.full((1, 16, 16, 3), 128, np.uint8)
    shifts = [float(img.mean()) - 128 for img in _augment(image, brightness=0.1)]
    assert max(abs(s) for s in shifts) <= 0.1 * 255 + 0.5
    assert max(abs(s) for s in shifts) >= 0.05 * 255


def test_contrast_factor_is_bounded_by_the_flag():
    image = np.zeros((1, 16, 16, 3), np.uint8)
    image[:, :, :8] = 100
    image[:, :, 8:] = 140
    ratios = [float(img[0, :, 8:].mean() - img[0, :, :8].mean()) / 40.0 for img in _augment(image, contrast=0.2)]
    assert min(ratios) >= 0.8 - 0.05 and max(ratios) <= 1.2 + 0.05
    assert max(ratios) - min(ratios) > 0.1


def test_translation_is_bounded_by_the_flag():
    image = np.zeros((1, 40, 40, 3), np.uint8)
    image[:, 18:22, 18:22] = 255
    shifts = []
    for img in _augment(image, translation=0.1):
        ys, xs = np.nonzero(img[0, ..., 0] > 127)
        shifts.append(max(abs(ys.mean() - 19.5), abs(xs.mean() - 19.5)))
    assert max(shifts) <= 0.1 * 40 + 1.0 and max(shifts) >= 1.0


def test_zoom_scales_within_the_flag():
    image = np.zeros((1, 40, 40, 3), np.uint8)
    image[:, 15:25, 15:25] = 255
    scales = [math.sqrt(float((img[0, ..., 0] > 127).sum()) / 100.0) for img in _augment(image, zoom=0.2)]
    assert min(scales) >= 1 / 1.2 - 0.1 and max(scales) <= 1 / 0.8 + 0.1
    assert max(scales) - min(scales) > 0.1


def test_augmentation_is_off_at_inference_and_absent_from_the_classifier(tiny_batch):
    config = dataclasses.replace(BASE, flip="horizontal", rotation_degrees=30, brightness=0.3)
    classifier = build_classifier(load_backbone("small_cnn", None, image_size=16), 3)
    trainer = with_augmentation(classifier, build_augmentation(settings_from(AugmentSettings, config)))
    np.testing.assert_allclose(trainer.predict(tiny_batch, verbose=0), classifier.predict(tiny_batch, verbose=0), atol=1e-6)
    assert not any("augmentation" in layer.name for layer in classifier.layers)
    assert build_augmentation(settings_from(AugmentSettings, BASE)) is None
    assert with_augmentation(classifier, None) is classifier


def test_mixup_blends_images_and_labels_with_the_same_weight():
    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (0, 200)])
    batch = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1], np.int32))).batch(2)
    for _ in range(3):
        mixed, soft = next(iter(mix_batches(batch, 2, mixup_alpha=0.4, seed=1)))
        np.testing.assert_allclose(soft.numpy().sum(axis=1), 1.0, atol=1e-6)
        # pixel value = 200 * weight of class 1, up to rounding.
        np.testing.assert_allclose(mixed.numpy()[:, 0, 0, 0], 200 * soft.numpy()[:, 1], atol=0.6)


def test_cutmix_label_weight_is_the_pasted_share():
    images = np.stack([np.zeros((10, 10, 3), np.uint8), np.full((10, 10, 3), 255, np.uint8)])
    batch = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1], np.int32))).batch(2)
    mixed, soft = next(iter(mix_batches(batch, 2, cutmix_alpha=1.0, seed=3)))
    share_white = (mixed.numpy()[..., 0] == 255).mean(axis=(1, 2))
    np.testing.assert_allclose(soft.numpy()[:, 1], share_white, atol=1e-6)


def test_invalid_augmentation_flags_are_refused():
    from tl_keras.config.run_config import ConfigError

    with pytest.raises(ConfigError, match="--rotation_degrees"):
        dataclasses.replace(BASE, rotation_degrees=200).validate()
    with pytest.raises(ConfigError, match="--flip"):
        dataclasses.replace(BASE, flip="diagonal").validate()
