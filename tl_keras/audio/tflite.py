"""A sound classifier's TFLite files: float32 waveform in, the front end inside, each checked against the Keras model.

Converted from the export's `waveform` signature (the weights the
SavedModel serves): a Keras 3 model's own concrete function keeps its
weights as variables and converts into a file that answers garbage. The
front end (`tf.signal.stft` becomes the builtin RFFT2D; the speech encoder's
STFT is a builtin convolution) is part of every file, so an app feeds
samples at the model's rate, padded or cropped as `audio.clips.fit_length`
does (the sidecar says how). Variants: float32, float16 (weights stored in
half precision), dynamic-range (weights in int8), and, when asked for,
int8: the network after the front end quantized to full integer
(activations too, calibrated on training clips) while the front end stays
in float, because a log power spectrum spans a range int8 cannot hold
(quantizing the whole graph gave 0.17 top-1 agreement). The network-only
int8 file is not among the defaults: measured on both backbones it agreed
with Keras far below the 0.97 an int8 file must reach (docs/audio.md).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tl_keras.audio.export import WAVEFORM_INPUT, WAVEFORM_SIGNATURE
from tl_keras.export.saved_model import write_labels_file
from tl_keras.export.signatures import LABELS_FILE, PROBABILITIES
from tl_keras.export.tflite import (
    PlannedFile, collapse_check, exported_target, interpreter_class, median_latency_ms, quiet_interpreter_start, write_checked_files,
)
from tl_keras.io import atomic
from tl_keras.io.native_stderr import native_stderr_silenced

AUDIO_VARIANTS = ("float32", "float16", "dynamic_range", "int8")
DEFAULT_AUDIO_VARIANTS = ("float32", "float16", "dynamic_range")  # int8 only when named (see above)
NETWORK_INT8 = "the network after the front end: int8 weights and activations; the front end float"


def convert_audio(
    version_dir: str | os.PathLike, variant: str, output: str = PROBABILITIES, *, calibration: np.ndarray | None = None,
    front_end: Sequence[str] = (),
) -> bytes:
    """The TFLite flatbuffer of one variant of a sound export: waveform [1, samples] in, the task's own output out.

    int8 needs `calibration` (training clips, [n, samples]) and `front_end`
    (the names of the Keras layers that stay in float: `front_end_layers`).

    Raises:
        ValueError: an unknown variant; int8 without calibration clips or front-end layers.
    """
    if variant not in AUDIO_VARIANTS:
        raise ValueError(f"variant={variant!r}: sound exports convert to {', '.join(AUDIO_VARIANTS)}")
    if variant == "int8" and (calibration is None or not len(calibration) or not front_end):
        raise ValueError("variant='int8': pass training clips to calibrate on and the front-end layers to keep in float")
    loaded = tf.saved_model.load(str(version_dir))
    waveform_fn = loaded.signatures[WAVEFORM_SIGNATURE]
    length = int(waveform_fn.structured_input_signature[1][WAVEFORM_INPUT].shape[1])

    @tf.function(input_signature=[tf.TensorSpec([1, length], tf.float32, name=WAVEFORM_INPUT)])
    def serve(waveform):
        return {output: waveform_fn(**{WAVEFORM_INPUT: waveform})[output]}

    def converter(precision: str):
        made = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], loaded)
        if precision != "float32":
            made.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "float16":
            made.target_spec.supported_types = [tf.float16]
        return made

    if variant == "int8":
        return _network_int8(converter, np.asarray(calibration, np.float32), front_end)
    return converter(variant).convert()


def front_end_layers(model) -> list[str]:
    """The names of the layers from the waveform through the normalising layer: the signal processing int8 leaves in float."""
    names = []
    for layer in model.layers[1:]:
        names.append(layer.name)
        if getattr(layer, "normalises_input", False):
            return names
    return []


def _network_int8(converter, calibration: np.ndarray, front_end: Sequence[str]) -> bytes:
    """Full-integer quantization of everything but the front end's ops, float32 in and out (`converter(precision)` makes a
    converter of the export's waveform signature).

    The front end's ops are found by name in a float conversion (TFLite
    names an op's output after the Keras layer that made it) and denied to
    the quantizer through TensorFlow's selective-quantization debugger; the
    network between it and the output is calibrated on `calibration`.
    """
    def samples():
        for wave in calibration:
            yield [wave[None]]

    made = converter("int8")
    made.representative_dataset = samples
    with native_stderr_silenced():
        float_model = converter("float32").convert()
    interpreter_type, _ = interpreter_class()
    with quiet_interpreter_start():
        interpreter = interpreter_type(model_content=float_model)
    tensors = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    denied = [tensors[i] for op in interpreter._get_ops_details() for i in op["outputs"]  # noqa: SLF001 - the ops' outputs by name
              if i >= 0 and _in_scopes(tensors[i], set(front_end))]
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=denied)
    with native_stderr_silenced(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")  # the debugger's own interpreter, not ours
        debugger = tf.lite.experimental.QuantizationDebugger(converter=made, debug_dataset=samples, debug_options=options)
        return debugger.get_nondebug_quantized_model()


def _in_scopes(tensor_name: str, layer_names: set[str]) -> bool:
    """Whether a TFLite tensor was made inside one of the Keras layers (`model_1/<layer>_1/...`, fused names joined by `;`)."""
    for name in tensor_name.split(";"):
        for part in name.split("/")[1:-1]:
            base = part.rsplit("_", 1)[0] if part.rsplit("_", 1)[-1].isdigit() else part
            if part in layer_names or base in layer_names:
                return True
    return False


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
        **({"quantized": NETWORK_INT8} if variant == "int8" else {}),
        "output": {"name": target.task.raw_output, "dtype": "float32",
                   "shape": [1] if target.task.head_units(class_names) == 1 else [1, len(class_names)],
                   "meaning": target.task.output_reading(target)},
        "class_names": list(class_names), "task": target.to_dict(),
    })


def keras_copy_of(version_dir: str | os.PathLike):
    """The export's Keras copy: the reference every file is held to, and where int8 reads the front end's layers."""
    import keras

    from tl_keras.export.signatures import EXTRA_ASSETS, KERAS_COPY

    return keras.saving.load_model(Path(version_dir) / EXTRA_ASSETS / KERAS_COPY, compile=False)


def export_audio_tflite(
    version_dir: str | os.PathLike, out_dir: str | os.PathLike, waves: np.ndarray, labels: np.ndarray, class_names: Sequence[str], *,
    sample_rate: int, variants: Sequence[str] = DEFAULT_AUDIO_VARIANTS, min_agreement: dict[str, float] | None = None,
    calibration: np.ndarray | None = None,
) -> dict:
    """Converts a sound export to each variant, checks each on `waves`, writes the files, sidecars and `tflite_report.json`.

    `calibration`: training clips for int8 (the held-out `waves` are never
    calibrated on).
    """
    from tl_keras.audio.batches import predict_waves

    version_dir, out = Path(version_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_labels_file(out / LABELS_FILE, class_names)
    model = keras_copy_of(version_dir)
    keras_outputs = predict_waves(model, waves)
    target = exported_target(version_dir, class_names)
    front_end = front_end_layers(model)

    def planned(variant: str) -> PlannedFile:
        return PlannedFile(
            variant, out / f"{version_dir.parent.name}_{variant}.tflite",
            convert=lambda: convert_audio(version_dir, variant, output=target.task.raw_output, calibration=calibration,
                                          front_end=front_end),
            check=lambda content: audio_parity(variant, content, keras_outputs, waves, labels, class_names, target),
            describe=lambda path, row: write_audio_sidecar(path, variant, sample_rate, waves.shape[1], class_names, target),
        )

    rows, failures = write_checked_files([planned(v) for v in variants], min_agreement)
    report = {"saved_model": str(version_dir), "model_kind": "audio", "sample_rate": sample_rate, "clip_samples": int(waves.shape[1]),
              "classes": list(class_names), "task": target.kind, "variants": rows, "failures": failures}
    atomic.write_json(out / "tflite_report.json", report)
    return report
