"""Several tags per example: a sigmoid head, binary cross-entropy, one logistic regression per tag on frozen features.

Targets are rows of 0/1 per tag (float32). A tag is decided by its own
threshold, chosen on validation where it has enough positives
(`measures.choose_thresholds`) and shipped with the model.
"""

from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from tl_keras.tasks import measures
from tl_keras.tasks.base import MULTI_LABEL, Task, dense_logits, penalty, pick_strength, timed
from tl_keras.tasks.single_label import STRENGTHS
from tl_keras.tasks.splitting import iterative_stratified_split

_EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 - eps] in its cross-entropy; the host scores do the same


class MultiLabel(Task):
    kind = MULTI_LABEL
    activation = "sigmoid"
    monitor = "val_loss"
    headline = "map"
    estimator = "a logistic regression per tag"
    raw_output = "scores"

    def head_units(self, names) -> int:
        if len(names) < 1:
            raise ValueError("a multi-label model needs at least one tag")
        return len(names)

    def loss(self, label_smoothing: float = 0.0, regression_loss: str = "mse"):
        return keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing)

    def metrics(self) -> list:
        return [keras.metrics.BinaryAccuracy(name="binary_accuracy")]

    def fit_head(self, head, train, validation, *, sample_weight=None, strength=None) -> dict:
        """One logistic regression per tag with one shared L2 strength, picked by the validation cross-entropy over every tag."""
        started = time.perf_counter()
        features, targets = train

        def fit(c):
            kernel, bias = _fit_each_tag(features, targets, c, sample_weight)
            if validation is None:
                return 0.0, (kernel, bias)
            val_x, val_y = validation
            probabilities = _sigmoid(np.asarray(val_x, np.float64) @ kernel + bias)
            return _cross_entropy(probabilities, val_y), (kernel, bias)

        if strength is None:
            strength, loss, (kernel, bias) = pick_strength(STRENGTHS, fit)
        else:
            loss, (kernel, bias) = fit(strength)
            loss = None
        head.kernel.assign(kernel.astype(np.float32))
        head.bias.assign(bias.astype(np.float32))
        return {"C": strength, "validation_log_loss": loss, "rows": int(len(targets)), "seconds": timed(started)}

    def host_scores(self, head, features, targets, label_smoothing: float = 0.0) -> dict:
        probabilities = _sigmoid(dense_logits(head, features))
        truth = np.asarray(targets, np.float64)
        smoothed = truth * (1.0 - label_smoothing) + 0.5 * label_smoothing
        loss = _cross_entropy(probabilities, smoothed) + penalty(head)
        accuracy = np.mean((probabilities > 0.5) == (truth > 0.5), dtype=np.float32)
        return {"loss": float(np.float32(loss)), "binary_accuracy": float(accuracy)}

    def split(self, targets, validation_fraction, test_fraction, seed):
        return iterative_stratified_split(np.asarray(targets) > 0.5, validation_fraction, test_fraction, seed)

    def evaluate(self, outputs, targets, names, thresholds=None) -> dict:
        return measures.multi_label_measures(outputs, targets, names, thresholds)

    def counts(self, targets, names) -> dict[str, int]:
        positives = (np.asarray(targets) > 0.5).sum(axis=0) if len(targets) else np.zeros(len(names))
        return {name: int(positives[j]) for j, name in enumerate(names)}

    def constant_baseline(self, train_targets, held_targets, spec) -> dict[str, float]:
        share = np.asarray(train_targets, np.float64).mean(axis=0)
        scores = np.broadcast_to(share, np.asarray(held_targets).shape)
        return self.scores(measures.multi_label_measures(scores, held_targets, spec.names, [0.5] * len(spec.names)))

    def finish_model(self, model, spec, validation_outputs, validation_targets):
        """Each tag's threshold, chosen on validation (`measures.choose_thresholds`), shipped in the spec."""
        import dataclasses

        return dataclasses.replace(spec, thresholds=measures.choose_thresholds(validation_outputs(), np.asarray(validation_targets)))

    def scores(self, metrics: dict) -> dict[str, float]:
        return {"map": metrics["map"], "macro_f1": metrics["macro"]["f1"], "micro_f1": metrics["micro"]["f1"],
                "subset_accuracy": metrics["subset_accuracy"]}

    def parity(self, outputs, reference, targets, spec) -> dict:
        """Agreement: the share of (example, tag) decisions at the shipped thresholds that match; accuracy: mAP."""
        cut = np.asarray(spec.thresholds or [measures.DEFAULT_THRESHOLD] * outputs.shape[1])
        return {"measure": "map", "accuracy": measures.multi_label_measures(outputs, targets, spec.names, cut)["map"],
                "keras_accuracy": measures.multi_label_measures(reference, targets, spec.names, cut)["map"],
                "agreement": float(np.mean((outputs >= cut) == (reference >= cut)))}

    def output_reading(self, spec) -> str:
        cut = spec.thresholds or [measures.DEFAULT_THRESHOLD] * len(spec.names)
        return ("scores [1, T] in labels.txt order, each tag's probability; a tag applies when its score reaches its threshold: "
                + ", ".join(f"{name} {t:.4f}" for name, t in zip(spec.names, cut)))

    def serving_outputs(self, names, top_k, thresholds=None):
        table = tf.constant(list(names))
        cut = tf.constant(list(thresholds) if thresholds is not None else [measures.DEFAULT_THRESHOLD] * len(names), tf.float32)

        def outputs(scores):
            above = scores >= cut
            tags = tf.where(above, tf.broadcast_to(table, tf.shape(above)), tf.constant(""))
            return {"scores": scores, "tags": tags, "above_threshold": above}

        return outputs, ["scores", "tags", "above_threshold"]


def _fit_each_tag(features, targets, strength: float, sample_weight) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of a logistic regression per tag; a tag all positive or all negative in training gets a constant logit."""
    from sklearn.linear_model import LogisticRegression

    truth = np.asarray(targets) > 0.5
    kernel = np.zeros((features.shape[1], truth.shape[1]))
    bias = np.zeros(truth.shape[1])
    for j in range(truth.shape[1]):
        column = truth[:, j]
        if column.all() or not column.any():
            bias[j] = 30.0 if column.all() else -30.0
            continue
        model = LogisticRegression(C=strength, max_iter=1000, tol=1e-4).fit(features, column, sample_weight=sample_weight)
        kernel[:, j], bias[j] = model.coef_[0], model.intercept_[0]
    return kernel, bias


def _sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(logits, -80, 80)))


def _cross_entropy(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """Keras's binary cross-entropy: mean over tags, then over examples."""
    p = np.clip(probabilities, _EPSILON, 1.0 - _EPSILON)
    truth = np.asarray(truth, np.float64)
    return float(np.mean(-(truth * np.log(p) + (1.0 - truth) * np.log(1.0 - p))))
