"""The modality seam: an encoder that is neither a CNN nor a text model (Dense layers over float vectors) goes through the core.

What the core asks of an encoder: a functional classifier `input -> encoder
-> Dropout -> Dense softmax head` and the encoder layer itself (what
freezes, unfreezes and gets layer-wise rates). Both phases (the first on
cached features), resume after a crash, calibration, evaluation and a
SavedModel export run on it here with the image code made to fail if
touched.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.config.settings import FINE_TUNE, FROZEN, TrainSettings
from tl_keras.evaluation.calibration import apply_temperature, choose_temperature, fold_temperature
from tl_keras.evaluation.metrics import predict_dataset
from tl_keras.evaluation.predictions import SplitReport, evaluate_predictions
from tl_keras.export.endpoints import MODEL_INPUT, export_classifier, model_input_endpoint
from tl_keras.export.signatures import EXTRA_ASSETS, LABELS_FILE, MODEL_CARD, SERVING_SIGNATURE
from tl_keras.models.anatomy import anatomy
from tl_keras.training import phase as phase_lib
from tl_keras.training.two_phase import train_two_phase

CLASSES = ["low", "middle", "high"]


class _Crash(Exception):
    pass


@pytest.fixture(autouse=True)
def no_image_code(monkeypatch):
    """Every entry to pixel handling fails the test: the core must not need it for this encoder."""
    from tl_keras.vision import pipeline
    from tl_keras.vision import augment, orientation, pixels, tta

    def touched(*args, **kwargs):
        raise AssertionError("image code was called for a non-image encoder")

    for module, name in ((orientation, "decode_upright"), (pipeline, "decode_file"), (pipeline, "resize_uint8"),
                         (augment, "build_augmentation"), (tta, "tta_views"), (pixels, "to_uint8"), (pixels, "to_uint8_array")):
        monkeypatch.setattr(module, name, touched)


def _toy_classifier(seed: int = 0):
    keras.utils.set_random_seed(seed)
    layers = [keras.layers.Dense(16, activation="relu", name="enc_1"), keras.layers.Dense(12, activation="relu", name="enc_2")]
    encoder = keras.Sequential([keras.Input((8,)), *layers], name="toy_encoder")
    inputs = keras.Input((8,), name="vector")
    features = encoder(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(keras.layers.Dropout(0.0, name="dropout")(features))
    return keras.Model(inputs, outputs, name="toy"), encoder


def _blobs(count: int, seed: int):
    """Three classes of 8-d float vectors around fixed centres: learnable, not trivially."""
    centres = np.random.default_rng(123).normal(0.0, 1.0, (3, 8))
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 3
    return (centres[labels] + rng.normal(0.0, 0.8, (count, 8))).astype(np.float32), labels.astype(np.int32)


def _batches(vectors, labels):
    return tf.data.Dataset.from_tensor_slices((vectors, labels)).batch(16)


SETTINGS = TrainSettings(
    frozen_epochs=3, fine_tune_epochs=3, fine_tune_min_steps=0, unfreeze="all", learning_rate=1e-2, fine_tune_learning_rate=1e-3,
    layer_rate_bottom=0.5, early_stopping_patience=0, verbose=0, seed=0,
)


def _train(run_dir, settings=SETTINGS):
    model, encoder = _toy_classifier()
    train, validation = _batches(*_blobs(96, 1)), _batches(*_blobs(48, 2))
    return model, train_two_phase(model, encoder, train, validation, settings, run_dir, train_examples=96)


@pytest.mark.slow  # several seconds: the full suite runs it
def test_both_phases_calibration_evaluation_and_a_saved_model(tmp_path):
    model, result = _train(tmp_path / "run")
    assert anatomy(model).backbone.name == "toy_encoder"
    assert [p.name for p in result.phases] == [FROZEN, FINE_TUNE] and result.phases[0].on_cached_features
    test_x, test_y = _blobs(90, 3)
    probabilities, labels = predict_dataset(model, _batches(test_x, test_y))
    accuracy = float(np.mean(probabilities.argmax(1) == labels))
    assert accuracy > 0.7, f"the toy encoder should learn separable blobs (chance 0.33), got {accuracy:.3f}"

    validation = predict_dataset(model, _batches(*_blobs(48, 2)))
    temperature, decision = choose_temperature(*validation)
    assert decision["validation_examples"] == 48 and temperature == 1.0  # below the 200 examples a fit needs
    fold_temperature(model, 2.0)
    folded, _ = predict_dataset(model, _batches(test_x, test_y))
    np.testing.assert_allclose(folded, apply_temperature(probabilities, 2.0), atol=1e-5)

    metrics = evaluate_predictions(folded, labels, CLASSES, tmp_path / "evaluation", SplitReport("test"), noun="vectors")
    written = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert written["accuracy"] == pytest.approx(accuracy) == metrics["accuracy"]
    assert "90 vectors of the test split" in (tmp_path / "evaluation" / "report.html").read_text()

    folder = export_classifier(model, tmp_path / "exports", "toy", CLASSES, [model_input_endpoint(model)], card={"model_kind": "vectors"})
    served = tf.saved_model.load(str(folder)).signatures[SERVING_SIGNATURE](**{MODEL_INPUT: tf.constant(test_x)})
    np.testing.assert_allclose(served["probabilities"].numpy(), folded, atol=1e-5)
    assert (folder / EXTRA_ASSETS / LABELS_FILE).read_text().split() == CLASSES
    card = json.loads((folder / EXTRA_ASSETS / MODEL_CARD).read_text())
    assert card["model_kind"] == "vectors" and card["signatures"][SERVING_SIGNATURE]["inputs"] == {MODEL_INPUT: "float32 [N, 8]"}


@pytest.mark.slow  # several seconds: the full suite runs it
def test_a_crash_in_fine_tuning_resumes_to_the_uninterrupted_weights(tmp_path, monkeypatch):
    import dataclasses

    straight, _ = _train(tmp_path / "straight")
    real_run_phase = phase_lib.run_phase

    class CrashInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:  # the fine-tune phase's second epoch (the frozen phase is one fit: no epochs)
                raise _Crash("power cut")

    def crashing_run_phase(model, name, *args, extra_callbacks=(), **kwargs):
        if name == FINE_TUNE:
            extra_callbacks = (*extra_callbacks, CrashInSecondEpoch())
        return real_run_phase(model, name, *args, extra_callbacks=extra_callbacks, **kwargs)

    monkeypatch.setattr(phase_lib, "run_phase", crashing_run_phase)
    with pytest.raises(_Crash):
        _train(tmp_path / "crashed")
    monkeypatch.setattr(phase_lib, "run_phase", real_run_phase)
    resumed, result = _train(tmp_path / "crashed", dataclasses.replace(SETTINGS, resume=True))
    assert result.phases[1].epochs_run == SETTINGS.fine_tune_epochs
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
