"""A run whose data, run folder and export all live on another filesystem: TensorFlow's ram://, which behaves as an
object store does (a folder is a prefix; renaming one moves nothing), in this process's memory."""

import json
import uuid

import numpy as np
import pytest

from tl_keras.config.run_config import RunConfig
from tl_keras.io import storage


def upload(folder, remote: str) -> str:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            storage.write_bytes(storage.join(remote, *path.relative_to(folder).parts), path.read_bytes())
    return remote


@pytest.fixture
def bucket(monkeypatch, tmp_path):
    monkeypatch.setenv("TL_KERAS_MIRRORS", str(tmp_path / "mirrors"))
    return f"ram://{uuid.uuid4().hex}"


@pytest.mark.slow
def test_an_image_run_reads_trains_and_exports_on_an_object_store_and_resumes_there(bucket, image_folder, tmp_path):
    import tensorflow as tf

    from tl_keras.run import run_experiment

    images = upload(image_folder, f"{bucket}/data/images")
    config = RunConfig(
        image_dir=images, backbone="small_cnn", weights="none", image_size=16, fine_tune_epochs=1, fine_tune_min_steps=0,
        frozen_epochs=2, batch_size=8, run_dir=f"{bucket}/runs/colours", export_dir=f"{bucket}/exports", verbose=0, seed=1,
    )
    summary = run_experiment(config)
    assert summary["name"] == "images" and summary["classes"] == ["blue", "green", "red"]
    assert summary["export"] == f"{bucket}/exports/images/1"
    assert summary["model_keras"] == f"{bucket}/runs/colours/model.keras"  # paths name the store, not the local copy
    assert json.loads(storage.read_text(f"{bucket}/runs/colours/summary.json"))["model_keras"] == summary["model_keras"]
    for name in ("summary.json", "split.json", "config.json", "model.keras", "evaluation/metrics.json"):
        assert storage.isfile(f"{bucket}/runs/colours/{name}"), name
    split = json.loads(storage.read_text(f"{bucket}/runs/colours/split.json"))
    assert all(path.startswith(images + "/") for path in split["train"])
    assert storage.isfile(f"{bucket}/exports/images/1/saved_model.pb")
    assert storage.read_text(f"{bucket}/exports/images/.last_version").strip() == "1"
    photo = storage.read_bytes(split["test"][0])
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"](image_bytes=tf.constant([photo]))
    assert served["probabilities"].shape == (1, 3)

    # A second machine: an empty local copy, the same settings: the finished run is found and its folder reused.
    import shutil

    shutil.rmtree(tmp_path / "mirrors")
    again = run_experiment(config)
    assert again["export"] == f"{bucket}/exports/images/2"
    np.testing.assert_allclose(again["transfer_accuracy"], summary["transfer_accuracy"])


