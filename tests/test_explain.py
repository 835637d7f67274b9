"""Grad-CAM finds the evidence: on images whose class is decided by a small coloured patch, the heat map peaks on the patch."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.vision.backbones import Backbone, small_cnn
from tl_keras.models.builders import compile_classifier
from tl_keras.vision.classifier import build_classifier, build_fusion_classifier
from tl_keras.vision.explain import GRAD_CAM, INPUT_GRADIENT, cam_source, grad_cam, overlay

SIDE, PATCH = 32, 6
COLOURS = np.array([[230, 40, 40], [40, 200, 40], [40, 60, 230]], dtype=np.uint8)


def patch_images(count: int, seed: int):
    """Grey noise with one coloured square at a random place; the square's colour is the class."""
    rng = np.random.default_rng(seed)
    images = np.repeat(rng.integers(60, 190, (count, SIDE, SIDE, 1)), 3, axis=-1).astype(np.uint8)
    labels = rng.integers(0, len(COLOURS), count)
    corners = rng.integers(0, SIDE - PATCH + 1, (count, 2))
    for image, label, (row, col) in zip(images, labels, corners):
        image[row : row + PATCH, col : col + PATCH] = COLOURS[label]
    return images, labels, corners


@pytest.fixture(scope="module")
def patch_model():
    keras.utils.set_random_seed(0)
    images, labels, _ = patch_images(600, seed=0)
    backbone = Backbone("small_cnn", small_cnn(input_shape=(SIDE, SIDE, 3), alpha=0.5), SIDE, "zero_one")
    model = compile_classifier(build_classifier(backbone, 3, dropout=0.0, freeze_batch_norm=False), "adam", 3e-3)
    model.fit(images, labels, batch_size=32, epochs=3, verbose=0)
    return model


@pytest.mark.slow  # several seconds: the full suite runs it
def test_the_heat_map_peaks_inside_the_deciding_patch(patch_model):
    images, labels, corners = patch_images(100, seed=1)
    assert np.mean(patch_model.predict(images, verbose=0).argmax(-1) == labels) >= 0.95, "the fixture model must have learned the task"
    heat = grad_cam(patch_model, images)
    assert heat.shape == (100, SIDE, SIDE) and heat.max() <= 1.0 and heat.min() >= 0.0
    peaks = np.array([np.unravel_index(h.argmax(), h.shape) for h in heat])
    inside = (peaks >= corners) & (peaks < corners + PATCH)
    assert np.mean(inside.all(axis=1)) >= 0.9


def test_masking_the_hottest_region_hurts_more_than_masking_a_random_one(patch_model):
    images, _, _ = patch_images(100, seed=2)
    predicted = patch_model.predict(images, verbose=0).argmax(-1)
    heat = grad_cam(patch_model, images, class_index=predicted)
    rng = np.random.default_rng(3)

    def masked(at):
        out = images.copy()
        for image, (row, col) in zip(out, at):
            row, col = np.clip([row, col], 0, SIDE - PATCH)
            image[row : row + PATCH, col : col + PATCH] = 128
        return out

    def probability_drop(at):
        after = patch_model.predict(masked(at), verbose=0)[np.arange(len(images)), predicted]
        before = patch_model.predict(images, verbose=0)[np.arange(len(images)), predicted]
        return float(np.mean(before - after))

    hottest = np.array([np.unravel_index(h.argmax(), h.shape) for h in heat]) - PATCH // 2
    random_places = rng.integers(0, SIDE - PATCH + 1, (len(images), 2))
    assert probability_drop(hottest) > probability_drop(random_places) + 0.3


def test_an_explicit_class_and_a_single_image_are_accepted(patch_model):
    images, _, _ = patch_images(2, seed=4)
    one = grad_cam(patch_model, images[0], class_index=2)
    assert one.shape == (SIDE, SIDE)
    with pytest.raises(ValueError, match="class_index must be in"):
        grad_cam(patch_model, images, class_index=3)


def test_fusion_models_get_one_map_from_all_branches():
    keras.utils.set_random_seed(0)
    branches = [
        Backbone(f"cnn{i}", small_cnn(input_shape=(size, size, 3), alpha=0.25, name=f"cnn{i}"), size, "zero_one")
        for i, size in ((0, 16), (1, 24))
    ]
    model = build_fusion_classifier(branches, 3)
    images = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3)).astype(np.uint8)
    heat = grad_cam(model, images)
    assert cam_source(model) == GRAD_CAM
    assert heat.shape == (3, 40, 48) and np.isfinite(heat).all()


def test_a_backbone_that_pools_inside_falls_back_to_input_gradients():
    keras.utils.set_random_seed(0)
    inner = small_cnn(input_shape=(16, 16, 3), alpha=0.25)
    pooled = keras.Sequential([inner, keras.layers.GlobalAveragePooling2D()], name="pooled_cnn")
    model = build_classifier(Backbone("pooled_cnn", pooled, 16, "zero_one"), 2)
    heat = grad_cam(model, np.full((2, 20, 20, 3), 100, np.uint8) + np.arange(20, dtype=np.uint8)[None, :, None, None])
    assert cam_source(model) == INPUT_GRADIENT
    assert heat.shape == (2, 20, 20) and heat.max() == pytest.approx(1.0)


def test_overlay_keeps_the_picture_shape():
    picture = overlay(np.zeros((5, 7, 3), np.uint8), np.linspace(0, 1, 35).reshape(5, 7))
    assert picture.shape == (5, 7, 3) and picture.dtype == np.uint8 and picture.max() > 0


class _ConvHubModule(tf.train.Checkpoint):
    """A local SavedModel in TF Hub's reusable form whose output is a spatial feature map (as image feature modules with maps are)."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], seed=[3, 4]), name="conv/kernel")
        self.variables = [self.kernel]
        self.trainable_variables = [self.kernel]
        self.regularization_losses = []

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, images):
        return tf.nn.relu(tf.nn.conv2d(images, self.kernel, strides=2, padding="SAME"))


def test_grad_cam_reaches_through_a_hub_backbone(tmp_path):
    from tl_keras.vision.backbones import load_backbone

    tf.saved_model.save(_ConvHubModule(), str(tmp_path / "hub_module"))
    keras.utils.set_random_seed(0)
    model = build_classifier(load_backbone(str(tmp_path / "hub_module"), None, image_size=24), 2)
    model.layers[-1].kernel.assign(
        np.abs(model.layers[-1].kernel.numpy())
    )  # every channel is evidence for both classes: maps must not vanish
    images = np.random.default_rng(0).integers(0, 256, (2, 30, 30, 3)).astype(np.uint8)
    heat = grad_cam(model, images, class_index=[0, 1])
    assert cam_source(model) == GRAD_CAM
    assert heat.shape == (2, 30, 30) and np.isfinite(heat).all() and heat.max() > 0
