"""Two-phase training: what each phase may and may not change, and which weights are kept."""

import dataclasses
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.training.run_steps import train_settings
from tl_keras.config.run_config import recipe_config
from tl_keras.config.settings import AugmentSettings, settings_from
from tl_keras.vision.backbones import load_backbone
from tl_keras.models.anatomy import leaf_layers
from tl_keras.vision.classifier import build_classifier
from tl_keras.training.two_phase import FINE_TUNE, FROZEN, train_from_scratch, train_two_phase, unfreeze_backbone

CONFIG = recipe_config("digits", frozen_epochs=2, fine_tune_epochs=2, batch_size=8, verbose=0, early_stopping_patience=0,
                   learning_rate=1e-2, fine_tune_learning_rate=1e-3)


def _data(n=32, size=16, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n).astype(np.int32)
    images = rng.integers(0, 60, size=(n, size, size, 3))
    images[..., 0] += labels[:, None, None] * 80  # learnable: class sets the red level
    ds = tf.data.Dataset.from_tensor_slices((images.astype(np.uint8), labels))
    return ds.batch(8), ds.batch(16)


def _classifier():
    keras.utils.set_random_seed(0)
    backbone = load_backbone("small_cnn", None, image_size=16)
    return backbone, build_classifier(backbone, 3)


def _snapshot(layer):
    return {w.path: w.numpy().copy() for w in layer.weights}


@pytest.mark.slow
def test_frozen_phase_leaves_every_backbone_weight_unchanged(tmp_path):
    backbone, model = _classifier()
    train, val = _data()
    before = _snapshot(backbone.layer)
    head_before = model.get_layer("head").kernel.numpy().copy()
    train_two_phase(model, backbone.layer, train, val, train_settings(dataclasses.replace(CONFIG, fine_tune_epochs=0)), tmp_path)
    for path, value in _snapshot(backbone.layer).items():
        np.testing.assert_array_equal(value, before[path], err_msg=path)
    assert not np.allclose(model.get_layer("head").kernel.numpy(), head_before)


@pytest.mark.slow
def test_fine_tune_phase_moves_unfrozen_weights_but_not_batchnorm_statistics(tmp_path):
    backbone, model = _classifier()
    train, val = _data()
    before = _snapshot(backbone.layer)
    config = dataclasses.replace(CONFIG, frozen_epochs=1, monitor="val_loss")
    result = train_two_phase(model, backbone.layer, train, val, train_settings(config), tmp_path)
    # Load the fine-tune checkpoint, whatever phase won, to inspect phase 2's effect.
    model.load_weights(result.phases[1].weights_path)
    after = _snapshot(backbone.layer)
    moving = [p for p in before if "moving_" in p]
    gammas = [p for p in before if p.endswith("gamma")]
    kernels = [p for p in before if p.endswith("kernel")]
    assert moving and gammas and kernels
    for path in moving + gammas:
        np.testing.assert_array_equal(after[path], before[path], err_msg=f"{path} must stay frozen")
    assert all(not np.allclose(after[p], before[p]) for p in kernels), "every conv kernel is unfrozen by --unfreeze=all"


@pytest.mark.slow
def test_unfreeze_top_n_trains_only_those_layers(tmp_path):
    backbone, model = _classifier()
    train, val = _data()
    before = _snapshot(backbone.layer)
    config = dataclasses.replace(CONFIG, frozen_epochs=1, unfreeze="3")
    result = train_two_phase(model, backbone.layer, train, val, train_settings(config), tmp_path)
    model.load_weights(result.phases[1].weights_path)
    after = _snapshot(backbone.layer)
    changed = sorted(p for p in before if not np.array_equal(before[p], after[p]))
    # Top three layers of small_cnn: conv4, bn4 (kept frozen), relu4.
    assert changed == ["conv4/kernel"]


def test_unfreeze_specs_count_layers_like_the_keras_tutorial():
    backbone, _ = _classifier()
    model_layers = backbone.layer.layers  # what the tutorial's base_model.layers[K:] indexes: the InputLayer is layers[0]
    assert isinstance(model_layers[0], keras.layers.InputLayer)
    expected = [layer.name for layer in model_layers[12:] if not isinstance(layer, keras.layers.BatchNormalization)]
    assert unfreeze_backbone(backbone.layer, "from:12") == expected
    assert unfreeze_backbone(backbone.layer, "from:1")[0] == model_layers[1].name
    with pytest.raises(ValueError, match="has only"):
        unfreeze_backbone(backbone.layer, f"from:{len(model_layers)}")


