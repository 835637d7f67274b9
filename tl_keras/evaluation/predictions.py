"""A classifier's predictions on a split scored and written up, whatever its inputs were.

metrics.json, per_class.csv, confusion_matrix.png, per_class.png,
reliability.png and report.html from predicted probabilities and labels;
a modality adds how to show its mistakes (images get galleries and Grad-CAM
through `inspection`, texts a table) as a piece of HTML.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from tl_keras.evaluation.calibration import calibration_report, plot_reliability
from tl_keras.evaluation.metrics import classification_metrics, plot_per_class, write_metrics
from tl_keras.evaluation.report import write_report


@dataclasses.dataclass(frozen=True)
class SplitReport:
    """What an evaluation folder says of the split it scores, besides the predictions: the same for every modality and task.

    Args:
        split: the split's name, for the metrics and the page.
        title: the page's heading (empty: "Evaluation on the <split> split").
        curves: the training curves PNG to show, if any.
        extra: facts recorded in metrics.json beside the measurements (e.g. the kept phase).
        temperature: a temperature fitted elsewhere that the model's head will carry: calibration is
            reported before and after it. None reports the model as it is.
        temperature_decision: how `temperature` was chosen (`calibration.choose_temperature`).
        fitted_on: the split `temperature` was fitted on.
    """

    split: str
    title: str = ""
    curves: Path | None = None
    extra: dict | None = None
    temperature: float | None = None
    temperature_decision: dict | None = None
    fitted_on: str = "validation"

    @property
    def heading(self) -> str:
        return self.title or f"Evaluation on the {self.split} split"

    def calibration(self, probabilities: np.ndarray, labels: np.ndarray) -> tuple[dict, dict]:
        """(metrics.json's calibration block, the reliability curves) of `probabilities`, before and after the temperature."""
        return calibration_report(probabilities, labels, self.temperature, self.temperature_decision, self.fitted_on, self.split)


def evaluate_predictions(
    probabilities: np.ndarray, labels: np.ndarray, class_names: Sequence[str], out_dir: str | Path, about: SplitReport, *,
    noun: str = "examples", mistakes_html: str = "", explained_with: str = "not available for this kind of model",
) -> dict:
    """Writes the evaluation files for `probabilities` of a split's examples; returns the metrics (also in metrics.json).

    `mistakes_html`: how the modality shows its mistakes (a table of texts, clips to play).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    split = about.split
    metrics = classification_metrics(probabilities, labels, class_names)
    metrics.update({"split": split, **(about.extra or {})})
    metrics["calibration"], curves_of = about.calibration(probabilities, labels)
    metrics["explained_with"] = explained_with
    pictures = {"curves": about.curves, "per_class": plot_per_class(metrics, out / "per_class.png")}
    pictures["reliability"] = plot_reliability(curves_of, out / "reliability.png") if len(labels) else None
    written = write_metrics(metrics, out)
    pictures["confusion_matrix"] = written["confusion_matrix"]
    notes = [f"{metrics['examples']} {noun} of the {split} split; {len(class_names)} classes."]
    report = write_report(
        out / "report.html", metrics, pictures, title=about.heading, notes=notes, errors_html=mistakes_html,
        noun=noun, image_sections=False,
    )
    metrics["report"] = str(report)
    return metrics
