"""Evaluation files for a multi-label or regression model: metrics.json, a per-label or per-example CSV, plots, report.html.

The single-label evaluation (`predictions.evaluate_predictions`) has a
confusion matrix, calibration and Grad-CAM; these tasks have none of those,
and get what answers their own questions instead: per-tag precision-recall
curves and the examples most wrongly tagged, or predicted against true
values and the largest errors. Examples are shown by what the modality
names them with (a text, a file name), HTML-escaped.
"""

from __future__ import annotations

import csv
import html
import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tl_keras.evaluation.metrics import pyplot
from tl_keras.evaluation.predictions import SplitReport
from tl_keras.io import atomic
from tl_keras.evaluation.report import image_tag, page, table
from tl_keras.tasks import MULTI_LABEL, SINGLE_LABEL, TargetSpec

WORST_SHOWN = 20
TEXT_SHOWN = 300
MOST_CURVES = 12  # precision-recall curves drawn: the most frequent tags


def evaluate_task_split(
    outputs: np.ndarray, targets: np.ndarray, spec: TargetSpec, examples: Sequence[str], out_dir: str | os.PathLike,
    about: SplitReport, *, noun: str = "examples", show: Callable[[str], str] | None = None,
) -> dict:
    """Measures `outputs` (scores or values, the user's units) against `targets` and writes the files; returns the metrics.

    `about`'s temperature is not used (tags and values are not temperature-scaled). `show` turns an example's name into the
    HTML the worst-examples table shows (a modality's own: a thumbnail of a photo); by default the name, escaped.
    """
    split, title, curves, extra = about.split, about.title, about.curves, about.extra
    show = show or _shown
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = spec.task.evaluate(outputs, targets, spec.names, spec.thresholds)
    metrics.update({"task": spec.kind, "split": split, **(extra or {})})
    if spec.kind == MULTI_LABEL:
        pictures = {"precision-recall curves": _plot_precision_recall(outputs, targets, spec.names, out / "precision_recall.png")}
        worst = _worst_tagged(outputs, targets, spec, examples, show)
        _write_per_label(metrics, out / "per_label.csv")
        rows = [(name, *(row[k] for k in ("average_precision", "precision", "recall", "f1", "support", "threshold")))
                for name, row in metrics["per_label"].items()]
        detail = table(["tag", "AP", "precision", "recall", "F1", "positives", "threshold"], [[_na(c) for c in r] for r in rows])
        headline = [("mAP", metrics["map"]), ("micro F1", metrics["micro"]["f1"]), ("macro F1", metrics["macro"]["f1"]),
                    ("subset accuracy", metrics["subset_accuracy"]), ("tags per example (true)", metrics["cardinality"]["true"]),
                    ("tags per example (predicted)", metrics["cardinality"]["predicted"])]
        worst_title = f"The {noun} most wrongly tagged"
    else:
        values = np.asarray(outputs).reshape(len(outputs), -1)[:, 0]
        pictures = {"predicted against true": _plot_predicted(values, targets, out / "predicted_vs_true.png")}
        worst = _largest_errors(values, targets, examples, show)
        _write_values(values, targets, examples, out / "predictions.csv")
        detail = ""
        headline = [(k.upper() if k in ("mae", "rmse") else k.capitalize() if k != "r2" else "R²", metrics[k])
                    for k in ("mae", "rmse", "r2", "pearson", "spearman")]
        worst_title = f"The {noun} with the largest errors"
    if curves is not None:
        pictures = {"training curves": curves, **pictures}
    sections = [("metrics", f"Metrics ({metrics['examples']} {noun}, {split} split)", table(["metric", "value"], headline) + detail)]
    sections += [(key.replace(" ", "-"), key.capitalize(), image_tag(path, key)) for key, path in pictures.items()]
    sections.append(("errors", worst_title, worst))
    metrics["report"] = str(page(out / "report.html", title or f"{spec.describe()} on the {split} split", sections))
    atomic.write_json(out / "metrics.json", metrics)
    return metrics


def frozen_probe_scores(holder, model, result, spec: TargetSpec, validation, held_out, validation_targets, held_targets) -> dict:
    """The frozen phase's model (the converged probe on frozen features) scored on the held-out split in the task's measures.

    Every run reports it beside the kept model, so a user sees what
    fine-tuning added on examples no choice was made on. `holder` is the
    model the phase checkpoints were saved from (the training wrapper, or
    the model itself); its kept weights are loaded back afterwards.

    (Eight parameters: the two models, the training result, and the data the probe is settled and scored on.)
    """
    from tl_keras.config.settings import FROZEN
    from tl_keras.training.phase import load_weights_quietly

    phases = {p.name: p for p in result.phases}
    frozen, kept = phases.get(FROZEN), phases.get(result.kept_phase)
    if frozen is None or not frozen.weights_path or kept is None or not kept.weights_path:
        return {}
    if result.kept_phase != FROZEN:
        load_weights_quietly(holder, frozen.weights_path)
    try:
        return settled_scores(model, spec, validation, held_out, validation_targets, held_targets)[2]
    finally:
        load_weights_quietly(holder, kept.weights_path)  # the kept weights, before anything settled the probe's


