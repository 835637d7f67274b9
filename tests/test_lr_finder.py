"""The learning-rate range test: a sensible suggestion, weights put back, divergence stops it."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.training import lr_finder


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(512, 8)).astype("float32")
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype("int32")
    data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(32)
    inputs = keras.Input((8,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    return model, data


def test_range_test_suggests_a_useful_rate_and_leaves_the_weights_alone():
    keras.utils.set_random_seed(0)
    model, data = _problem()
    before = [w.copy() for w in model.get_weights()]
    test = lr_finder.lr_range_test(model, data, optimizer="sgd", min_lr=1e-5, max_lr=100.0, steps=120)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert test.learning_rates[0] == pytest.approx(1e-5) and len(test.learning_rates) == len(test.losses) == len(test.smoothed)
    assert np.all(np.diff(test.learning_rates) > 0)
    assert 1e-3 <= test.suggestion <= 10.0, test.suggestion
    # Training at the suggestion works: the loss falls well below chance in a few steps.
    model.compile(optimizer=keras.optimizers.SGD(test.suggestion), loss="sparse_categorical_crossentropy")
    model.fit(data, epochs=1, steps_per_epoch=60, verbose=0, shuffle=False)
    assert model.evaluate(data, steps=8, verbose=0) < 0.5, "chance is 0.69"


def test_a_diverging_loss_ends_the_test_early():
    keras.utils.set_random_seed(0)
    model, data = _problem()
    test = lr_finder.lr_range_test(model, data, optimizer="sgd", min_lr=1e-3, max_lr=1e6, steps=200, diverge=2.0)
    assert len(test.losses) < 200


def test_suggestion_needs_enough_steps():
    assert lr_finder.suggest([1e-3] * 5, [1.0] * 5) is None


@pytest.mark.slow
def test_auto_fine_tune_rate_is_found_recorded_and_reused(tmp_path):
    from tl_keras.config.run_config import recipe_config
    from tl_keras.run import run_experiment

    config = recipe_config("digits", weights="none", frozen_epochs=1, fine_tune_epochs=1, fine_tune_learning_rate=0.0,
                           compare_scratch=False, export=False, verbose=0, run_dir=str(tmp_path / "run"))
    run_experiment(config)
    record = json.loads((tmp_path / "run" / "lr_find.json").read_text())
    assert set(record) == {"fine_tune"} and record["fine_tune"]["rate"] > 0
    assert (tmp_path / "run" / "lr_find_fine_tune.png").is_file()
    assert dataclasses.replace(config).fine_tune_learning_rate == 0.0
