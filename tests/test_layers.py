"""In-model preprocessing equals Keras Applications' own preprocess_input; the loss smooths labels."""

import keras
import numpy as np
import pytest

from tl_keras.vision.layers import ImagePreprocessing
from tl_keras.models.losses import SparseCrossentropy

PIXELS = np.random.default_rng(0).integers(0, 256, size=(2, 5, 5, 3)).astype("float32")


@pytest.mark.parametrize(
    "mode, reference",
    [
        ("tf", keras.applications.mobilenet_v2.preprocess_input),
        ("torch", keras.applications.densenet.preprocess_input),
        ("caffe", keras.applications.resnet50.preprocess_input),
    ],
)
def test_modes_match_keras_applications(mode, reference):
    ours = ImagePreprocessing(mode)(PIXELS.astype("uint8"))
    np.testing.assert_allclose(ours, reference(PIXELS.copy()), rtol=1e-5, atol=1e-4)


def test_zero_one_and_none():
    np.testing.assert_allclose(ImagePreprocessing("zero_one")(PIXELS), PIXELS / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ImagePreprocessing("none")(PIXELS), PIXELS)
    with pytest.raises(ValueError, match="unknown preprocessing mode"):
        ImagePreprocessing("bgr")


def test_label_smoothing_matches_hand_computation():
    probabilities = np.array([[0.7, 0.2, 0.1]], dtype="float32")
    smoothing = 0.3
    target = np.array([0.3 / 3 + 0.7, 0.1, 0.1])
    expected = -np.sum(target * np.log(probabilities[0]))
    loss = SparseCrossentropy(label_smoothing=smoothing)(np.array([0]), probabilities)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    plain = SparseCrossentropy()(np.array([0]), probabilities)
    assert float(plain) == pytest.approx(-np.log(0.7), rel=1e-5)
