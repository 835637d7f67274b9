"""Metrics a user can read: accuracy, top-k, per-class precision/recall/F1, confusion matrix, curves.

Everything is computed from one pass of predictions with NumPy, so the
numbers in `metrics.json`, `per_class.csv`, the PNGs and TensorBoard are the
same numbers.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tl_keras.io import atomic
from tl_keras.tasks.measures import classification_metrics, confusion_matrix  # noqa: F401 - measured in the task layer, importable here as before


def for_latest_model(build):
    """`build(model)`, kept for the most recent model only: traced functions are reused across passes over one
    model, and an earlier model (with its graph) is not pinned in memory once another is evaluated."""
    held: dict = {}

    def get(model):
        if held.get("model") is not model:
            held.clear()
            held.update(model=model, value=build(model))
        return held["value"]

    return get


def _traced_inference(model):
    import tensorflow as tf

    return tf.function(lambda images: model(images, training=False), reduce_retracing=True)


# `model(images, training=False)` traced once into a graph, for every evaluation pass over `model`: calling a
# Keras model eagerly runs op by op from Python, several times slower per image than the traced graph.
inference_function = for_latest_model(_traced_inference)


def predict_dataset(model, dataset) -> tuple[np.ndarray, np.ndarray]:
    """The model's outputs and the targets over a batched (inputs, targets) dataset: integer labels, tag rows or values."""
    predict = inference_function(model)
    probabilities, labels = [], []
    for images, batch_labels in dataset:
        probabilities.append(np.asarray(predict(images)))
        labels.append(np.asarray(batch_labels))
    labels = np.concatenate(labels)
    if np.issubdtype(labels.dtype, np.integer):  # class ids; tags (N, K) and values (N,) keep their shape and float type
        labels = labels.reshape(-1).astype(np.int64)
    return np.concatenate(probabilities), labels


def write_metrics(metrics: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes metrics.json, per_class.csv and confusion_matrix.png; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out / "metrics.json", "per_class": out / "per_class.csv", "confusion_matrix": out / "confusion_matrix.png"}
    atomic.write_json(paths["metrics"], metrics)
    with paths["per_class"].open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        for name, row in metrics["per_class"].items():
            writer.writerow([name, f"{row['precision']:.6f}", f"{row['recall']:.6f}", f"{row['f1']:.6f}", row["support"]])
    plot_confusion_matrix(np.array(metrics["confusion_matrix"]), metrics["class_names"], paths["confusion_matrix"])
    return paths


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    return _pyplot()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on servers
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike) -> Path:
    """Counts with row-normalised shading, class names on both axes."""
    plt = _pyplot()
    n = len(class_names)
    side = max(4.0, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(side, side))
    rows = matrix.sum(axis=1, keepdims=True)
    shade = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if shade[i, j] > 0.5 else "black", fontsize=8)
    ax.set_title("confusion matrix")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_curves(history: dict, path: str | os.PathLike) -> Path:
    """Loss and the task's metric (accuracy, binary accuracy of tags, mean absolute error) of every phase on one epoch axis,
    phase boundaries marked.

    `history` is the content of history.json (a `TrainingResult`).
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    logged = {key.removeprefix("val_") for phase in history["phases"] for key in phase["history"]}
    second = next((m for m in ("accuracy", "binary_accuracy", "mae") if m in logged), "accuracy")
    for metric, ax in zip(("loss", second), axes):
        for phase in history["phases"]:
            if phase["epochs_run"]:
                epochs = np.arange(phase["first_epoch"], phase["first_epoch"] + phase["epochs_run"])
            else:  # a phase that is one fit (the logistic frozen head): one point at "epoch 0"
                epochs = np.array([phase["first_epoch"] - 1])
            for prefix, style in (("", "-"), ("val_", "--")):
                values = phase["history"].get(prefix + metric)
                if values:
                    marker = "o" if not phase["epochs_run"] else None
                    label = f"{phase['name']} {prefix or 'train_'}{metric}"
                    ax.plot(epochs[: len(values)], values[: len(epochs)], style, marker=marker, label=label)
        for phase in history["phases"][1:]:
            ax.axvline(phase["first_epoch"] - 0.5, color="grey", linestyle=":")
            ax.annotate(
                f"{phase['name']} starts", (phase["first_epoch"] - 0.5, ax.get_ylim()[1]), fontsize=8, va="top", ha="right", rotation=90
            )
        if history.get("kept_epoch") is not None and metric in history.get("monitor", ""):
            ax.axvline(history["kept_epoch"], color="green", alpha=0.4)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.legend(fontsize=7)
    fig.suptitle(f"kept: {history.get('kept_phase')} phase, epoch {history.get('kept_epoch')}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def plot_per_class(metrics: dict, path: str | os.PathLike, most: int = 40) -> Path:
    """Precision, recall and F1 per class as horizontal bars, worst F1 at the top (the `most` worst when there are more)."""
    plt = _pyplot()
    rows = sorted(metrics["per_class"].items(), key=lambda item: item[1]["f1"])[:most]
    names = [name for name, _ in rows][::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.32 * len(rows) + 1)))
    positions = np.arange(len(rows))
    for offset, key in ((-0.27, "precision"), (0.0, "recall"), (0.27, "f1")):
        ax.barh(positions + offset, [row[key] for _, row in rows][::-1], height=0.27, label=key)
    ax.set_yticks(positions, labels=names, fontsize=8)
    ax.set_xlim(0, 1)
    ax.legend(fontsize=8, loc="lower right")
    shown = f"{len(rows)} lowest-F1 of {len(metrics['per_class'])} classes" if len(metrics["per_class"]) > most else "per class"
    ax.set_title(f"precision / recall / F1, {shown}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
