"""tf.distribute on CPU: mirrored over two logical devices, two local workers, and bfloat16 training."""

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO
from tl_keras.config.run_config import recipe_config
from tl_keras.training import distribute
from tl_keras.run import run_experiment

DRIVER = REPO / "tests" / "distribute_driver.py"
# head_init=random: phase 1 as Keras epochs on cached features, so each phase has per-epoch losses to compare and to kill in.
TINY = recipe_config("digits", weights="none", head_init="random", frozen_epochs=2, fine_tune_epochs=2, batch_size=20, dropout=0.0,
                     early_stopping_patience=0, overfit_patience=0, compare_scratch=False, export=False, verbose=0, seed=3)


def _env(**extra):
    return {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


@pytest.mark.slow
def test_mirrored_over_two_cpus_matches_the_default_strategy(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(dataclasses.replace(TINY, run_dir=str(tmp_path / "run")).to_json())
    out = tmp_path / "out.json"
    done = subprocess.run([sys.executable, str(DRIVER), "compare", str(config), str(out)], env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["default"]["replicas"] == 1 and results["mirrored"]["replicas"] == 2
    for one, two in zip(results["default"]["phases"], results["mirrored"]["phases"], strict=True):
        assert one["epochs_run"] == two["epochs_run"]
        for key in ("loss", "val_loss", "val_accuracy"):
            np.testing.assert_allclose(two["history"][key], one["history"][key], atol=1e-4, err_msg=f"{one['name']} {key}")


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _workers(config, weights_out, kill_chief_at=None):
    """Starts two workers of one cluster on free loopback ports; the chief is index 0."""
    workers = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        args = [sys.executable, str(DRIVER), "run", str(config), str(weights_out[index])]
        if kill_chief_at and index == 0:
            args.append(kill_chief_at)
        processes.append(subprocess.Popen(args, env=_env(TF_CONFIG=tf_config), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def _weights(path):
    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


@pytest.mark.slow
def test_two_local_workers_train_only_the_chief_exports_and_a_killed_chief_resumes(tmp_path):
    """Review H1: after the chief is SIGKILLed mid-phase, both workers restart with --resume and end with the uninterrupted weights."""
    base = dataclasses.replace(TINY, strategy="multi_worker", export=True, export_dir=str(tmp_path / "saved_models"), name="workers")
    straight = tmp_path / "straight.json"
    straight.write_text(dataclasses.replace(base, run_dir=str(tmp_path / "run")).to_json())
    started = time.perf_counter()
    processes = _workers(straight, [tmp_path / "straight_0.npz", tmp_path / "straight_1.npz"])
    outputs = [p.communicate(timeout=600) for p in processes]
    seconds = time.perf_counter() - started
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    reports = [json.loads(next(line[7:] for line in out.splitlines() if line.startswith("DRIVER "))) for out, _ in outputs]
    assert [r["chief"] for r in reports] == [True, False]
    assert all(r["replicas"] == 2 for r in reports)
    export_dir = tmp_path / "saved_models"
    assert sorted(p.name for p in (export_dir / "workers").iterdir() if not p.name.startswith(".")) == ["1"], "one export, by the chief"
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["chief"] is True
    reference = _weights(tmp_path / "straight_0.npz")
    for a, b in zip(reference, _weights(tmp_path / "straight_1.npz"), strict=True):
        np.testing.assert_array_equal(a, b)
    print(f"two-worker run: {seconds:.1f}s")

    killed_dir = tmp_path / "killed"
    killed = tmp_path / "killed.json"
    killed.write_text(dataclasses.replace(base, run_dir=str(killed_dir), export=False).to_json())
    chief, worker = _workers(killed, [tmp_path / "unused_0.npz", tmp_path / "unused_1.npz"], kill_chief_at="phase:fine_tune:3")
    chief.communicate(timeout=600)
    assert chief.returncode == -signal.SIGKILL
    time.sleep(2)
    worker.kill()  # left waiting in a collective op for the chief that died
    worker.communicate(timeout=60)
    resumed = tmp_path / "resumed.json"
    resumed.write_text(dataclasses.replace(base, run_dir=str(killed_dir), export=False, resume=True).to_json())
    processes = _workers(resumed, [tmp_path / "resumed_0.npz", tmp_path / "resumed_1.npz"])
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    history = json.loads((killed_dir / "history.json").read_text())
    assert [len(p["history"]["loss"]) for p in history["phases"]] == [2, 2], "no epoch repeated or lost"
    chief_weights, worker_weights = _weights(tmp_path / "resumed_0.npz"), _weights(tmp_path / "resumed_1.npz")
    for a, b, c in zip(reference, chief_weights, worker_weights, strict=True):
        np.testing.assert_array_equal(b, c)  # the workers agree exactly
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)  # and match the uninterrupted run


@pytest.mark.slow
def test_two_local_workers_train_from_sharded_records_to_the_same_weights(tmp_path, image_folder):
    """--records under MultiWorkerMirroredStrategy: both workers read the shards, train in step, the chief writes the run."""
    from tl_keras.config.run_config import RunConfig
    from tl_keras.config.settings import DataSettings
    from tl_keras.vision.records import write_image_records

    from tl_keras.vision.data import load_data

    data = DataSettings(image_dir=str(image_folder), seed=3)
    write_image_records(load_data(data), data, str(tmp_path / "records"), shards=4)
    config = RunConfig(records=str(tmp_path / "records"), backbone="small_cnn", weights="none", image_size=16, frozen_epochs=2,
                       head_init="random", fine_tune_epochs=1, fine_tune_min_steps=0, batch_size=8, strategy="multi_worker",
                       export=False, verbose=0, seed=3, run_dir=str(tmp_path / "run"), name="records")
    (tmp_path / "config.json").write_text(config.to_json())
    processes = _workers(tmp_path / "config.json", [tmp_path / "w0.npz", tmp_path / "w1.npz"])
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["counts"]["train"] == {"blue": 9, "green": 9, "red": 9} and summary["chief"] is True
    for a, b in zip(_weights(tmp_path / "w0.npz"), _weights(tmp_path / "w1.npz"), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_bfloat16_training_exports_float32_probabilities(tmp_path):
    config = dataclasses.replace(TINY, mixed_precision="mixed_bfloat16", export=True, run_dir=str(tmp_path / "run"),
                                 export_dir=str(tmp_path / "saved_models"), name="bf16", frozen_epochs=1, fine_tune_epochs=1)
    summary = run_experiment(config)
    assert tf.keras.mixed_precision.global_policy().name == "float32", "the global policy is restored after the run"
    served = tf.saved_model.load(summary["export"]).signatures["predict_pixels"]
    images = np.random.default_rng(0).integers(0, 256, size=(3, 16, 16, 3)).astype(np.float32)
    probabilities = served(images=tf.constant(images))["probabilities"]
    assert probabilities.dtype == tf.float32
    np.testing.assert_allclose(probabilities.numpy().sum(axis=1), 1.0, atol=1e-5)
    saved = distribute.float32_copy(keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False))
    np.testing.assert_allclose(probabilities.numpy(), saved.predict(images, verbose=0), atol=1e-5)  # the run's own model, served


def test_float32_copy_keeps_the_weights_and_computes_in_float32():
    import keras

    from tl_keras.vision.backbones import load_backbone
    from tl_keras.vision.classifier import build_classifier

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_classifier(load_backbone("small_cnn", None, image_size=16), 3)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
    copy = distribute.float32_copy(model)
    assert all(layer.compute_dtype == "float32" for layer in copy.layers if hasattr(layer, "compute_dtype"))
    for a, b in zip(model.weights, copy.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    images = np.random.default_rng(0).integers(0, 256, size=(2, 16, 16, 3)).astype(np.uint8)
    np.testing.assert_allclose(copy(images).numpy(), model(images).numpy().astype(np.float32), atol=0.02)


def test_keras_workaround_is_gated_by_version_and_scoped_to_the_run(monkeypatch):
    """Review M8: a patch of Keras internals checks the version it was written for and is undone when the run ends."""
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica
    multi_worker = tf.distribute.MultiWorkerMirroredStrategy.__new__(tf.distribute.MultiWorkerMirroredStrategy)
    with distribute.keras_workarounds(multi_worker):
        assert tf_trainer.reduce_per_replica is not original
    assert tf_trainer.reduce_per_replica is original
    with distribute.keras_workarounds(tf.distribute.get_strategy()):
        assert tf_trainer.reduce_per_replica is original, "one-machine runs need no patch"
    assert distribute.keras_internals_tested("3.15.1") and not distribute.keras_internals_tested("3.16.0")
    monkeypatch.setattr(distribute.keras, "__version__", "3.16.0")
    with distribute.keras_workarounds(multi_worker):
        assert tf_trainer.reduce_per_replica is original, "an untested Keras is left alone"


def test_setup_pins_keras_to_the_versions_the_workarounds_were_tested_with():
    low, high = (".".join(map(str, v)) for v in distribute.KERAS_PATCHED_FOR)
    assert f'"keras>={low},<{high}"' in (REPO / "setup.py").read_text()
