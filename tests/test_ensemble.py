"""Model fusion: an ensemble is the mean of its members, one model that exports like any other."""

import keras
import numpy as np
import pytest
import tensorflow as tf


from tl_keras.vision import serving
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.models.ensemble import build_ensemble, member_report


def _members():
    keras.utils.set_random_seed(0)
    small = build_classifier(load_backbone("small_cnn", None, image_size=16), 3, name="same_name")
    wide = build_classifier(load_backbone("small_cnn", None, image_size=24, alpha=0.5), 3, name="same_name")
    return [small, wide]


@pytest.mark.slow
def test_ensemble_output_is_the_mean_of_its_members(tmp_path):
    members = _members()
    ensemble = build_ensemble(members)
    images = np.random.default_rng(0).integers(0, 256, size=(4, 30, 20, 3), dtype=np.uint8)
    expected = np.mean([m.predict(images, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(ensemble.predict(images, verbose=0), expected, atol=1e-6)
    weighted = build_ensemble(members, weights=[3, 1])
    expected = 0.75 * members[0].predict(images, verbose=0) + 0.25 * members[1].predict(images, verbose=0)
    np.testing.assert_allclose(weighted.predict(images, verbose=0), expected, atol=1e-6)

    exported = serving.export_saved_model(ensemble, tmp_path, "ensemble", ["a", "b", "c"], warmup=False)
    served = tf.saved_model.load(str(exported)).signatures["predict_pixels"]
    got = served(images=tf.constant(images, tf.float32))["probabilities"].numpy()
    np.testing.assert_allclose(got, ensemble.predict(images, verbose=0), atol=1e-5)

    data = tf.data.Dataset.from_tensor_slices((images, np.array([0, 1, 2, 0]))).batch(2)
    report = member_report(members, ensemble, data)
    assert report["images"] == 4 and len(report["members"]) == 2
    predicted = ensemble.predict(images, verbose=0).argmax(axis=1)
    assert report["ensemble_accuracy"] == pytest.approx(float(np.mean(predicted == np.array([0, 1, 2, 0]))))


def test_ensemble_refuses_mismatched_members():
    small, _ = _members()
    other = build_classifier(load_backbone("small_cnn", None, image_size=16), 4)
    with pytest.raises(ValueError, match="different numbers of classes"):
        build_ensemble([small, other])
    with pytest.raises(ValueError, match="at least two"):
        build_ensemble([small])
    with pytest.raises(ValueError, match="non-negative"):
        build_ensemble([small, small], weights=[1, -1])


@pytest.mark.slow
def test_evaluate_script_scores_an_ensemble(tmp_path, image_folder):
    """evaluate.py asked the model for its backbone, which an ensemble or a fusion model does not have, and refused it."""
    import json
    import os
    import subprocess
    import sys

    from conftest import REPO

    ensemble = build_ensemble(_members())
    ensemble.save(tmp_path / "ensemble.keras")
    (tmp_path / "labels.txt").write_text("blue\ngreen\nred\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "evaluate.py"), f"--model={tmp_path / 'ensemble.keras'}",
         f"--image_dir={image_folder}", f"--output_dir={tmp_path / 'evaluation'}"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert metrics["examples"] == 36 and f"accuracy {metrics['accuracy']:.4f}" in result.stdout
