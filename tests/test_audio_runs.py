"""A sound run end to end on real WAV files: train, baselines, export, serving from a fresh process, TFLite, the scripts."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tl_keras  # noqa: F401
from audio_fixtures import clip_folder, tone, write_wav
from tl_keras.config.run_config import RunConfig
from tl_keras.run import run_experiment

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "experiments" / name), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tone_run(tmp_path_factory):
    """One small run: three classes of tones, a tiny image backbone from random weights over log-mel images, exported."""
    root = tmp_path_factory.mktemp("audio")
    clips = clip_folder(root / "tones", per_class=12)
    config = RunConfig(audio_dir=str(clips), backbone="small_cnn", weights="none", image_size=32, fine_tune_epochs=1, fine_tune_min_steps=0,
                       batch_size=8,
                       compare_scratch=True, scratch_budget="epochs", run_dir=str(root / "run"), export_dir=str(root / "exports"),
                       name="tones", seed=0, verbose=0)
    return run_experiment(config), root


def test_a_sound_run_trains_reports_its_baselines_and_exports(tone_run):
    summary, root = tone_run
    assert summary["modality"] == "audio" and summary["classes"] == ["high", "low", "mid"]
    assert summary["transfer_accuracy"] >= 0.5 and summary["mfcc"]["accuracy"] >= 0.5
    assert set(summary["noise"]) == {"clean", "30 dB", "20 dB", "10 dB", "5 dB", "0 dB"}
    assert "scratch_accuracy" in summary and summary["probe"]["accuracy"] is not None
    split = json.loads((root / "run" / "split.json").read_text())
    assert split["sample_rate"] == 16000 and split["clip_samples"] == summary["clip_samples"] and "source_sha256" in split
    card = json.loads((Path(summary["export"]) / "assets.extra" / "model_card.json").read_text())
    assert card["modality"] == "audio" and card["audio"]["clip_samples"] == summary["clip_samples"]
    assert set(card["signatures"]) == {"serving_default", "waveform"}
    report = Path(summary["report_html"]).read_text()
    assert "Accuracy against noise" in report and ("log-mel spectrogram" in report or "No clip of this split was misclassified" in report)


def test_the_export_serves_wav_bytes_from_a_fresh_tensorflow_process_as_keras_does(tone_run):
    summary, root = tone_run
    wav = write_wav(root / "ask.wav", tone(900, 0.5, 44100, np.random.default_rng(5)), 44100, stereo=True)
    code = f"""
import json, tensorflow as tf
served = tf.saved_model.load({summary['export']!r}).signatures["serving_default"]
good = open({str(wav)!r}, "rb").read()
out = served(audio_bytes=tf.constant([good]))
try:
    served(audio_bytes=tf.constant([good, b"not a wav file at all"]))
    refused = ""
except tf.errors.InvalidArgumentError as error:
    refused = error.message
