"""TF Hub audio modules as sound backbones: how each is called, trainability, the recipe it gets, and a refusal by name."""

from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tl_keras  # noqa: F401
from audio_modules import save_batched, save_yamnet_like
from tl_keras.audio import hub_encoder
from tl_keras.audio.hub_encoder import HubAudioEncoder, audio_module_call
from tl_keras.audio.model import clip_limits
from tl_keras.config.recipes import auto_recipe
from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import ConfigError


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio_modules")
    return str(save_yamnet_like(root / "yamnet_like")), str(save_batched(root / "batched"))


def test_each_module_is_read_for_how_it_is_called_and_where_its_embeddings_are(modules):
    yamnet_like, batched = modules
    one = audio_module_call(yamnet_like)
    assert (one.signature, one.per_example, one.output, one.width) == ("", True, "1", 16)  # the tuple's embeddings, not its 5 scores
    many = audio_module_call(batched)
    assert (many.signature, many.per_example, many.output, many.width) == ("default", False, "default", 12)


@pytest.mark.parametrize("which, width", [(0, 16), (1, 12)])
def test_the_encoder_gives_frames_of_embeddings_and_fine_tuning_reaches_the_modules_own_variables(modules, which, width):
    layer = HubAudioEncoder(modules[which], trainable=True)
    waves = tf.random.stateless_normal([3, 8000], seed=[0, 1]) * 0.1
    frames = layer(waves)
    assert frames.shape == (3, 16, width)  # 8,000 samples in 64 ms frames every 32 ms, padded at the end
    assert not np.allclose(frames[0], frames[1])  # each clip its own frames (the per-clip module mapped over the batch)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(waves, training=True) ** 2)
    gradients = tape.gradient(loss, layer.trainable_weights)
    assert len(layer.trainable_weights) >= 2 and float(tf.linalg.global_norm([g for g in gradients if g is not None])) > 0
    again = HubAudioEncoder.from_config(layer.get_config())
    np.testing.assert_allclose(again(waves), frames, atol=1e-6)


def test_an_audio_module_gets_the_pretrained_sound_recipe_and_an_image_module_the_image_one(modules, tmp_path):
    class Pixels(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
        def __call__(self, images):
            return tf.reduce_mean(images, axis=[1, 2])

    tf.saved_model.save(Pixels(), str(tmp_path / "pixels"))
    assert audio_module_call(str(tmp_path / "pixels")) is None
    assert auto_recipe(RunConfig(audio_dir="clips", backbone=modules[0], explicit="backbone")) == "audio"
    assert auto_recipe(RunConfig(audio_dir="clips", backbone=str(tmp_path / "pixels"), explicit="backbone")) == "audio_image"
    assert clip_limits("yamnet") == (0.0, hub_encoder.YAMNET_WINDOW_SECONDS)


def test_a_known_name_that_does_not_load_is_refused_with_its_handle(monkeypatch):
    def offline(handle):
        raise OSError(f"Connection refused while fetching {handle}")

    monkeypatch.setattr(hub_encoder, "load_hub_module", offline)
    audio_module_call.cache_clear()
    try:
        refusal = r"--backbone='yamnet': could not load https://tfhub.dev/google/yamnet/1 \(Connection refused"
        with pytest.raises(ConfigError, match=refusal):
            audio_module_call("yamnet")
    finally:
        audio_module_call.cache_clear()


@pytest.mark.parametrize("backbone", ["yamnet", "MODULE"])
def test_a_scratch_arm_is_refused_for_a_module_that_brings_its_own_weights(modules, tmp_path, backbone):
    (tmp_path / "clips" / "a").mkdir(parents=True)
    backbone = modules[0] if backbone == "MODULE" else backbone
    config = RunConfig(audio_dir=str(tmp_path / "clips"), backbone=backbone, compare_scratch=True,
                       explicit="audio_dir,backbone,compare_scratch")
    with pytest.raises(ConfigError, match="--compare_scratch: .* loads its own trained weights"):
        config.validate()


@pytest.mark.slow
def test_a_run_on_a_per_clip_module_trains_fine_tunes_its_variables_exports_and_serves_as_keras_does(modules, tmp_path):
    """A YAMNet-like module end to end: the export calls the module in its graph, a fresh process serves WAV bytes as Keras answers,
    and the TFLite file (the per-clip call becomes a loop) agrees with Keras."""
    import json
    import subprocess
    import sys

    from audio_fixtures import clip_folder, tone, write_wav
    from tl_keras.audio.clips import prepare, read_wav
    from tl_keras.audio.tflite import export_audio_tflite
    from tl_keras.run import run_experiment

    clips = clip_folder(tmp_path / "tones", per_class=10)
    config = RunConfig(audio_dir=str(clips), backbone=modules[0], head_init="random", frozen_epochs=2, fine_tune_epochs=1,
                       batch_size=8, run_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "exports"), name="tones", seed=0, verbose=0)
    summary = run_experiment(config)
    assert summary["backbone"] == modules[0] and summary["backbone_kind"] == "hub"
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    phases = {phase["name"]: phase for phase in history["phases"]}
    assert phases["fine_tune"]["epochs_run"] == 1  # the module unfrozen and trained through the per-clip loop

    version = Path(summary["export"])
    model = keras.saving.load_model(version / "assets.extra" / "model.keras", compile=False)
    wav = write_wav(tmp_path / "ask.wav", tone(900, 0.5, 22050, np.random.default_rng(3)), 22050)
    code = f"""
import json, tensorflow as tf
served = tf.saved_model.load({str(version)!r}).signatures["serving_default"]
print(json.dumps(served(audio_bytes=tf.constant([open({str(wav)!r}, "rb").read()]))["probabilities"].numpy().tolist()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    samples, info = read_wav(str(wav))
    wave = prepare(samples, info.rate, 16000, summary["clip_samples"])
    np.testing.assert_allclose(json.loads(done.stdout.strip().splitlines()[-1]), model(wave[None]).numpy(), atol=2e-3)

    waves = np.stack([wave, wave * 0.5])
    report = export_audio_tflite(version, tmp_path / "tflite", waves, np.array([2, 2]), summary["classes"], sample_rate=16000,
                                 variants=("float32",))
    assert report["failures"] == [] and report["variants"][0]["max_abs_diff"] < 1e-4
