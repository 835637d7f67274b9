"""Resume: epoch-indexed data order, atomic state files, and runs that survive SIGKILL exactly."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from tl_keras.io import atomic
from tl_keras.config.run_config import recipe_config
from tl_keras.vision import data as data_lib
from tl_keras.training import resume as resume_lib
from tl_keras.config.run_config import ConfigError, RunConfig, check_run_dir_reuse

DRIVER = REPO / "tests" / "resume_driver.py"


def _assert_same_run(straight, killed, history_atol: float):
    """Two finished run folders trained alike: the same phases and best epochs, histories within `history_atol`, final
    weights within 1e-6. Returns both histories."""
    one = json.loads((straight / "history.json").read_text())
    two = json.loads((killed / "history.json").read_text())
    for a, b in zip(one["phases"], two["phases"], strict=True):
        assert (a["name"], a["first_epoch"], a["epochs_run"], a["best_epoch"]) == (b["name"], b["first_epoch"], b["epochs_run"],
                                                                                   b["best_epoch"])
        for key in a["history"]:
            np.testing.assert_allclose(b["history"][key], a["history"][key], rtol=0, atol=history_atol, err_msg=f"{a['name']} {key}")
    first = keras.saving.load_model(straight / "model.keras", compile=False)
    second = keras.saving.load_model(killed / "model.keras", compile=False)
    for a, b in zip(first.weights, second.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-6, err_msg=a.path)
    return one, two


def _labels_of(dataset, batches):
    return [y.numpy().tolist() for _, y in dataset.take(batches)]


def test_epoch_order_depends_only_on_seed_and_epoch():
    images = np.zeros((10, 4, 4, 3), np.uint8)
    labels = np.arange(10)
    source = tf.data.Dataset.from_tensor_slices((images, labels))
    batches = data_lib.epoch_batches(source, 4, 4, seed=3)
    assert batches.steps_per_epoch == 3
    tf.random.set_seed(0)  # the global seed must not matter (0 once broke tensor op seeds)
    from_start = _labels_of(batches.stream(0), 9)
    tf.random.set_seed(123)
    from_epoch_1 = _labels_of(batches.stream(1), 6)
    assert from_epoch_1 == from_start[3:], "a stream started at epoch 1 replays epochs 1 and 2 exactly"
    epochs = [sorted(sum(from_start[i : i + 3], [])) for i in (0, 3, 6)]
    assert all(e == list(range(10)) for e in epochs), "each epoch is one full pass"
    assert from_start[:3] != from_start[3:6], "epochs are shuffled differently"
    assert _labels_of(batches.epoch(2), 3) == from_start[6:]
    other_seed = _labels_of(data_lib.epoch_batches(source, 4, 4, seed=4).stream(0), 3)
    assert other_seed != from_start[:3]


def test_state_file_round_trips_and_refuses_other_settings(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5, seed=1), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 2)), epochs=1, verbose=0)
    path = resume_lib.state_path(tmp_path)
    resume_lib.write_state(path, resume_lib.Progress("frozen", 1, {"loss": [0.5]}, 1.0, []), model, fingerprint="abc",
                           optimizer=model.optimizer)
    atomic.partial_path(path).write_bytes(b"half a file from a killed write")
    saved = [v.numpy().copy() for v in model.variables]
    saved_opt = [v.numpy().copy() for v in model.optimizer.variables]
    model.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=2, verbose=0)  # move weights, seeds and optimizer on

    state = resume_lib.load_state(path, "abc")
    assert state.phase == "frozen" and state.epoch == 1 and state.history == {"loss": [0.5]}
    assert state.in_progress("frozen") and state.finished("frozen") is None
    state.restore_model(model)
    state.restore_optimizer(model)
    for variable, value in zip(model.variables, saved):
        np.testing.assert_array_equal(variable.numpy(), value)
    seed_states = [v for v in model.variables if "seed_generator" in v.path]
    assert seed_states, "dropout's seed state is part of what is saved"
    for variable, value in zip(model.optimizer.variables, saved_opt):
        np.testing.assert_array_equal(variable.numpy(), value)

    with pytest.raises(resume_lib.ResumeError, match="other settings"):
        resume_lib.load_state(path, "xyz")
    bigger = keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)])
    with pytest.raises(resume_lib.ResumeError, match="model variable"):
        state.restore_model(bigger)
    path.write_bytes(b"not an archive")
    with pytest.raises(resume_lib.ResumeError, match=str(path)):
        resume_lib.load_state(path, "abc")


@pytest.mark.slow
def test_interrupted_run_folder_needs_resume_or_overwrite(tmp_path):
    config = recipe_config("digits", run_dir=str(tmp_path), weights="none").validate().resolved()
    (tmp_path / "config.json").write_text(config.to_json())
    state = tmp_path / "checkpoints" / "resume_state.npz"
    state.parent.mkdir()
    state.write_bytes(b"x")
    with pytest.raises(ConfigError, match="interrupted run.*--resume.*--overwrite"):
        check_run_dir_reuse(config)
    check_run_dir_reuse(dataclasses.replace(config, resume=True))
    check_run_dir_reuse(dataclasses.replace(config, overwrite=True))
    (tmp_path / "summary.json").write_text("{}")  # a finished run may simply be run again
    check_run_dir_reuse(config)
    with pytest.raises(ConfigError, match="--resume and --overwrite"):
        dataclasses.replace(config, resume=True, overwrite=True).validate()


def _drive(config_path, *kill, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen([sys.executable, str(DRIVER), str(config_path), *map(str, kill)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _finish(process, timeout=600):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, err


def _write_config(path, config):
    path.write_text(config.to_json())
    return path


@pytest.mark.slow
def test_sigkill_in_each_phase_then_resume_matches_an_uninterrupted_run(tmp_path):
    base = recipe_config("digits",
        weights="none", head_init="random",  # a frozen phase of Keras epochs, as the kill points and budgets below count them
        frozen_epochs=3, fine_tune_epochs=3, early_stopping_patience=0, lr_schedule="cosine",
        flip="horizontal", feature_cache_augment_passes=2, dropout=0.3, compare_scratch=False, export=False, verbose=0, seed=5,
    )
    straight = _write_config(tmp_path / "straight.json", dataclasses.replace(base, run_dir=str(tmp_path / "straight")))
    killed_dir = tmp_path / "killed"
    killed = _write_config(tmp_path / "killed.json", dataclasses.replace(base, run_dir=str(killed_dir)))
    resumed = _write_config(tmp_path / "resumed.json", dataclasses.replace(base, run_dir=str(killed_dir), resume=True))

    reference = _drive(straight)  # runs beside the interrupted chain (two cores)
    code, err = _finish(_drive(killed, "frozen", 1))
    assert code == -signal.SIGKILL, err[-3000:]
    state = resume_lib.load_state(resume_lib.state_path(killed_dir), RunConfig.from_json(killed_dir / "config.json").fingerprint())
    assert (state.phase, state.epoch) == ("frozen", 1), "killed in epoch 2 of phase 1: one epoch saved"
    with pytest.raises(ConfigError, match="interrupted run"):
        check_run_dir_reuse(RunConfig.from_json(killed_dir / "config.json"))

    code, err = _finish(_drive(resumed, "fine_tune", 4))
    assert code == -signal.SIGKILL, err[-3000:]
    state = resume_lib.load_state(resume_lib.state_path(killed_dir), RunConfig.from_json(killed_dir / "config.json").fingerprint())
    assert (state.phase, state.epoch) == ("fine_tune", 4), "killed in epoch 2 of phase 2"
    assert [p["name"] for p in state.completed] == ["frozen"]

    code, err = _finish(_drive(resumed))
    assert code == 0, err[-3000:]
    code, err = _finish(reference)
    assert code == 0, err[-3000:]

    one, two = _assert_same_run(tmp_path / "straight", killed_dir, history_atol=1e-6)
    assert all(p["epochs_run"] == 3 and len(p["history"]["loss"]) == 3 for p in two["phases"]), "no epoch repeated or lost"
    assert one["kept_phase"] == two["kept_phase"]
    metrics_one = json.loads((tmp_path / "straight" / "evaluation" / "metrics.json").read_text())
    metrics_two = json.loads((killed_dir / "evaluation" / "metrics.json").read_text())
    assert metrics_one == metrics_two


@pytest.mark.slow
def test_a_kill_inside_an_epoch_resumes_from_the_last_step_state_to_an_uninterrupted_runs_weights(tmp_path):
    """--checkpoint_every=1 (epochs of 4 batches here): states inside epochs; killed mid-epoch in each phase, the run
    skips the batches it had trained and ends with the uninterrupted run's weights, history (the interrupted epochs' training loss included)
    and metrics."""
    base = recipe_config("digits",
        weights="none", head_init="random", frozen_epochs=2, fine_tune_epochs=2, early_stopping_patience=0,
        lr_schedule="cosine", flip="horizontal", feature_cache_augment_passes=2, dropout=0.3, compare_scratch=False,
        export=False, verbose=0, seed=5, checkpoint_every=1,
    )
    straight = _write_config(tmp_path / "straight.json", dataclasses.replace(base, run_dir=str(tmp_path / "straight")))
    killed_dir = tmp_path / "killed"
    killed = _write_config(tmp_path / "killed.json", dataclasses.replace(base, run_dir=str(killed_dir)))
    resumed = _write_config(tmp_path / "resumed.json", dataclasses.replace(base, run_dir=str(killed_dir), resume=True))
    reference = _drive(straight)
    code, err = _finish(_drive(killed, "phase:frozen:1:2"))  # the kill lands before the state of batch 3 is written
    assert code == -signal.SIGKILL, err[-3000:]
    fingerprint = RunConfig.from_json(killed_dir / "config.json").fingerprint()
    state = resume_lib.load_state(resume_lib.state_path(killed_dir), fingerprint)
    assert (state.phase, state.epoch, state.step) == ("frozen", 1, 2)
    code, err = _finish(_drive(resumed, "phase:fine_tune:2:1"))
    assert code == -signal.SIGKILL, err[-3000:]
    state = resume_lib.load_state(resume_lib.state_path(killed_dir), fingerprint)
    assert (state.phase, state.epoch, state.step) == ("fine_tune", 2, 1)
    code, err = _finish(_drive(resumed))
    assert code == 0, err[-3000:]
    code, err = _finish(reference)
    assert code == 0, err[-3000:]

    _assert_same_run(tmp_path / "straight", killed_dir, history_atol=1e-5)


@pytest.mark.slow
def test_scratch_baseline_resumes_after_sigkill(tmp_path):
    """The --compare_scratch arm keeps its own per-epoch state: a kill in its middle costs at most one epoch."""
    base = recipe_config("digits",
        weights="none", head_init="random",  # a frozen phase of Keras epochs, as the kill points and budgets below count them
        frozen_epochs=1, fine_tune_epochs=1, early_stopping_patience=0, compare_scratch=True, scratch_budget="epochs",
        dropout=0.3, flip="horizontal", export=False, verbose=0, seed=7, calibrate=False,
    )
    straight = _write_config(tmp_path / "straight.json", dataclasses.replace(base, run_dir=str(tmp_path / "straight")))
    killed_dir = tmp_path / "killed"
    killed = _write_config(tmp_path / "killed.json", dataclasses.replace(base, run_dir=str(killed_dir)))
    resumed = _write_config(tmp_path / "resumed.json", dataclasses.replace(base, run_dir=str(killed_dir), resume=True))
    reference = _drive(straight)
    code, err = _finish(_drive(killed, "phase:scratch:1"))
    assert code == -signal.SIGKILL, err[-3000:]
    state = resume_lib.load_state(
        resume_lib.state_path(killed_dir / "scratch"), RunConfig.from_json(killed_dir / "config.json").fingerprint()
    )
    assert (state.phase, state.epoch) == ("scratch", 1), "killed in the scratch arm's second epoch: one epoch saved"
    code, err = _finish(_drive(resumed))
    assert code == 0, err[-3000:]
    code, err = _finish(reference)
    assert code == 0, err[-3000:]
    one = json.loads((tmp_path / "straight" / "scratch" / "history.json").read_text())["phases"][0]
    two = json.loads((killed_dir / "scratch" / "history.json").read_text())["phases"][0]
    assert one["epochs_run"] == two["epochs_run"] == 2
    for key in one["history"]:
        np.testing.assert_allclose(two["history"][key], one["history"][key], rtol=0, atol=1e-6, err_msg=key)
    summaries = [json.loads((folder / "summary.json").read_text()) for folder in (tmp_path / "straight", killed_dir)]
    assert summaries[0]["scratch_accuracy"] == summaries[1]["scratch_accuracy"]
    assert summaries[0]["transfer_accuracy"] == summaries[1]["transfer_accuracy"]


class _Crash(RuntimeError):
    pass


@pytest.mark.slow
def test_early_stopping_plateau_and_overfit_counters_survive_a_crash(tmp_path):
    """Review M5: the counters that stop a phase or cut its rate come back with the state, so a resumed phase stops where it would have."""
    from tl_keras.vision.backbones import load_backbone
    from tl_keras.vision.classifier import build_classifier
    from tl_keras.config.settings import TrainSettings
    from tl_keras.training.two_phase import train_two_phase

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 3, 48).astype(np.int32)  # noise: validation loss soon stops improving
    split = data_lib.IndexedSplit.from_arrays(images, labels)
    settings = TrainSettings(
        frozen_epochs=12, fine_tune_epochs=0, batch_size=8, learning_rate=0.05, feature_cache="off", early_stopping_patience=3,
        lr_schedule="plateau", monitor="val_loss", overfit_patience=2, verbose=0, seed=4,
    )

    def train(run_dir, crash_at=None, resume=False):
        keras.utils.set_random_seed(4)
        backbone = load_backbone("small_cnn", None, image_size=16)
        model = build_classifier(backbone, 3, dropout=0.3)
        train_batches = data_lib.epoch_batches(split.dataset(), 16, 8, seed=4, indexed=split, cache="memory")
        validation = data_lib.make_batches(split.subset(np.arange(16)).dataset(), 16, 8, cache="memory")
        crash = []
        if crash_at is not None:
            class CrashAt(keras.callbacks.Callback):
                def on_epoch_begin(self, epoch, logs=None):
                    if epoch == crash_at:
                        raise _Crash(f"killed before epoch {epoch + 1}")

            crash = [CrashAt()]
        return train_two_phase(model, backbone.layer, train_batches, validation, dataclasses.replace(settings, resume=resume), run_dir,
                               extra_callbacks=crash)

    straight = train(tmp_path / "straight").phases[0]
    assert straight.epochs_run < settings.frozen_epochs, "early stopping ended the phase"
    assert min(straight.history["learning_rate"]) < settings.learning_rate, "the plateau schedule cut the rate"
    crash_at = straight.epochs_run - 2  # after the best epoch, inside the patience window
    with pytest.raises(_Crash):
        train(tmp_path / "crashed", crash_at=crash_at)
    resumed = train(tmp_path / "crashed", resume=True).phases[0]
    assert resumed.epochs_run == straight.epochs_run and resumed.best_epoch == straight.best_epoch
    for key in straight.history:
        np.testing.assert_allclose(resumed.history[key], straight.history[key], rtol=0, atol=1e-6, err_msg=key)


def test_a_kill_after_an_improving_epoch_but_before_its_state_leaves_the_best_file_as_the_state_says(tmp_path):
    """Review M5: the best file never runs ahead of the resume state, whose history and best value it must match."""
    from tl_keras.vision.backbones import load_backbone
    from tl_keras.vision.classifier import build_classifier
    from tl_keras.config.settings import TrainSettings
    from tl_keras.training.two_phase import train_two_phase

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 32).astype(np.int32)
    images = rng.integers(0, 60, (32, 16, 16, 3)).astype(np.uint8)
    images[..., 0] += (labels * 150).astype(np.uint8)[:, None, None]  # learnable: validation loss falls epoch after epoch
    split = data_lib.IndexedSplit.from_arrays(images, labels)
    settings = TrainSettings(frozen_epochs=4, fine_tune_epochs=0, batch_size=8, learning_rate=0.01, feature_cache="off",
                             monitor="val_loss", early_stopping_patience=0, verbose=0, seed=2)
    keras.utils.set_random_seed(2)
    backbone = load_backbone("small_cnn", None, image_size=16)
    model = build_classifier(backbone, 2)
    train_batches = data_lib.epoch_batches(split.dataset(), 16, 8, seed=2, indexed=split, cache="memory")
    validation = data_lib.make_batches(split.dataset(), 16, 8, cache="memory")
    best_file = tmp_path / "checkpoints" / "frozen.weights.h5"

    snapshots, losses = {}, []

    class KillAfterAnImprovingEpoch(keras.callbacks.Callback):  # runs after BestWeights, before the state is recorded
        def on_epoch_end(self, epoch, logs=None):
            snapshots[epoch + 1] = [np.array(w) for w in model.weights]
            losses.append(logs["val_loss"])
            if epoch >= 1 and losses[-1] < min(losses[:-1]):
                raise _Crash(f"killed after epoch {epoch + 1} improved")

    with pytest.raises(_Crash):
        train_two_phase(model, backbone.layer, train_batches, validation, settings, tmp_path, extra_callbacks=[KillAfterAnImprovingEpoch()])
    state = resume_lib.load_state(resume_lib.state_path(tmp_path), settings.fingerprint())
    killed = max(snapshots)
    assert state.epoch == killed - 1, "the state records the epochs before the killed one"
    recorded_best = int(np.argmin(state.history["val_loss"])) + 1
    reloaded = build_classifier(load_backbone("small_cnn", None, image_size=16), 2)
    reloaded.load_weights(str(best_file))
    best = [np.asarray(w) for w in reloaded.weights]
    for saved, expected in zip(best, snapshots[recorded_best]):  # the best file is the best epoch the state recorded
        np.testing.assert_array_equal(saved, expected)
    assert any(not np.array_equal(a, b) for a, b in zip(best, snapshots[killed])), "not the killed epoch's weights"


@pytest.mark.slow
def test_a_resumed_runs_time_budgeted_scratch_arm_gets_the_whole_transfer_time(tmp_path):
    """After --resume the scratch arm was given only the last process's time (about one epoch), not the transfer run's."""
    base = recipe_config("digits",
        weights="none", head_init="random",  # a frozen phase of Keras epochs, as the kill points and budgets below count them
        frozen_epochs=2, fine_tune_epochs=4, early_stopping_patience=0, compare_scratch=True, scratch_budget="time",
        export=False, verbose=0, seed=4, calibrate=False,
    )
    killed = _write_config(tmp_path / "killed.json", dataclasses.replace(base, run_dir=str(tmp_path / "killed")))
    resumed = _write_config(tmp_path / "resumed.json", dataclasses.replace(base, run_dir=str(tmp_path / "killed"), resume=True))
    code, err = _finish(_drive(killed, "phase:fine_tune:5"))  # the last fine-tune epoch: the resumed process trains one epoch
    assert code == -signal.SIGKILL, err[-3000:]
    code, err = _finish(_drive(resumed))
    assert code == 0, err[-3000:]
    summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    phases = json.loads((tmp_path / "killed" / "history.json").read_text())["phases"]
    across_processes = sum(phase["seconds"] for phase in phases)  # each phase's time, the killed process's part included
    assert summary["timings"]["transfer_train_s"] >= across_processes > 0, (summary["timings"], across_processes)


def test_a_resumed_time_budget_spends_what_is_left_of_it_not_a_new_budget():
    """The scratch arm's wall-time budget spans processes, as the transfer arm's time does."""
    import keras

    from tl_keras.training.callbacks import TimeBudget
    from tl_keras.training.resume import ResumeState, _callback_state

    before = TimeBudget(10.0)
    before.epochs, before.spent = 3, 9.0  # three epochs, nine seconds, then the kill
    state = ResumeState({"callbacks": _callback_state([before])}, [], [])
    resumed = TimeBudget(10.0)
    resumed.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    resumed.on_train_begin()
    state.restore_callbacks([resumed])  # what the epoch recorder does after every callback's on_train_begin
    resumed.on_epoch_begin(3)
    resumed.on_epoch_end(3)
    assert resumed.epochs == 4 and 9.0 <= resumed.spent < 9.5
    assert resumed.model.stop_training  # another epoch (about 2.3 s) would overrun the 10 s budget
