"""What every TFLite export shares, whatever its input: the variants, their agreement thresholds, the interpreter, latency, collapse.

The converters are each modality's (`vision.tflite`: a fixed [1, S, S, 3]
pixel input; `text.tflite`: token ids), since what a file is fed differs;
how a file is judged against Keras does not.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import tensorflow as tf

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
# Agreement (top-1 equal to Keras) a variant must reach unless told otherwise.
DEFAULT_MIN_AGREEMENT = {"float32": 0.999, "float16": 0.99, "dynamic_range": 0.99, "int8": 0.97}
# Largest probability difference from Keras each variant is expected to stay within.
PROBABILITY_TOLERANCE = {"float32": 1e-5, "float16": 1e-2, "dynamic_range": 5e-2, "int8": 0.25}
COLLAPSE_SHARE = 0.8  # one class taking this share of predictions is a collapse...
RECALL_DROP = 0.10  # ...and so is a class losing more than 10 points of recall


def interpreter_class():
    """LiteRT's interpreter when `ai_edge_litert` is installed, else TensorFlow's own; and its name."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        return tf.lite.Interpreter, "tf.lite.Interpreter"


def median_latency_ms(predict_one, example, runs: int = 30) -> float:
    """Median milliseconds of `predict_one(example)` over `runs` calls, after one untimed call (any file, any input)."""
    predict_one(example)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        predict_one(example)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def collapse_check(tflite_top1, keras_top1, labels, class_names) -> dict:
    shares = np.bincount(tflite_top1, minlength=len(class_names)) / max(len(tflite_top1), 1)
    dominant = int(shares.argmax())
    recalls = {}
    dropped = []
    for index, name in enumerate(class_names):
        mask = labels == index
        if not mask.any():
            continue
        float_recall = float(np.mean(keras_top1[mask] == index))
        quant_recall = float(np.mean(tflite_top1[mask] == index))
        recalls[name] = {"keras": float_recall, "tflite": quant_recall}
        if float_recall - quant_recall > RECALL_DROP:
            dropped.append(name)
    collapsed = bool(shares[dominant] >= COLLAPSE_SHARE and len(class_names) > 1 and np.mean(labels == dominant) < COLLAPSE_SHARE)
    return {
        "per_class_recall": recalls,
        "dominant_class": class_names[dominant],
        "dominant_share": float(shares[dominant]),
        "collapse": collapsed,
        "recall_dropped_over_10_points": dropped,
        "flagged": collapsed or bool(dropped),
    }
