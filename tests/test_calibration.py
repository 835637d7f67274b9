"""Temperature scaling: ECE is computed right, T is found, folding it into the head gives the scaled probabilities exactly."""

import keras
import numpy as np
import pytest

from tl_keras.vision.backbones import Backbone, small_cnn
from tl_keras.vision.classifier import build_classifier
from tl_keras.evaluation.calibration import (
    apply_temperature,
    calibration_summary,
    choose_temperature,
    expected_calibration_error,
    fit_temperature,
    fold_temperature,
    likelihood_ratio,
    negative_log_likelihood,
    plot_reliability,
)


def over_confident(count: int, seed: int, temperature: float = 3.0):
    """Labels drawn from softmax(z), probabilities reported as softmax(z * T): confident beyond their accuracy."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (count, 4))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(4, p=p) for p in true])
    reported = np.exp(logits * temperature)
    return (reported / reported.sum(1, keepdims=True)).astype(np.float32), labels


def test_ece_of_a_hand_worked_example():
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]], np.float32)
    labels = np.array([0, 1, 0, 0])
    # Bin of 0.9: accuracy 0.5, gap 0.4; bin of 0.6: accuracy 1.0, gap 0.4.
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.4)
    assert expected_calibration_error(np.eye(2, dtype=np.float32), np.array([0, 1])) == pytest.approx(0.0)


def test_the_fitted_temperature_undoes_over_confidence_and_keeps_top1():
    probabilities, labels = over_confident(4000, seed=0)
    temperature = fit_temperature(probabilities, labels)
    assert temperature == pytest.approx(3.0, rel=0.1)
    test_probabilities, test_labels = over_confident(2000, seed=1)
    summary = calibration_summary(test_probabilities, test_labels, temperature, "validation", "test")
    assert summary["ece_after"] < summary["ece_before"] / 3
    assert summary["nll_after"] < summary["nll_before"]
    assert summary["top1_unchanged"]


def test_a_clear_mis_calibration_is_adopted():
    probabilities, labels = over_confident(400, seed=3)
    temperature, decision = choose_temperature(probabilities, labels)
    assert decision["adopted"] and decision["likelihood_ratio"] > 100 * decision["critical_value"]
    assert decision["halves_improved"] == [True, True]  # recorded beside the rule
    assert temperature == decision["fitted_temperature"] > 2.0


def test_the_likelihood_ratio_is_twice_the_total_nll_gain():
    probabilities, labels = over_confident(50, seed=4, temperature=2.0)
    assert likelihood_ratio(probabilities, labels, 1.0) == 0.0
    gain = negative_log_likelihood(probabilities, labels) - negative_log_likelihood(apply_temperature(probabilities, 2.0), labels)
    assert likelihood_ratio(probabilities, labels, 2.0) == pytest.approx(2 * 50 * gain, rel=1e-5)


def test_an_already_calibrated_model_keeps_temperature_one_at_least_19_times_in_20():
    declined = []
    for seed in range(40):
        probabilities, labels = over_confident(300, seed=10 + seed, temperature=1.0)
        temperature, decision = choose_temperature(probabilities, labels)
        declined.append(temperature == 1.0 and not decision["adopted"])
    # The 5% likelihood-ratio test alone declines 38 of 40 on average (the halves check declines more); fewer than 33 would be
    # a 1-in-1000 event.
    assert sum(declined) >= 33


def test_a_small_validation_split_never_changes_the_temperature_even_when_the_fit_looks_convincing():
    """Measured on photos: on 100-120 validation images, adopting a passing fit raised test ECE (benchmarks/calibration.py)."""
    probabilities, labels = over_confident(150, seed=3)
    temperature, decision = choose_temperature(probabilities, labels)
    assert decision["likelihood_ratio"] > 10 * decision["critical_value"] and all(decision["halves_improved"])
    assert temperature == 1.0 and not decision["adopted"] and decision["min_examples"] == 200
    assert choose_temperature(*over_confident(250, seed=3))[1]["adopted"]  # the same mis-calibration, on more images


def test_a_fit_that_one_half_does_not_confirm_is_not_adopted(monkeypatch):
    from tl_keras.evaluation import calibration

    probabilities, labels = over_confident(400, seed=3)
    monkeypatch.setattr(calibration, "halves_check", lambda *args, **kwargs: [True, False])
    temperature, decision = choose_temperature(probabilities, labels)
    assert temperature == 1.0 and not decision["adopted"]
    assert calibration.why_not_adopted(decision) == "a temperature fitted on one half of validation did not lower the other half's NLL"


def test_folding_into_the_head_returns_the_scaled_probabilities():
    keras.utils.set_random_seed(0)
    model = build_classifier(Backbone("cnn", small_cnn(input_shape=(16, 16, 3), alpha=0.25), 16, "zero_one"), 3, dropout=0.0)
    head = model.layers[-1]
    head.kernel.assign(head.kernel * 20.0)  # a sharp head, so scaling changes the numbers visibly
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3)).astype(np.uint8)
    before = model.predict(images, verbose=0)
    fold_temperature(model, 2.5)
    after = model.predict(images, verbose=0)
    np.testing.assert_allclose(after, apply_temperature(before, 2.5), atol=1e-5)
    assert np.array_equal(before.argmax(1), after.argmax(1))
    with pytest.raises(ValueError, match="positive"):
        fold_temperature(model, 0.0)


def test_reliability_plot_is_written(tmp_path):
    probabilities, labels = over_confident(300, seed=2)
    path = plot_reliability(
        {"before": (probabilities, labels), "after": (apply_temperature(probabilities, 3.0), labels)}, tmp_path / "r.png"
    )
    assert path.stat().st_size > 5000


@pytest.mark.slow
def test_served_and_tflite_probabilities_carry_the_folded_temperature(tmp_path):
    import tensorflow as tf

    from tl_keras.vision.serving import export_saved_model
    from tl_keras.vision.tflite import TFLiteClassifier, convert

    keras.utils.set_random_seed(1)
    model = build_classifier(Backbone("cnn", small_cnn(input_shape=(16, 16, 3), alpha=0.25), 16, "zero_one"), 3, dropout=0.0)
    model.layers[-1].kernel.assign(model.layers[-1].kernel * 20.0)
    images = np.random.default_rng(1).integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
    expected = apply_temperature(model.predict(images, verbose=0), 0.6)
    fold_temperature(model, 0.6)
    version = export_saved_model(model, tmp_path, "calibrated", ["a", "b", "c"], warmup=False)
    served = tf.saved_model.load(str(version)).signatures["predict_pixels"](images=tf.constant(images, tf.float32))["probabilities"].numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5)
    phone = TFLiteClassifier(convert(version, "float32", 16)).predict(images)
    np.testing.assert_allclose(phone, expected, atol=1e-5)


@pytest.mark.parametrize("count, reason", [
    (100, "validation holds 100 examples, fewer than the 200 a trustworthy fit needs"),
    (300, "is below 3.84"),
])
def test_the_report_says_why_a_fitted_temperature_was_not_adopted(count, reason):
    from tl_keras.evaluation.report import _calibration_text

    probabilities, labels = over_confident(count, seed=11, temperature=1.0)
    temperature, decision = choose_temperature(probabilities, labels)
    summary = {**calibration_summary(probabilities, labels, temperature, "validation", "test"), **decision}
    text = _calibration_text(summary)
    assert not decision["adopted"] and reason in text and "keeps T = 1" in text
