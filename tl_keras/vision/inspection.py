"""Everything a user looks at after training, from one pass over a split: metrics, mistakes, Grad-CAM, calibration, TTA, report.html.

Shared by the training run (`run.py`, on its test split) and
`experiments/evaluate.py` (on any folder or split), so both write the same
files into their evaluation folder:

  metrics.json, per_class.csv, confusion_matrix.png, per_class.png,
  errors.png, errors/<class>.png, grad_cam.png, reliability.png, report.html
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
from absl import logging

from tl_keras.evaluation.calibration import apply_temperature, plot_reliability
from tl_keras.evaluation.predictions import SplitReport
from tl_keras.evaluation.metrics import classification_metrics, inference_function, plot_per_class, write_metrics
from tl_keras.vision.gallery import ExampleKeeper, plot_examples
from tl_keras.evaluation.report import write_report
from tl_keras.vision.tta import check_mode, predict_views, view_count

# Per-class mistake grids drawn (classes with the most mistakes first); the rest are in the confusion matrix.
MAX_CLASS_GALLERIES = 12
GRAD_CAM_WRONG = 4
GRAD_CAM_RIGHT = 4


def inspect_split(
    model,
    batches,
    class_names: Sequence[str],
    out_dir: str | Path,
    about: SplitReport,
    *,
    label_map: np.ndarray | None = None,
    tta: str = "none",
) -> dict:
    """Predicts `batches` once and writes every evaluation file into `out_dir`; returns the metrics (also metrics.json).

    Args:
        model: a classifier taking the batches' uint8 images.
        batches: (images, labels) batches, in a fixed order.
        class_names: the model's classes, in output order.
        out_dir: the evaluation folder.
        about: the split's name, the page's words, and the temperature the head will carry (the
            gallery then shows the calibrated probabilities the export will return).
        label_map: maps the batches' labels to the model's outputs (`classes.align`); None when they agree.
        tta: test-time augmentation to measure besides the plain prediction.
    """
    check_mode(tta)
    split, temperature = about.split, about.temperature
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keeper = ExampleKeeper(len(class_names))
    scaled = bool(temperature) and temperature != 1.0  # T = 1 (a declined fit) changes nothing to show twice
    predict = inference_function(model)
    probabilities, labels, tta_probabilities = [], [], []
    for images, batch_labels in batches:
        batch_probabilities = np.asarray(predict(images), np.float32)
        batch_labels = np.asarray(batch_labels).reshape(-1).astype(np.int64)
        if label_map is not None:
            batch_labels = label_map[batch_labels]
        shown = apply_temperature(batch_probabilities, temperature) if scaled else batch_probabilities
        keeper.add(np.asarray(images), shown, batch_labels)
        probabilities.append(batch_probabilities)
        labels.append(batch_labels)
        if tta != "none":
            tta_probabilities.append(predict_views(predict, images, tta))
    probabilities = np.concatenate(probabilities) if probabilities else np.zeros((0, len(class_names)), np.float32)
    labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)

    metrics = classification_metrics(probabilities, labels, class_names)
    metrics.update({"split": split, **(about.extra or {})})
    metrics["calibration"], reliability_curves = about.calibration(probabilities, labels)
    if tta != "none" and len(labels):
        tta_accuracy = float(np.mean(np.concatenate(tta_probabilities).argmax(1) == labels))
        metrics["tta"] = {"mode": tta, "views": view_count(tta), "accuracy": tta_accuracy, "gain": tta_accuracy - metrics["accuracy"]}

    pictures: dict[str, Path | None] = {"curves": about.curves}
    pictures["per_class"] = plot_per_class(metrics, out / "per_class.png")
    pictures["reliability"] = plot_reliability(reliability_curves, out / "reliability.png") if len(labels) else None
    pictures["errors"] = plot_examples(
        keeper.top_mistakes(), class_names, out / "errors.png", f"highest-loss mistakes on the {split} split"
    )
    pictures.update(_class_galleries(keeper, metrics, class_names, out / "errors"))
    pictures["grad_cam"], metrics["explained_with"] = _grad_cam_panel(model, keeper, class_names, out / "grad_cam.png")
    written = write_metrics(metrics, out)
    pictures["confusion_matrix"] = written["confusion_matrix"]
    notes = [f"{metrics['examples']} images of the {split} split; {len(class_names)} classes."]
    report = write_report(out / "report.html", metrics, pictures, title=about.heading, notes=notes)
    metrics["report"] = str(report)
    return metrics


def _class_galleries(keeper: ExampleKeeper, metrics: dict, class_names: Sequence[str], folder: Path) -> dict[str, Path]:
    matrix = np.asarray(metrics["confusion_matrix"])
    wrong = matrix.sum(axis=1) - np.diag(matrix)
    order = [int(c) for c in np.argsort(-wrong, kind="stable") if wrong[c] > 0]
    pictures = {}
    for rank, label in enumerate(order):
        examples = keeper.mistakes_of(label)
        if not examples:
            continue
        folder.mkdir(parents=True, exist_ok=True)
        path = plot_examples(examples, class_names, folder / f"{_file_name(class_names[label])}.png",
                             f"{class_names[label]}: {wrong[label]} mistakes", columns=len(examples))
        if rank < MAX_CLASS_GALLERIES:  # every class gets its file; the page shows the worst ones
            pictures[f"errors_class:{rank:04d} {class_names[label]}"] = path
    return pictures


def _grad_cam_panel(model, keeper: ExampleKeeper, class_names: Sequence[str], path: Path) -> tuple[Path | None, str]:
    """Overlays for the highest-loss mistakes and correct images from distinct classes, each explaining its predicted class."""
    from tl_keras.vision.explain import cam_source, grad_cam

    examples = keeper.top_mistakes()[:GRAD_CAM_WRONG] + keeper.correct_examples()[:GRAD_CAM_RIGHT]
    if not examples:
        return None, "none"
    try:  # every kept image comes from a batch at the model's input size, so they explain as one batch
        heat = grad_cam(model, np.stack([example.image for example in examples]), class_index=[example.predicted for example in examples])
        source = cam_source(model)
    except ValueError as error:  # e.g. an ensemble averaging several heads: no single head to explain
        logging.warning("Grad-CAM skipped: %s", error)
        return None, f"not available ({error})"
    return plot_examples(examples, class_names, path, "Grad-CAM: mistakes, then correct predictions", heat_maps=heat), source


def _file_name(class_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", class_name).strip("._") or "class"
