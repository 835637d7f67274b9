"""A sound classifier's TFLite files: float32 waveform in, the front end inside, each checked against the Keras model.

Converted from the export's `waveform` signature (the weights the
SavedModel serves): a Keras 3 model's own concrete function keeps its
weights as variables and converts into a file that answers garbage. The
front end (`tf.signal.stft` becomes the builtin RFFT2D; the speech encoder's
STFT is a builtin convolution) is part of every file, so an app feeds
samples at the model's rate, padded or cropped as `audio.clips.fit_length`
does (the sidecar says how). Variants: float32, float16 (weights stored in
half precision), and dynamic-range (weights in int8). A log power spectrum
spans a range int8 cannot hold, so whole-graph full-integer quantization is
not offered; the dynamic-range file's parity row says what quantizing its
weights cost.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tl_keras.audio.export import WAVEFORM_INPUT, WAVEFORM_SIGNATURE
from tl_keras.export.saved_model import write_labels_file
from tl_keras.export.signatures import LABELS_FILE, PROBABILITIES
from tl_keras.export.tflite import (
    DEFAULT_MIN_AGREEMENT, add_ratios_to_float32, below_min_agreement, collapse_check, exported_target, interpreter_class,
    median_latency_ms, quiet_interpreter_start,
)
from tl_keras.io import atomic

AUDIO_VARIANTS = ("float32", "float16", "dynamic_range")


def convert_audio(version_dir: str | os.PathLike, variant: str, output: str = PROBABILITIES) -> bytes:
    """The TFLite flatbuffer of one variant of a sound export: waveform [1, samples] in, the task's own output out.

    Raises:
        ValueError: an unknown variant.
    """
    if variant not in AUDIO_VARIANTS:
        raise ValueError(f"variant={variant!r}: sound exports convert to {', '.join(AUDIO_VARIANTS)}")
    loaded = tf.saved_model.load(str(version_dir))
    waveform_fn = loaded.signatures[WAVEFORM_SIGNATURE]
    length = int(waveform_fn.structured_input_signature[1][WAVEFORM_INPUT].shape[1])

    @tf.function(input_signature=[tf.TensorSpec([1, length], tf.float32, name=WAVEFORM_INPUT)])
    def serve(waveform):
        return {output: waveform_fn(**{WAVEFORM_INPUT: waveform})[output]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], loaded)
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


class AudioTFLiteClassifier:
    """Runs a sound TFLite file on clips of the model's length, one at a time (as an app does)."""

    def __init__(self, content: bytes, output: str = "", num_threads: int | None = None):
        interpreter_type, self.interpreter_name = interpreter_class()
        with quiet_interpreter_start():
            interpreter = interpreter_type(model_content=content, num_threads=num_threads or os.cpu_count())
            interpreter.allocate_tensors()
        self._run = interpreter.get_signature_runner()
        self.output = output

    def predict_one(self, wave: np.ndarray) -> np.ndarray:
        outputs = self._run(**{WAVEFORM_INPUT: np.asarray(wave, np.float32)[None]})
        return outputs[self.output or next(iter(outputs))][0]

    def predict(self, waves: np.ndarray) -> np.ndarray:
        return np.stack([self.predict_one(w) for w in waves])

    def median_latency_ms(self, wave: np.ndarray, runs: int = 30) -> float:
        return median_latency_ms(self.predict_one, wave, runs)


def audio_parity(variant: str, content: bytes, keras_outputs: np.ndarray, waves: np.ndarray, labels: np.ndarray,
                 class_names: Sequence[str], target) -> dict:
    """One report row: the file against the Keras model on the same clips, in the task's terms.

    (Seven parameters: the file, what it is, and what it is checked against.)
    """
    from tl_keras.tasks import SINGLE_LABEL

    runner = AudioTFLiteClassifier(content, output=target.task.raw_output)
    outputs = runner.predict(waves).reshape(keras_outputs.shape)
    if not np.isfinite(outputs).all():
        raise ValueError(f"the {variant} TFLite file outputs non-finite values; its weights did not convert")
    difference = np.abs(outputs - keras_outputs)
    row = {
        "variant": variant, "size_bytes": len(content), **target.task.parity(outputs, keras_outputs, labels, target),
        "max_abs_diff": float(difference.max()), "mean_abs_diff": float(difference.mean()),
        "median_latency_ms": runner.median_latency_ms(waves[0]), "interpreter": runner.interpreter_name, "clips": len(waves),
    }
    if target.kind == SINGLE_LABEL:
        row.update(collapse_check(outputs.argmax(axis=1), keras_outputs.argmax(axis=1), labels, class_names))
    return row


def write_audio_sidecar(path: Path, variant: str, sample_rate: int, length: int, class_names: Sequence[str], target) -> None:
    """What an app must know to feed the file, beside it: the rate, the clip length and how to fit a clip to it."""
    atomic.write_json(path.with_suffix(".json"), {
        "file": path.name, "variant": variant,
        "inputs": {WAVEFORM_INPUT: f"float32 [1, {length}]: mono samples in [-1, 1] at {sample_rate} Hz ({length / sample_rate:.3f} s); "
                                   "a shorter clip centred in silence, a longer one cropped to its loudest stretch (what training did)"},
        "sample_rate": sample_rate, "clip_samples": length,
        "output": {"name": target.task.raw_output, "dtype": "float32",
                   "shape": [1] if target.task.head_units(class_names) == 1 else [1, len(class_names)],
                   "meaning": target.task.output_reading(target)},
        "class_names": list(class_names), "task": target.to_dict(),
    })


def keras_outputs_of(version_dir: str | os.PathLike, waves: np.ndarray) -> np.ndarray:
    """The export's Keras copy on `waves`: the reference every file is held to."""
    import keras

    from tl_keras.audio.batches import predict_waves
    from tl_keras.export.signatures import EXTRA_ASSETS, KERAS_COPY

    model = keras.saving.load_model(Path(version_dir) / EXTRA_ASSETS / KERAS_COPY, compile=False)
    return predict_waves(model, waves)


def export_audio_tflite(
    version_dir: str | os.PathLike, out_dir: str | os.PathLike, waves: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *,
    sample_rate: int, variants: Sequence[str] = AUDIO_VARIANTS, min_agreement: dict[str, float] | None = None,
) -> dict:
    """Converts a sound export to each variant, checks each on `waves`, writes the files, sidecars and `tflite_report.json`."""
    version_dir, out = Path(version_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_labels_file(out / LABELS_FILE, class_names)
    keras_outputs = keras_outputs_of(version_dir, waves)
    target = exported_target(version_dir, class_names)
    thresholds = {**DEFAULT_MIN_AGREEMENT, **(min_agreement or {})}
    rows, failures = [], []
    for variant in variants:
        started = time.perf_counter()
        content = convert_audio(version_dir, variant, output=target.task.raw_output)
        path = out / f"{version_dir.parent.name}_{variant}.tflite"
        path.write_bytes(content)
        row = audio_parity(variant, content, keras_outputs, waves, labels, class_names, target)
        row.update(file=str(path), convert_seconds=round(time.perf_counter() - started, 2))
        write_audio_sidecar(path, variant, sample_rate, waves.shape[1], class_names, target)
        failure = below_min_agreement(row, thresholds[variant])
        failures += [failure] if failure else []
        rows.append(row)
    add_ratios_to_float32(rows)
    report = {"saved_model": str(version_dir), "model_kind": "audio", "sample_rate": sample_rate, "clip_samples": int(waves.shape[1]),
              "classes": list(class_names), "task": target.kind, "variants": rows, "failures": failures}
    atomic.write_json(out / "tflite_report.json", report)
    return report
