"""What every TFLite export shares, whatever its input: the variants, their agreement thresholds, the interpreter, latency, collapse.

The converters are each modality's (`vision.tflite`: a fixed [1, S, S, 3]
pixel input; `text.tflite`: token ids), since what a file is fed differs;
how a file is judged against Keras does not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from tl_keras.io.native_stderr import native_stderr_silenced

VARIANTS = ("float32", "float16", "dynamic_range", "int8")
# Agreement (top-1 equal to Keras) a variant must reach unless told otherwise.
DEFAULT_MIN_AGREEMENT = {"float32": 0.999, "float16": 0.99, "dynamic_range": 0.99, "int8": 0.97}
# Largest probability difference from Keras each variant is expected to stay within.
PROBABILITY_TOLERANCE = {"float32": 1e-5, "float16": 1e-2, "dynamic_range": 5e-2, "int8": 0.25}
COLLAPSE_SHARE = 0.8  # one class taking this share of predictions is a collapse...
RECALL_DROP = 0.10  # ...and so is a class losing more than 10 points of recall


@contextlib.contextmanager
def quiet_interpreter_start():
    """Around building and allocating an interpreter: LiteRT's "Created TensorFlow Lite XNNPACK delegate for CPU." is written
    by its C++ straight to stderr, once per process, past every log setting (`--verbosity=1` lets it through)."""
    from absl import logging

    with native_stderr_silenced(enabled=logging.get_verbosity() < 1):
        yield


def below_min_agreement(row: dict, threshold: float) -> str | None:
    """Records `threshold` in the report row and whether the row is below it; returns the failure line when it is.

    A variant below its threshold fails the command and is flagged in the
    table and the JSON alike (the table said 'error' while the JSON said
    `"flagged": false`).
    """
    below = row["agreement"] < threshold
    row.update(min_agreement=threshold, below_min_agreement=below, flagged=bool(row.get("flagged")) or below)
    return f"{row['variant']}: agreement {row['agreement']:.4f} < {threshold}" if below else None


def add_ratios_to_float32(rows: list[dict], group: str = "") -> None:
    """Each row's size and speed against the float32 row of its group (`group`: the key that tells forms apart, e.g. "form").

    A row without a float32 row beside it gets no ratio (the table prints "-"),
    rather than 1.00.
    """
    for row in rows:
        reference = next((r for r in rows if r.get("precision", r["variant"]) == "float32" and r.get(group) == row.get(group)), None)
        if reference is not None:
            row["size_vs_float32"] = row["size_bytes"] / reference["size_bytes"]
            row["speedup_vs_float32"] = reference["median_latency_ms"] / row["median_latency_ms"]


@dataclasses.dataclass
class PlannedFile:
    """One TFLite file a modality writes: its variant (which sets its agreement threshold), where it goes, and how it is made,
    checked against Keras (a report row) and described beside itself (the sidecar, given the row)."""

    variant: str
    path: Path
    convert: Callable[[], bytes]
    check: Callable[[bytes], dict]
    describe: Callable[[Path, dict], None]


def write_checked_files(planned: Sequence[PlannedFile], min_agreement: dict[str, float] | None = None,
                        group: str = "") -> tuple[list[dict], list[str]]:
    """Converts, writes, checks and describes each planned file in turn: (report rows, failure lines).

    Each row gains its file, conversion time, size on disk, threshold and
    whether it is below it, and its size and speed against the float32 row
    of its `group` (`add_ratios_to_float32`). Every modality's converter
    goes through here, so a report row means the same whatever the input.
    """
    thresholds = {**DEFAULT_MIN_AGREEMENT, **(min_agreement or {})}
    rows, failures = [], []
    for plan in planned:
        started = time.perf_counter()
        content = plan.convert()
        seconds = time.perf_counter() - started
        plan.path.write_bytes(content)
        row = plan.check(content)
        row.update(file=str(plan.path), convert_seconds=round(seconds, 2), size_on_disk_bytes=plan.path.stat().st_size)
        failure = below_min_agreement(row, thresholds[plan.variant])
        failures += [failure] if failure else []
        plan.describe(plan.path, row)
        rows.append(row)
    add_ratios_to_float32(rows, group)
    return rows, failures


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


def format_report(report: dict) -> str:
    """The report as a table, one row per variant; "-" where a ratio has no float32 row to compare with."""
    width = max([14] + [len(r["variant"]) + 2 for r in report["variants"]])

    def ratio(row: dict, key: str) -> str:
        return f"{row[key]:.2f}" if key in row else "-"

    measure = report["variants"][0].get("measure", "accuracy") if report["variants"] else "accuracy"
    heading = {"accuracy": "acc"}.get(measure, measure)
    lines = [f"{'variant':<{width}}{'size KB':>9}{'x f32':>7}{'ms':>8}{'speedup':>8}{heading:>7}{'agree':>7}{'max|dp|':>9}  flags"]
    for r in report["variants"]:
        flags_text = "COLLAPSE " if r.get("collapse") else ""
        if r.get("recall_dropped_over_10_points"):
            flags_text += "recall drop: " + ",".join(r["recall_dropped_over_10_points"]) + " "
        if r.get("below_min_agreement"):
            flags_text += f"BELOW --min_agreement {r['min_agreement']}"
        row = (f"{r['variant']:<{width}}{r['size_bytes'] / 1024:>9.0f}{ratio(r, 'size_vs_float32'):>7}{r['median_latency_ms']:>8.2f}"
               f"{ratio(r, 'speedup_vs_float32'):>8}{r['accuracy']:>7.3f}{r['agreement']:>7.3f}{r['max_abs_diff']:>9.4f}  {flags_text}")
        lines.append(row.rstrip())
    first = report["variants"][0] if report["variants"] else None
    outputs = len(first.get("per_class_recall", report.get("classes", []))) if first else 0
    lines.append(f"interpreter: {first['interpreter'] if first else '-'}; {outputs} {'classes' if measure == 'accuracy' else 'outputs'}")
    return "\n".join(lines)


def exported_target(version_dir, class_names):
    """The task an export answers for (its model card's), single-label over `class_names` for an export from before tasks."""
    import json
    from pathlib import Path

    from tl_keras.export.signatures import EXTRA_ASSETS, MODEL_CARD
    from tl_keras.tasks import TargetSpec

    card = Path(version_dir) / EXTRA_ASSETS / MODEL_CARD
    task = json.loads(card.read_text(encoding="utf-8")).get("task") if card.is_file() else None
    return TargetSpec.from_dict(task, class_names)