@pytest.mark.slow
def test_a_run_killed_on_one_machine_resumes_from_the_object_store_on_another_to_the_same_weights(
        bucket, image_folder, tmp_path, monkeypatch):
    """The resume state reaches the store when it is written (not only when the run ends): a run stopped mid fine-tune,
    its local copy lost, resumes from the store alone and ends with the uninterrupted run's weights."""
    import shutil

    import keras

    from tl_keras.run import run_experiment
    from tl_keras.training import phase as training

    images = upload(image_folder, f"{bucket}/data/images")

    def config(run: str, **extra) -> RunConfig:
        return RunConfig(image_dir=images, backbone="small_cnn", weights="none", image_size=16, fine_tune_epochs=3,
                         fine_tune_min_steps=0, frozen_epochs=2, batch_size=8, run_dir=f"{bucket}/runs/{run}", export=False,
                         verbose=0, seed=1, **extra)

    run_experiment(config("whole"))

    class Preempted(Exception):
        pass

    class StopAfterOneEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch >= 1:  # one fine-tune epoch finished and its state written
                assert storage.isfile(f"{bucket}/runs/cut/checkpoints/resume_state.npz")
                raise Preempted()

    original = training.run_phase

    def run_phase(model, name, *args, extra_callbacks=(), **kwargs):
        if name == "fine_tune":
            extra_callbacks = (*extra_callbacks, StopAfterOneEpoch())
        return original(model, name, *args, extra_callbacks=extra_callbacks, **kwargs)

    monkeypatch.setattr(training, "run_phase", run_phase)
    with pytest.raises(Preempted):
        run_experiment(config("cut"))
    trained = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            trained.append(epoch)

    def counted(model, name, *args, extra_callbacks=(), **kwargs):
        if name == "fine_tune":
            extra_callbacks = (*extra_callbacks, Count())
        return original(model, name, *args, extra_callbacks=extra_callbacks, **kwargs)

    monkeypatch.setattr(training, "run_phase", counted)
    shutil.rmtree(tmp_path / "mirrors")  # another machine
    resumed = run_experiment(config("cut", resume=True))
    assert resumed["phases"]["fine_tune"]["epochs"] == 3
    assert trained == [1, 2]  # the finished epoch came from the store, not trained again
    fetched = {run: keras.saving.load_model(_fetch(f"{bucket}/runs/{run}/model.keras", tmp_path), compile=False)
               for run in ("whole", "cut")}
    for a, b in zip(fetched["whole"].weights, fetched["cut"].weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def _fetch(remote: str, tmp_path) -> str:
    local = tmp_path / uuid.uuid4().hex / storage.name_of(remote)
    local.parent.mkdir(parents=True)
    local.write_bytes(storage.read_bytes(remote))
    return str(local)


@pytest.mark.slow
def test_a_text_run_reads_its_table_and_encoder_from_an_object_store(bucket, tiny_encoder, tmp_path):
    import tensorflow as tf

    from text_fixtures import sentences
    from tl_keras.run import run_experiment

    def table(rows) -> bytes:
        return ("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows)).encode()

    storage.write_bytes(f"{bucket}/texts/train.tsv", table(sentences(60)))
    storage.write_bytes(f"{bucket}/texts/test.tsv", table(sentences(16, seed=5)))
    encoder = upload(tiny_encoder, f"{bucket}/encoders/tiny")
    summary = run_experiment(RunConfig(
        text_file=f"{bucket}/texts/train.tsv", test_file=f"{bucket}/texts/test.tsv", backbone=encoder,
        run_dir=f"{bucket}/runs/text", export_dir=f"{bucket}/exports", fine_tune_epochs=1, batch_size=16, verbose=0,
    ))
    assert summary["modality"] == "text" and summary["export"] == f"{bucket}/exports/texts/1"
    split = json.loads(storage.read_text(f"{bucket}/runs/text/split.json"))
    assert split["source"]["train"] == f"{bucket}/texts/train.tsv"
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"](text=tf.constant(["the movie was good"]))
    assert served["probabilities"].shape == (1, 2)


@pytest.mark.slow
def test_a_sound_run_reads_clips_listed_in_a_table_on_an_object_store(bucket, tmp_path):
    from audio_fixtures import clip_folder
    from tl_keras.run import run_experiment

    clips = upload(clip_folder(tmp_path / "tones", per_class=6), f"{bucket}/sound/tones")
    rows = [f"{name}/{storage.name_of(path)},{name}" for name in ("high", "low", "mid")
            for path in storage.files_under(f"{clips}/{name}")]
    storage.write_bytes(f"{clips}/clips.csv", ("path,label\n" + "\n".join(rows) + "\n").encode())
    summary = run_experiment(RunConfig(
        audio_file=f"{clips}/clips.csv", backbone="small_cnn", weights="none", image_size=32, fine_tune_epochs=1,
        fine_tune_min_steps=0, batch_size=8, run_dir=f"{bucket}/runs/sound", export=False, seed=0, verbose=0,
    ))
    assert summary["modality"] == "audio" and summary["classes"] == ["high", "low", "mid"]
    assert storage.isfile(f"{bucket}/runs/sound/data_report.json")


@pytest.mark.slow
def test_the_data_check_writes_its_report_on_an_object_store(image_folder, tmp_path):
    """check_data.py --report=ram://...: the report lands on the store (read back in the script's own process: ram:// is
    per process), and the printed path is the store's."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    target = f"ram://{uuid.uuid4().hex}/checks/report.json"
    code = f"""
import json, sys
sys.path.insert(0, {str(repo / 'experiments')!r})
sys.argv = ["check_data.py", "--image_dir={image_folder}", "--report={target}"]
import check_data
from absl import app
from tl_keras.config import cli
try:
    app.run(cli.clean_errors(check_data.main))
except SystemExit as done:
    code = done.code
from tl_keras.io import storage
print("STORED", json.dumps(sorted(json.loads(storage.read_text({target!r})))))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"report: {target}" in done.stdout
    stored = json.loads(done.stdout.split("STORED ", 1)[1].splitlines()[0])
    assert {"class_names", "files_checked", "duplicates"} <= set(stored)
