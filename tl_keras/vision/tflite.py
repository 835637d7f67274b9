"""Image TFLite conversion (float32, float16, dynamic-range, full int8) and proof that each file agrees with Keras.

Files are converted from the exported SavedModel's `predict_pixels`
signature with a fixed [1, S, S, 3] input: the backbone's normalisation is
inside the file, the resize is not (at S x S it is an identity). An app
resizes each photo to S x S the way training did, which the sidecar states
exactly (`resize_contract`: bilinear, no antialiasing, the whole frame
squashed, no crop), and feeds RGB pixels (float 0-255, or uint8/int8 for
the full-integer variant). Every file is then run
on held-out images next to the Keras model: agreement, accuracy, error,
size and latency go into one report, and int8 files are checked for the
class collapse full-integer quantisation is known for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tl_keras.io import atomic
from tl_keras.export.saved_model import LABELS_FILE, PIXELS_SIGNATURE, PROBABILITIES, write_labels_file
from tl_keras.export.tflite import (  # noqa: F401 - the variants and their thresholds, importable with the image converter
    COLLAPSE_SHARE, DEFAULT_MIN_AGREEMENT, PROBABILITY_TOLERANCE, RECALL_DROP, VARIANTS, add_ratios_to_float32, below_min_agreement,
    PlannedFile, collapse_check, exported_target, format_report, interpreter_class, median_latency_ms, quiet_interpreter_start,
    write_checked_files,
)


def convert(
    version_dir: str | os.PathLike,
    variant: str,
    image_size: int,
    representative: np.ndarray | None = None,
    int8_io: str = "uint8",
    *,
    pin_input_range: bool = True,
    output: str = PROBABILITIES,
) -> bytes:
    """Converts an export's pixel signature to a TFLite flatbuffer whose one output is the signature's `output`
    (the task's own: probabilities, tag scores, or the value).

    Args:
        version_dir: a `saved_models/<name>/<version>` folder.
        variant: one of VARIANTS.
        image_size: the side S of the fixed [1, S, S, 3] input.
        representative: uint8 images [N, S, S, 3] to calibrate int8 (100-500,
            drawn across classes); required for "int8".
        int8_io: "uint8" or "int8" input/output type of the int8 variant.
        pin_input_range: calibrate the int8 input on the full 0-255 range
            (scale 1), so raw pixels feed as they are.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}; known: {', '.join(VARIANTS)}")
    loaded = tf.saved_model.load(str(version_dir))
    pixels_fn = loaded.signatures[PIXELS_SIGNATURE]

    @tf.function(input_signature=[tf.TensorSpec([1, image_size, image_size, 3], tf.float32, name="pixels")])
    def pixels_to_probabilities(pixels):
        return {output: pixels_fn(images=pixels)[output]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([pixels_to_probabilities.get_concrete_function()], loaded)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_range":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "int8":
        if representative is None or len(representative) == 0:
            raise ValueError("the int8 variant needs representative images to calibrate on")
        if int8_io not in ("uint8", "int8"):
            raise ValueError(f"int8_io={int8_io!r}: must be uint8 or int8")
        samples = np.asarray(representative, dtype=np.float32)

        def calibration():
            # The input's quantisation range is the calibration minimum and maximum. Photos rarely reach
            # both 0 and 255, so the range would end short of them and an app could not feed raw camera
            # bytes. A smooth ramp over the full range first pins the input to scale 1 over
            # 0-255 (uint8: zero point 0; int8: -128) while barely touching the ranges further in.
            if pin_input_range:
                yield [full_range_ramp(image_size)[None]]
            for image in samples:
                yield [image[None]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = calibration
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.uint8 if int8_io == "uint8" else tf.int8
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    return converter.convert()


def full_range_ramp(image_size: int) -> np.ndarray:
    """A float32 [S, S, 3] image whose pixels run smoothly from 0 to 255 (diagonally; channels offset)."""
    position = np.linspace(0.0, 1.0, image_size, dtype=np.float32)
    ramp = (position[:, None] + position[None, :]) / 2.0
    channels = [ramp, ramp[::-1, :], ramp[:, ::-1]]
    return np.round(np.stack(channels, axis=-1) * 255.0).astype(np.float32)


class TFLiteClassifier:
    """Runs a converted file on uint8 pixels, quantising and dequantising as its tensors require."""

    def __init__(self, model_content: bytes, num_threads: int | None = None):
        interpreter, self.interpreter_name = interpreter_class()
        with quiet_interpreter_start():
            self.interpreter = interpreter(model_content=model_content, num_threads=num_threads or os.cpu_count())
            self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.input["dtype"])

    @property
    def output_dtype(self) -> np.dtype:
        return np.dtype(self.output["dtype"])

    def quantization(self) -> dict:
        """Scale and zero point of the input and output (scale 0: not quantised)."""
        (in_scale, in_zero), (out_scale, out_zero) = self.input["quantization"], self.output["quantization"]
        return {
            "input": {"scale": float(in_scale), "zero_point": int(in_zero)},
            "output": {"scale": float(out_scale), "zero_point": int(out_zero)},
        }

    def _feed(self, image: np.ndarray) -> np.ndarray:
        x = image.astype(np.float32)[None]
        scale, zero = self.input["quantization"]
        if np.issubdtype(self.input_dtype, np.integer):
            info = np.iinfo(self.input_dtype)
            return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input_dtype)
        return x

    def predict_one(self, image: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], self._feed(image))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])[0]
        scale, zero = self.output["quantization"]
        if np.issubdtype(self.output_dtype, np.integer):
            return (out.astype(np.float32) - zero) * scale
        return out.astype(np.float32)

    def predict(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self.predict_one(image) for image in images])

    def median_latency_ms(self, image: np.ndarray, runs: int = 30) -> float:
        return median_latency_ms(self.predict_one, image, runs)


