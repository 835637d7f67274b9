"""How a held-out split is measured, per task kind, from one pass of outputs with NumPy and scikit-learn.

Pure arrays in, a JSON-ready dict out: the evaluation layer writes, plots
and pages these numbers, so `metrics.json`, the report and the summary
agree. Multi-label decisions use per-label thresholds chosen on validation
(`choose_thresholds`); regression is measured in the user's units.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# A label with fewer validation positives than this keeps the 0.5 threshold: F1 on two or three examples
# picks a threshold by noise (one positive more or less swings it across the whole range).
MIN_POSITIVES_FOR_THRESHOLD = 5
DEFAULT_THRESHOLD = 0.5


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes (scikit-learn's, over every class even if unseen)."""
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    return sklearn_confusion_matrix(labels, predicted, labels=np.arange(num_classes)).astype(np.int64)


def classification_metrics(probabilities: np.ndarray, labels: np.ndarray, class_names: Sequence[str], top_k: int = 5) -> dict:
    """Accuracy, top-k accuracy, per-class and averaged precision/recall/F1, and the confusion matrix.

    scikit-learn computes them over every class (`labels=range(n)`), so a
    class never predicted has precision 0 and a class absent from the labels
    recall 0 (zero_division=0), and the macro averages count every class.
    """
    from sklearn.metrics import precision_recall_fscore_support

    num_classes = len(class_names)
    classes = np.arange(num_classes)
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted, num_classes)
    precision, recall, f1, support = precision_recall_fscore_support(labels, predicted, labels=classes, zero_division=0)
    weights = support / support.sum() if support.sum() else np.zeros(num_classes)
    k = min(top_k, num_classes)
    # Top-k stays our own two lines: scikit-learn's top_k_accuracy_score infers "binary" from labels holding
    # two distinct values (a 2-class model, or a test split that covers only two classes) and refuses a 2-D score.
    top = np.argsort(-probabilities, axis=1)[:, :k]
    has_labels = len(labels) > 0
    return {
        "examples": int(len(labels)),
        "accuracy": float(np.mean(predicted == labels)) if has_labels else 0.0,
        f"top_{k}_accuracy": float(np.mean(np.any(top == labels[:, None], axis=1))) if has_labels else 0.0,
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "macro": {"precision": float(precision.mean()), "recall": float(recall.mean()), "f1": float(f1.mean())},
        "weighted": {"precision": float(weights @ precision), "recall": float(weights @ recall), "f1": float(weights @ f1)},
        "class_names": list(class_names),
        "confusion_matrix": matrix.tolist(),
    }


def single_label_measures(probabilities: np.ndarray, labels: np.ndarray, names: Sequence[str]) -> dict:
    return classification_metrics(probabilities, np.asarray(labels).astype(np.int64), names)


def choose_thresholds(scores: np.ndarray, targets: np.ndarray, min_positives: int = MIN_POSITIVES_FOR_THRESHOLD) -> list[float]:
    """Per label, the score threshold that maximises that label's F1 on validation (the midpoint between the two
    scores it falls between); labels with fewer than `min_positives` positives keep 0.5."""
    thresholds = []
    for column in range(targets.shape[1]):
        truth, score = targets[:, column] > 0.5, scores[:, column]
        if truth.sum() < min_positives:
            thresholds.append(DEFAULT_THRESHOLD)
            continue
        order = np.argsort(-score, kind="stable")
        hits = np.cumsum(truth[order])
        predicted = np.arange(1, len(order) + 1)
        f1 = 2 * hits / (predicted + truth.sum())
        best = int(np.argmax(f1))
        low = score[order[best + 1]] if best + 1 < len(order) else 0.0
        thresholds.append(float((score[order[best]] + low) / 2))
    return thresholds


def multi_label_measures(scores: np.ndarray, targets: np.ndarray, names: Sequence[str], thresholds: Sequence[float] | None) -> dict:
    """mAP (macro average precision over labels with a positive), per-label AP and P/R/F1 at the thresholds, micro and
    macro F1, subset accuracy, and the mean number of tags predicted against true."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support

    truth = np.asarray(targets) > 0.5
    cut = np.asarray(thresholds if thresholds is not None else [DEFAULT_THRESHOLD] * len(names), np.float64)
    predicted = scores >= cut
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, zero_division=0)
    micro = precision_recall_fscore_support(truth, predicted, average="micro", zero_division=0)
    present = truth.sum(axis=0) > 0
    ap = np.array([average_precision_score(truth[:, j], scores[:, j]) if present[j] else np.nan for j in range(len(names))])
    return {
        "examples": int(len(truth)),
        "map": float(np.nanmean(ap)) if present.any() else 0.0,
        "micro": {"precision": float(micro[0]), "recall": float(micro[1]), "f1": float(micro[2])},
        "macro": {"precision": float(precision[present].mean()) if present.any() else 0.0,
                  "recall": float(recall[present].mean()) if present.any() else 0.0,
                  "f1": float(f1[present].mean()) if present.any() else 0.0},
        "subset_accuracy": float(np.mean(np.all(predicted == truth, axis=1))) if len(truth) else 0.0,
        "cardinality": {"true": float(truth.sum(1).mean()) if len(truth) else 0.0,
                        "predicted": float(predicted.sum(1).mean()) if len(truth) else 0.0},
        "per_label": {
            name: {"average_precision": None if np.isnan(ap[j]) else float(ap[j]), "precision": float(precision[j]),
                   "recall": float(recall[j]), "f1": float(f1[j]), "support": int(support[j]), "threshold": float(cut[j])}
            for j, name in enumerate(names)
        },
        "label_names": list(names),
        "macro_note": "macro averages count the labels with at least one positive in this split",
    }


def regression_measures(predicted: np.ndarray, targets: np.ndarray) -> dict:
    """MAE, RMSE, R², Pearson and Spearman correlation, in the target's own units."""
    from scipy.stats import pearsonr, spearmanr

    predicted, truth = np.asarray(predicted, np.float64).reshape(-1), np.asarray(targets, np.float64).reshape(-1)
    errors = predicted - truth
    spread = float(np.sum((truth - truth.mean()) ** 2))
    constant = len(truth) < 2 or np.ptp(truth) == 0 or np.ptp(predicted) == 0
    return {
        "examples": int(len(truth)),
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "r2": float(1.0 - np.sum(errors**2) / spread) if spread > 0 else 0.0,
        "pearson": 0.0 if constant else float(pearsonr(predicted, truth)[0]),
        "spearman": 0.0 if constant else float(spearmanr(predicted, truth)[0]),
        "target_mean": float(truth.mean()) if len(truth) else 0.0,
    }