@pytest.mark.slow
def test_best_phase_is_kept_and_history_records_both(tmp_path):
    backbone, model = _classifier()
    train, val = _data()
    # A fine-tune learning rate this large wrecks the network: phase 1 must win.
    # head_init=random: a frozen phase of Keras epochs, so that epochs count on across phases.
    config = dataclasses.replace(CONFIG, fine_tune_learning_rate=50.0, fine_tune_optimizer="sgd", monitor="val_loss", head_init="random")
    result = train_two_phase(model, backbone.layer, train, val, train_settings(config), tmp_path)
    assert result.kept_phase == FROZEN
    kept = model.evaluate(val, verbose=0, return_dict=True)["loss"]
    assert kept == pytest.approx(result.kept_value, rel=1e-4)
    history = json.loads((tmp_path / "history.json").read_text())
    assert [p["name"] for p in history["phases"]] == [FROZEN, FINE_TUNE]
    assert history["phases"][1]["first_epoch"] == 3, "epochs count on across phases"
    assert history["kept_phase"] == FROZEN
    fine_tune = history["phases"][1]
    # Either it diverged (no finite score at all) or it scored worse.
    assert fine_tune["best_value"] is None or history["change_from_frozen"] > 0


@pytest.mark.slow
def test_scratch_training_trains_batchnorm_and_every_layer(tmp_path):
    keras.utils.set_random_seed(0)
    backbone = load_backbone("small_cnn", None, image_size=16)
    model = build_classifier(backbone, 3, freeze_batch_norm=False)
    train, val = _data()
    before = _snapshot(backbone.layer)
    result = train_from_scratch(model, train, val, train_settings(CONFIG), tmp_path, epochs=2)
    after = _snapshot(backbone.layer)
    assert result.kept_phase == "scratch"
    assert all(not np.array_equal(before[p], after[p]) for p in before if "moving_mean" in p or p.endswith("kernel"))


@pytest.mark.slow
def test_scratch_training_with_augmentation_leaves_the_model_ready_to_evaluate(tmp_path):
    from tl_keras.vision.augment import build_augmentation

    keras.utils.set_random_seed(0)
    model = build_classifier(load_backbone("small_cnn", None, image_size=16), 3, freeze_batch_norm=False)
    train, val = _data()
    augmentation = build_augmentation(settings_from(AugmentSettings, dataclasses.replace(CONFIG, flip="horizontal")))
    train_from_scratch(model, train, val, train_settings(CONFIG), tmp_path, epochs=1, augmentation=augmentation)
    loss, accuracy = model.evaluate(val, verbose=0)  # the wrapper was compiled, not the model
    labels = np.concatenate([y for _, y in val.as_numpy_iterator()])
    assert accuracy == pytest.approx(float(np.mean(model.predict(val, verbose=0).argmax(axis=1) == labels)))
    assert np.isfinite(loss)


@pytest.mark.slow
def test_unfreeze_schedule_grows_the_trainable_set_at_the_stated_epochs(tmp_path):
    backbone, model = _classifier()
    train, val = _data()
    config = dataclasses.replace(CONFIG, frozen_epochs=1, fine_tune_epochs=5, unfreeze_schedule="3,9,all", head_init="random")
    result = train_two_phase(model, backbone.layer, train, val, train_settings(config), tmp_path)
    stages = result.phases[1:]
    assert [p.name for p in stages] == ["fine_tune_1", "fine_tune_2", "fine_tune_3"]
    assert [p.first_epoch for p in stages] == [2, 3, 5], "5 epochs over 3 stages: 1, 2, 2 (remainder to the last)"
    assert [p.epochs_run for p in stages] == [1, 2, 2]
    counts = [p.trainable_weights for p in stages]
    assert result.phases[0].trainable_weights < counts[0] < counts[1] < counts[2]
    history = json.loads((tmp_path / "history.json").read_text())
    assert [p["name"] for p in history["phases"]] == ["frozen", "fine_tune_1", "fine_tune_2", "fine_tune_3"]


def test_a_fine_tune_spec_past_the_backbone_is_refused_before_training():
    from tl_keras.config.run_config import ConfigError
    from tl_keras.training.freezing import check_unfreeze_fits

    backbone, _ = _classifier()
    check_unfreeze_fits(backbone.layer, train_settings(dataclasses.replace(CONFIG, unfreeze="from:3")))
    with pytest.raises(ConfigError, match=r"--unfreeze: 'from:100' starts past the backbone's \d+ layers"):
        check_unfreeze_fits(backbone.layer, train_settings(dataclasses.replace(CONFIG, unfreeze="from:100")))
    check_unfreeze_fits(backbone.layer, train_settings(dataclasses.replace(CONFIG, unfreeze="from:100", fine_tune_epochs=0)))