def representative_sample(images: np.ndarray, labels: np.ndarray, count: int = 200, seed: int = 0) -> np.ndarray:
    """Up to `count` images drawn evenly across classes (calibration must see every class)."""
    from tl_keras.data.splits import balanced_indices

    return images[balanced_indices(labels, count, seed)]


def parity(
    variant: str,
    model_content: bytes,
    keras_probabilities: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    target=None,
) -> dict:
    """One report row: the TFLite file against the Keras model on the same images, in the task's terms (`target`:
    the export's `tasks.TargetSpec`; by default one label over `class_names`)."""
    from tl_keras.tasks import SINGLE_LABEL, TargetSpec

    target = target or TargetSpec(SINGLE_LABEL, list(class_names))
    runner = TFLiteClassifier(model_content)
    probabilities = runner.predict(images).reshape(keras_probabilities.shape)
    difference = np.abs(probabilities - keras_probabilities)
    row = {
        "variant": variant,
        "size_bytes": len(model_content),
        **target.task.parity(probabilities, keras_probabilities, labels, target),
        "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()),
        "median_latency_ms": runner.median_latency_ms(images[0]),
        "interpreter": runner.interpreter_name,
        "input_dtype": runner.input_dtype.name,
        "output_dtype": runner.output_dtype.name,
        "quantization": runner.quantization(),
        "images": int(len(labels)),
    }
    if target.kind == SINGLE_LABEL:  # a quantised classifier's known failure: most images fall into one class
        row.update(collapse_check(probabilities.argmax(axis=1), keras_probabilities.argmax(axis=1), labels, class_names))
    return row


def resize_contract(model, image_size: int) -> dict:
    """How an app must bring a photo to the file's S x S input: what the model's own Resizing layer (and training) does."""
    from tl_keras.vision.serving import resize_front

    resize, _ = resize_front(model) if model is not None else (None, None)
    method = getattr(resize, "interpolation", "bilinear")
    antialias = bool(getattr(resize, "antialias", False))
    return {
        "size": [image_size, image_size], "method": method, "antialias": antialias,
        "geometry": "squash the whole frame to S x S: no crop, no padding, the aspect ratio is not kept",
        "orientation": "upright, as a viewer shows the photo: apply the JPEG's EXIF orientation before resizing (training and the "
                       "SavedModel's bytes signature do)",
        "example": f"tf.image.resize(rgb, ({image_size}, {image_size}), method='{method}', antialias={antialias})",
    }


def write_sidecar(
    path: Path, variant: str, image_size: int, class_names: Sequence[str], row: dict, preprocessing: str, resize: dict | None = None,
    target=None,
) -> None:
    """Labels and what an app must know to feed the file, beside it (see README for why not inside)."""
    sidecar = {
        "file": path.name,
        "variant": variant,
        "input": {
            "shape": [1, image_size, image_size, 3],
            "dtype": row["input_dtype"],
            "pixels": "RGB, 0-255, already resized to S x S as resize_contract says (the normalisation is inside the model)",
        },
        "resize_contract": resize or resize_contract(None, image_size),
        "output": {"name": target.task.raw_output if target else PROBABILITIES, "dtype": row["output_dtype"],
                   **({"meaning": target.task.output_reading(target)} if target else {})},
        **({"task": target.to_dict()} if target else {}),
        "normalisation_inside_model": preprocessing,
        "quantization": row["quantization"],
        "class_names": list(class_names),
    }
    if row["input_dtype"] in ("uint8", "int8"):
        sidecar["input"]["feed"] = "q = clip(round(pixel / scale + zero_point)) with input scale and zero_point above"
        sidecar["output"]["read"] = "output = (q - zero_point) * scale with output scale and zero_point above"
    atomic.write_json(path.with_suffix(".json"), sidecar)


def export_tflite(
    version_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    representative: np.ndarray,
    variants: Sequence[str] = VARIANTS,
    int8_io: str = "uint8",
    min_agreement: dict[str, float] | None = None,
) -> dict:
    """Converts an export to each variant, checks each against Keras, writes files and report.

    (Nine parameters: a public entry point; each is a conversion choice a user makes.)

    Writes `<out_dir>/<name>_<variant>.tflite` with a `.json` sidecar each,
    `labels.txt` and `tflite_report.json`. `images` are uint8 [N, S, S, 3]
    held-out images with integer `labels`.

    Returns:
        The report; `failures` lists each variant below its minimum agreement.
    """
    from tl_keras.models.anatomy import anatomy
    from tl_keras.export.reload import load_classifier

    version_dir = Path(version_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = load_classifier(version_dir)
    preprocessing = anatomy(model).preprocessing or "none"
    size = int(images.shape[1])
    keras_probabilities = model.predict(images, verbose=0)
    target = exported_target(version_dir, class_names)
    name = version_dir.parent.name
    write_labels_file(out / LABELS_FILE, class_names)
    contract = resize_contract(model, size)

    def planned(variant: str) -> PlannedFile:
        return PlannedFile(
            variant, out / f"{name}_{variant}.tflite",
            convert=lambda: convert(version_dir, variant, size, representative if variant == "int8" else None, int8_io,
                                    output=target.task.raw_output),
            check=lambda content: parity(variant, content, keras_probabilities, images, labels, class_names, target),
            describe=lambda path, row: write_sidecar(path, variant, size, class_names, row, preprocessing, contract, target),
        )

    rows, failures = write_checked_files([planned(v) for v in variants], min_agreement)
    report = {"saved_model": str(version_dir), "image_size": size, "classes": list(class_names), "task": target.kind, "variants": rows,
              "failures": failures}
    atomic.write_json(out / "tflite_report.json", report)
    return report
