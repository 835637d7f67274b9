"""A classifier's predictions on a split scored and written up, whatever its inputs were.

metrics.json, per_class.csv, confusion_matrix.png, per_class.png,
reliability.png and report.html from predicted probabilities and labels;
a modality adds how to show its mistakes (images get galleries and Grad-CAM
through `inspection`, texts a table) as a piece of HTML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tl_keras.evaluation.calibration import calibration_report, plot_reliability
from tl_keras.evaluation.metrics import classification_metrics, plot_per_class, write_metrics
from tl_keras.evaluation.report import write_report


def evaluate_predictions(
    probabilities: np.ndarray, labels: np.ndarray, class_names: Sequence[str], out_dir: str | Path, *,
    split: str, temperature: float | None = None, temperature_decision: dict | None = None, curves: Path | None = None,
    title: str = "", extra: dict | None = None, noun: str = "examples", mistakes_html: str = "",
    explained_with: str = "not available for this kind of model",
) -> dict:
    """Writes the evaluation files for `probabilities` of a split's examples; returns the metrics (also in metrics.json).

    (Thirteen parameters: the split's facts, the temperature and its
    decision, and the report's words, each differing between callers.)
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = classification_metrics(probabilities, labels, class_names)
    metrics.update({"split": split, **(extra or {})})
    metrics["calibration"], curves_of = calibration_report(probabilities, labels, temperature, temperature_decision, "validation", split)
    metrics["explained_with"] = explained_with
    pictures = {"curves": curves, "per_class": plot_per_class(metrics, out / "per_class.png")}
    pictures["reliability"] = plot_reliability(curves_of, out / "reliability.png") if len(labels) else None
    written = write_metrics(metrics, out)
    pictures["confusion_matrix"] = written["confusion_matrix"]
    notes = [f"{metrics['examples']} {noun} of the {split} split; {len(class_names)} classes."]
    report = write_report(
        out / "report.html", metrics, pictures, title=title or f"Evaluation on the {split} split", notes=notes, errors_html=mistakes_html,
        noun=noun, image_sections=False,
    )
    metrics["report"] = str(report)
    return metrics