again = served(audio_bytes=tf.constant([good]))["probabilities"].numpy().tolist()
print(json.dumps({{"probabilities": out["probabilities"].numpy().tolist(), "refused": refused, "again": again}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    import keras

    from tl_keras.audio.clips import prepare, read_wav

    model = keras.saving.load_model(Path(summary["export"]) / "assets.extra" / "model.keras", compile=False)
    samples, info = read_wav(str(wav))
    expected = model(prepare(samples, info.rate, 16000, summary["clip_samples"])[None], training=False).numpy()
    np.testing.assert_allclose(served["probabilities"], expected, atol=2e-3)  # 16-bit PCM bytes against SciPy's float read
    assert "rows that are not WAV files" in served["refused"]
    np.testing.assert_allclose(served["again"], served["probabilities"], atol=1e-6)


def test_the_scripts_check_evaluate_convert_and_predict_a_sound_run(tone_run):
    summary, root = tone_run
    checked = _script("check_data.py", f"--audio_dir={root / 'tones'}", f"--report={root / 'report.json'}")
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert "36 of 36 clips usable" in checked.stdout and "resampled to 16000 Hz" in checked.stdout
    evaluated = _script("evaluate.py", f"--model={root / 'run'}", "--split=validation")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "validation: accuracy" in evaluated.stdout and "with white noise" in evaluated.stdout
    refused = _script("evaluate.py", f"--model={root / 'run'}", f"--image_dir={root}")
    assert refused.returncode == 2 and "is a sound run: --image_dir and --tta do not apply" in refused.stderr
    converted = _script("export_tflite.py", f"--run_dir={root / 'run'}", f"--output_dir={root / 'tflite'}")
    assert converted.returncode == 0, converted.stderr[-2000:]
    report = json.loads((root / "tflite" / "tflite_report.json").read_text())
    rows = {r["variant"]: r for r in report["variants"]}
    assert set(rows) == {"float32", "float16", "dynamic_range"} and rows["float32"]["agreement"] == 1.0
    assert rows["float32"]["max_abs_diff"] < 1e-4 and report["sample_rate"] == 16000
    sidecar = json.loads((root / "tflite" / "tones_float32.json").read_text())
    assert sidecar["clip_samples"] == summary["clip_samples"] and "centred in silence" in sidecar["inputs"]["waveform"]
    clip = sorted((root / "tones" / "low").glob("*.wav"))[0]
    predicted = _script("predict.py", f"--saved_model={root / 'exports' / 'tones'}", f"--audio={clip}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert predicted.stdout.strip().startswith(f"{clip}: ")


def test_a_run_whose_clips_were_edited_is_refused_by_name(tone_run):
    """What --resume, evaluate.py and export_tflite.py read: the clips as split.json recorded them, or a one-line refusal."""
    from tl_keras.audio.run import read_recorded_audio_splits
    from tl_keras.data.splits import SplitMismatchError

    summary, root = tone_run
    config = RunConfig.from_dict(json.loads((root / "run" / "config.json").read_text()))
    write_wav(root / "tones" / "low" / "low_0.wav", tone(350, 0.5, 16000, np.random.default_rng(7)), 16000)
    with pytest.raises(SplitMismatchError, match="source_sha256"):
        read_recorded_audio_splits(config, root / "run")


def test_int8_quantizes_the_network_and_keeps_the_front_end_in_float(tone_run):
    """The int8 file: the log-mel front end's ops in float (a power spectrum does not fit int8), the backbone's convolutions int8."""
    from ai_edge_litert.interpreter import Interpreter

    from tl_keras.audio.clips import prepare, read_wav
    from tl_keras.audio.tflite import export_audio_tflite

    summary, root = tone_run
    files = sorted((root / "tones").glob("*/*.wav"))
    waves = np.stack([prepare(*_read(f, read_wav), 16000, summary["clip_samples"]) for f in files])
    labels = np.array([summary["classes"].index(f.parent.name) for f in files])
    report = export_audio_tflite(summary["export"], root / "int8", waves[::4], labels[::4], summary["classes"], sample_rate=16000,
                                 variants=("int8",), calibration=waves[1::2])
    row = report["variants"][0]
    assert row["variant"] == "int8" and 0.0 <= row["agreement"] <= 1.0 and np.isfinite(row["max_abs_diff"])
    interpreter = Interpreter(model_path=row["file"])
    tensors = interpreter.get_tensor_details()
    kinds = {(op["op_name"], tensors[op["outputs"][0]]["dtype"].__name__) for op in interpreter._get_ops_details()}
    assert ("RFFT2D", "complex64") in kinds and ("LOG", "float32") in kinds  # the front end, in float
    assert ("CONV_2D", "int8") in kinds and ("CONV_2D", "float32") not in kinds  # the network, in int8
    sidecar = json.loads(Path(row["file"]).with_suffix(".json").read_text())
    assert "front end float" in sidecar["quantized"] and sidecar["inputs"]["waveform"].startswith("float32")


def _read(path, read_wav):
    samples, info = read_wav(str(path))
    return samples, info.rate
