"""Feature fusion: two backbones with their own preprocessing, one head; phases reach both; export and TFLite unchanged."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.training.run_steps import train_settings
from tl_keras.config.run_config import recipe_config
from tl_keras.vision import tflite
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_fusion_classifier
from tl_keras.vision.serving import export_saved_model
from tl_keras.vision.layers import ImagePreprocessing
from tl_keras.training.two_phase import train_two_phase

CONFIG = recipe_config(
    "digits",
    frozen_epochs=1,
    fine_tune_epochs=0,
    batch_size=8,
    verbose=0,
    early_stopping_patience=0,
    learning_rate=1e-2,
    fine_tune_learning_rate=1e-3,
)


def _data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n).astype(np.int32)
    images = rng.integers(0, 60, size=(n, 20, 20, 3))
    images[..., 1] += labels[:, None, None] * 80
    return tf.data.Dataset.from_tensor_slices((images.astype(np.uint8), labels)).batch(8)


def _fusion(combine):
    keras.utils.set_random_seed(0)
    a = load_backbone("small_cnn", None, image_size=16)
    b = load_backbone("small_cnn", None, image_size=24, alpha=0.5, preprocessing="tf")
    b.layer.name = "small_cnn_b"
    return [a, b], build_fusion_classifier([a, b], 3, combine=combine, projection_width=16)


def _weights(layer):
    return [w.numpy().copy() for w in layer.weights]


@pytest.mark.slow
@pytest.mark.parametrize("combine", ["concat", "product"])
def test_phases_reach_both_backbones_only_when_fine_tuning(combine, tmp_path):
    backbones, model = _fusion(combine)
    modes = sorted(layer.mode for layer in model.layers if isinstance(layer, ImagePreprocessing))
    assert modes == ["tf", "zero_one"], "each backbone keeps its own normalisation"
    layers = [b.layer for b in backbones]
    before = [_weights(layer) for layer in layers]
    data = _data()
    train_two_phase(model, layers, data, data, train_settings(CONFIG), tmp_path / "frozen")
    for layer, old in zip(layers, before):
        assert all(np.array_equal(a, w.numpy()) for a, w in zip(old, layer.weights)), f"phase 1 changed {layer.name}"
    train_two_phase(
        model, layers, data, data, train_settings(dataclasses.replace(CONFIG, frozen_epochs=0, fine_tune_epochs=1)), tmp_path / "tuned"
    )
    for layer, old in zip(layers, before):
        kernels = [(a, w) for a, w in zip(old, layer.weights) if w.path.endswith("kernel")]
        assert all(not np.array_equal(a, w.numpy()) for a, w in kernels), f"phase 2 left {layer.name} unchanged"


@pytest.mark.slow
def test_fusion_model_exports_and_converts_like_any_classifier(tmp_path):
    _, model = _fusion("sum")
    images = next(iter(_data()))[0].numpy()
    version = export_saved_model(model, tmp_path / "exports", "fusion", ["a", "b", "c"], warmup=False)
    served = tf.saved_model.load(str(version)).signatures["predict_pixels"]
    expected = model.predict(images, verbose=0)
    np.testing.assert_allclose(served(images=tf.constant(images, tf.float32))["probabilities"].numpy(), expected, atol=1e-5)
    interpreter = tflite.TFLiteClassifier(tflite.convert(version, "float32", 20))
    np.testing.assert_allclose(interpreter.predict_one(images[0]), expected[0], atol=1e-5)


def test_fusion_refuses_one_backbone_or_unknown_combine():
    a = load_backbone("small_cnn", None, image_size=16)
    with pytest.raises(ValueError, match="at least two"):
        build_fusion_classifier([a], 3)
    with pytest.raises(ValueError, match="combine must be"):
        build_fusion_classifier([a, a], 3, combine="max")