def settled_scores(model, spec: TargetSpec, validation, held_out, validation_targets, held_targets):
    """(the spec, the held-out outputs, the task's scores) once the task has settled `model` on validation (thresholds
    chosen, or the value's scale folded in): what every arm of a tag or value run reports, measured one way.

    (Six parameters: the model, its task, and the two splits with their targets in the user's units.)
    """
    from tl_keras.evaluation.metrics import predict_dataset

    spec = spec.task.finish_model(model, spec, lambda: predict_dataset(model, validation)[0], validation_targets)
    outputs, _ = predict_dataset(model, held_out)
    return spec, outputs, spec.task.scores(spec.task.evaluate(outputs, held_targets, spec.names, spec.thresholds))


def targets_of(dataset, spec: TargetSpec) -> np.ndarray:
    """The targets of a batched (inputs, targets) dataset in the user's units, read without running a model."""
    return spec.user_targets(np.concatenate([np.asarray(y) for _, y in dataset]))


def recorded_target(run_dir: str | os.PathLike) -> TargetSpec | None:
    """The task a finished run trained for (summary.json's, thresholds included); None for a single-label run or an unfinished one."""
    import json

    from tl_keras.io.run_folder import RunFolder

    summary = RunFolder(run_dir).summary
    task = json.loads(summary.read_text(encoding="utf-8")).get("task") if summary.is_file() else None
    spec = TargetSpec.from_dict(task) if task else None
    return spec if spec is not None and spec.kind != SINGLE_LABEL else None


def score_lines(metrics: dict, target: TargetSpec, split: str) -> list[str]:
    """What a script prints for a split scored in a task's measures: the task's scores, the example count, the report's path."""
    return [f"{split}: " + ", ".join(f"{k} {v:.4f}" for k, v in target.task.scores(metrics).items()) + f" on {metrics['examples']}",
            f"report: {metrics['report']} (metrics.json beside it)"]


def _na(value):
    return "n/a" if value is None else value


def _shown(text: str) -> str:
    return html.escape(text if len(text) <= TEXT_SHOWN else text[:TEXT_SHOWN] + "...")


def _worst_tagged(scores, targets, spec: TargetSpec, examples, show) -> str:
    """The examples with the most tags wrong at the thresholds (ties: the larger total score error)."""
    truth = np.asarray(targets) > 0.5
    cut = np.asarray(spec.thresholds or [0.5] * len(spec.names))
    predicted = scores >= cut
    wrong = (predicted != truth).sum(1)
    distance = np.abs(scores - truth).sum(1)
    order = [i for i in np.lexsort((-distance, -wrong)) if wrong[i]][:WORST_SHOWN]
    if not order:
        return '<p class="note">Every example tagged exactly right.</p>'
    names = np.asarray(spec.names)
    rows = "".join(
        f"<tr><td>{html.escape(', '.join(names[truth[i]]))}</td><td>{html.escape(', '.join(names[predicted[i]]) or '(none)')}</td>"
        f'<td>{int(wrong[i])}</td><td class="text">{show(examples[i])}</td></tr>' for i in order
    )
    return (f'<p class="note">{int((wrong > 0).sum())} of {len(wrong)} with at least one tag wrong; the {len(order)} worst:</p>'
            "<table><tr><th>true tags</th><th>predicted tags</th><th>wrong</th><th>example</th></tr>" + rows + "</table>")


def _largest_errors(values, targets, examples, show) -> str:
    truth = np.asarray(targets, np.float64).reshape(-1)
    order = np.argsort(-np.abs(values - truth), kind="stable")[:WORST_SHOWN]
    rows = "".join(f'<tr><td>{truth[i]:.4g}</td><td>{values[i]:.4g}</td><td>{values[i] - truth[i]:+.4g}</td>'
                   f'<td class="text">{show(examples[i])}</td></tr>' for i in order)
    return "<table><tr><th>true</th><th>predicted</th><th>error</th><th>example</th></tr>" + rows + "</table>"


def _plot_precision_recall(scores, targets, names, path: Path) -> Path | None:
    from sklearn.metrics import precision_recall_curve

    truth = np.asarray(targets) > 0.5
    order = [j for j in np.argsort(-truth.sum(0), kind="stable") if truth[:, j].any()][:MOST_CURVES]
    if not order:
        return None
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(7, 5))
    for j in order:
        precision, recall, _ = precision_recall_curve(truth[:, j], scores[:, j])
        axis.plot(recall, precision, label=names[j])
    axis.set_xlabel("recall")
    axis.set_ylabel("precision")
    axis.legend(fontsize="small", loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _plot_predicted(values, targets, path: Path) -> Path:
    truth = np.asarray(targets, np.float64).reshape(-1)
    plt = pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 5))
    axis.scatter(truth, values, s=8, alpha=0.5)
    low, high = float(min(truth.min(), values.min())), float(max(truth.max(), values.max()))
    axis.plot([low, high], [low, high], color="grey", linewidth=1)
    axis.set_xlabel("true")
    axis.set_ylabel("predicted")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _write_per_label(metrics: dict, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tag", "average_precision", "precision", "recall", "f1", "support", "threshold"])
        for name, row in metrics["per_label"].items():
            writer.writerow([name, *(row[k] for k in ("average_precision", "precision", "recall", "f1", "support", "threshold"))])


def _write_values(values, targets, examples, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["example", "true", "predicted"])
        for example, truth, value in zip(examples, np.asarray(targets).reshape(-1), values):
            writer.writerow([example, float(truth), float(value)])