@pytest.mark.slow
def test_each_unfreezing_stage_starts_from_the_previous_stages_best_epoch(tmp_path, monkeypatch):
    from tl_keras.training import phase as training

    backbone, model = _classifier()
    train, val = _data()
    loaded = []
    real_load = training.load_weights_quietly
    monkeypatch.setattr(training, "load_weights_quietly", lambda m, path: loaded.append(str(path)) or real_load(m, path))
    seen_best = []
    real_run_phase = training.run_phase

    def recording_run_phase(*args, **kwargs):
        if args[1].startswith("fine_tune_"):
            seen_best.append(loaded[-1] if loaded else None)  # the weights the stage starts from
        return real_run_phase(*args, **kwargs)

    monkeypatch.setattr(training, "run_phase", recording_run_phase)
    config = dataclasses.replace(CONFIG, frozen_epochs=1, fine_tune_epochs=2, unfreeze_schedule="3,all")
    result = train_two_phase(model, backbone.layer, train, val, train_settings(config), tmp_path)
    first_stage = result.phases[1]
    assert seen_best[1] == first_stage.weights_path, "stage 2 starts from stage 1's best epoch, not its last or the frozen phase"


def test_layer_rates_make_lower_layers_move_less_on_the_same_step():
    from tl_keras.models.builders import compile_classifier, is_layerwise, layer_rate_scales

    backbone, model = _classifier()
    unfreeze_backbone(backbone.layer, "all")
    convs = [layer for layer in leaf_layers(backbone.layer) if layer.name.startswith("conv")]
    scales = layer_rate_scales(leaf_layers(backbone.layer), 0.01)
    assert scales[id(convs[0].kernel)] == pytest.approx(0.01) and scales[id(convs[-1].kernel)] == pytest.approx(1.0)
    compile_classifier(model, "adam", 1e-3, rate_scale=scales)
    assert is_layerwise(model.optimizer)
    before = {layer.name: layer.kernel.numpy().copy() for layer in convs}
    images, labels = next(iter(_data()[0]))
    model.train_on_batch(images, labels)
    moved = {layer.name: float(np.mean(np.abs(layer.kernel.numpy() - before[layer.name]))) for layer in convs}
    # Adam's first step moves every weight by about the rate, whatever its gradient.
    assert moved["conv0"] < moved["conv4"] / 20
    assert moved["conv0"] < moved["conv2"] < moved["conv4"]


@pytest.mark.slow
def test_layer_rate_optimizer_is_not_left_in_the_saved_model(tmp_path):
    backbone, model = _classifier()
    train, val = _data()
    config = dataclasses.replace(CONFIG, frozen_epochs=1, fine_tune_epochs=1, layer_rate_bottom=0.1)
    train_two_phase(model, backbone.layer, train, val, train_settings(config), tmp_path)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")  # compiled: the optimizer must be a plain one
    np.testing.assert_allclose(reloaded.predict(next(iter(val))[0], verbose=0), model.predict(next(iter(val))[0], verbose=0), atol=1e-6)


def test_the_scratch_arm_gets_the_epochs_the_transfer_arm_ran_not_the_flags():
    """--fine_tune_min_steps stretches phase 2 and a logistic frozen phase runs no epochs: the budget follows what ran."""
    import types

    from tl_keras.training.callbacks import TimeBudget
    from tl_keras.training.run_steps import SCRATCH_MAX_EPOCHS, scratch_budget

    transfer = types.SimpleNamespace(phases=[types.SimpleNamespace(epochs_run=0), types.SimpleNamespace(epochs_run=7)])
    by_epochs = dataclasses.replace(CONFIG, frozen_epochs=50, fine_tune_epochs=1, scratch_budget="epochs")
    assert scratch_budget(by_epochs, transfer, 12.0) == {"epochs": 7}
    by_time = scratch_budget(dataclasses.replace(by_epochs, scratch_budget="time"), transfer, 12.0)
    assert by_time["epochs"] == SCRATCH_MAX_EPOCHS and isinstance(by_time["extra_callbacks"][0], TimeBudget)


def test_a_later_unfreezing_stage_starts_from_the_previous_stage_not_the_frozen_phase():
    from tl_keras.training.phase import PhaseResult
    from tl_keras.training.two_phase import stage_start

    frozen = PhaseResult(FROZEN, 1, 0, 0, 0.95, 1, {}, "frozen.h5")
    first = PhaseResult("fine_tune_1", 1, 2, 2, 0.90, 1, {}, "fine_tune_1.h5")
    assert stage_start([frozen, first], "val_accuracy") is first  # though the frozen phase scored better
    diverged = PhaseResult("fine_tune_1", 1, 2, None, None, 1, {}, None)
    assert stage_start([frozen, diverged], "val_accuracy") is frozen
