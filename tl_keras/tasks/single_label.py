"""One label per example: a softmax head, cross-entropy, multinomial logistic regression on frozen features.

This is the task every earlier run was; its numbers stay as they were
measured (the estimator and its search are the same code that was in
`training.features`).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import tensorflow as tf

from tl_keras.data.splits import stratified_split
from tl_keras.models.losses import Accuracy, SparseCrossentropy
from tl_keras.tasks.base import SINGLE_LABEL, Task, dense_logits, penalty, pick_strength, timed

# Inverse L2 strengths tried, strongest first (half-decade steps): with a few hundred rows and 1000+
# features the best is often near 0.01, so the grid reaches well below it.
STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


class SingleLabel(Task):
    kind = SINGLE_LABEL
    activation = "softmax"
    monitor = "val_accuracy"
    headline = "accuracy"
    estimator = "a logistic regression"
    raw_output = "probabilities"

    def head_units(self, names: Sequence[str]) -> int:
        if len(names) < 2:
            raise ValueError(f"num_classes={len(names)}: a classifier needs at least two classes")
        return len(names)

    def loss(self, label_smoothing: float = 0.0, regression_loss: str = "mse"):
        return SparseCrossentropy(label_smoothing=label_smoothing)

    def metrics(self) -> list:
        return [Accuracy()]

    def fit_head(self, head, train, validation, *, sample_weight=None, strength=None) -> dict:
        """Scikit-learn's multinomial logistic regression, its L2 strength picked by validation log-loss."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss

        started = time.perf_counter()
        features, labels = train
        num_classes = int(head.units)
        if strength is not None:
            model = LogisticRegression(C=strength, max_iter=1000, tol=1e-4).fit(features, labels, sample_weight=sample_weight)
            _set_head(head, model, features.shape[1], num_classes)
            return {"C": strength, "validation_accuracy": None, "validation_log_loss": None, "rows": int(len(labels)),
                    "seconds": timed(started)}
        val_x, val_y = validation

        def fit(c):
            # A fresh model per strength (warm starts would make the answer depend on the path taken).
            model = LogisticRegression(C=c, max_iter=1000, tol=1e-4).fit(features, labels, sample_weight=sample_weight)
            probabilities = np.zeros((len(val_y), num_classes))
            probabilities[:, model.classes_] = model.predict_proba(val_x)
            # float32 features give float32 probabilities, whose rows miss 1 by more than float64's tolerance in log_loss
            # (a warning per fit); renormalised in float64. Not clipped: log_loss clips at machine epsilon itself.
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            loss = log_loss(val_y, probabilities, labels=list(range(num_classes)))
            return loss, (model, float(np.mean(probabilities.argmax(1) == val_y)))

        strength, loss, (model, accuracy) = pick_strength(STRENGTHS, fit)
        _set_head(head, model, features.shape[1], num_classes)
        return {"C": strength, "validation_accuracy": accuracy, "validation_log_loss": float(loss), "rows": int(len(labels)),
                "seconds": timed(started)}

    def cross_validated_strength(self, features: np.ndarray, labels: np.ndarray, sample_weight=None, folds: int = 5) -> float | None:
        """The grid's strength with the best `folds`-fold cross-validated log-loss over these rows (stratified folds, in row
        order; scikit-learn's search); None where a class has too few rows for two folds.

        For a fit on every labelled row, where no validation split is left: validation's strength was picked on a few
        dozen images, which at high accuracy say little about log-loss (benchmarks/one_folder.py --frozen_draws).
        """
        import warnings

        from sklearn.linear_model import LogisticRegressionCV
        from sklearn.model_selection import StratifiedKFold

        labels = np.asarray(labels)
        smallest = int(np.bincount(labels).min()) if len(labels) else 0
        folds = min(folds, smallest)
        if folds < 2:
            return None
        with warnings.catch_warnings():  # scikit-learn announces changes of defaults; the arguments here are explicit
            warnings.simplefilter("ignore", FutureWarning)
            search = LogisticRegressionCV(Cs=list(STRENGTHS), cv=StratifiedKFold(folds), scoring="neg_log_loss", max_iter=1000,
                                          tol=1e-4).fit(features, labels, sample_weight=sample_weight)
        return float(np.ravel(search.C_)[0])  # one value for all classes; scikit-learn 1.10 makes it a scalar

    def host_scores(self, head, features, targets, label_smoothing: float = 0.0) -> dict:
        logits = dense_logits(head, features)
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        classes = probabilities.shape[1]
        labels = np.asarray(targets)
        smoothed = np.eye(classes)[labels] * (1.0 - label_smoothing) + label_smoothing / classes
        loss = float(np.mean(-np.sum(smoothed * np.log(np.clip(probabilities, 1e-7, 1.0)), axis=1))) + penalty(head)
        accuracy = np.mean(probabilities.argmax(1) == labels, dtype=np.float32)
        return {"loss": float(np.float32(loss)), "accuracy": float(accuracy)}  # float32, as Keras reports them

    def split(self, targets, validation_fraction, test_fraction, seed):
        return stratified_split(np.asarray(targets), validation_fraction, test_fraction, seed)

    def evaluate(self, outputs, targets, names, thresholds=None) -> dict:
        from tl_keras.tasks.measures import single_label_measures

        return single_label_measures(outputs, targets, names)

    def counts(self, targets, names) -> dict[str, int]:
        return {name: int(np.sum(np.asarray(targets) == i)) for i, name in enumerate(names)}

    def scores(self, metrics: dict) -> dict[str, float]:
        return {"accuracy": float(metrics["accuracy"]), "macro_f1": float(metrics["macro"]["f1"])}

    def parity(self, outputs, reference, targets, spec) -> dict:
        top1, keras_top1 = outputs.argmax(axis=1), reference.argmax(axis=1)
        return {"measure": "accuracy", "accuracy": float(np.mean(top1 == targets)), "keras_accuracy": float(np.mean(keras_top1 == targets)),
                "agreement": float(np.mean(top1 == keras_top1))}

    def output_reading(self, spec) -> str:
        return "probabilities [1, C] in labels.txt order; the class is the largest"

    def constant_baseline(self, train_targets, held_targets, spec) -> dict[str, float]:
        counts = np.bincount(np.asarray(train_targets, np.int64), minlength=len(spec.names)).astype(np.float64)
        probabilities = np.broadcast_to(counts / max(counts.sum(), 1.0), (len(held_targets), len(spec.names)))
        return self.scores(self.evaluate(probabilities, held_targets, spec.names))

    def serving_outputs(self, names, top_k, thresholds=None):
        table = tf.constant(list(names))
        k = max(1, min(int(top_k), len(names)))

        def outputs(probabilities):
            scores, indices = tf.math.top_k(probabilities, k=k)
            return {"probabilities": probabilities, "classes": tf.gather(table, indices), "scores": scores}

        return outputs, ["probabilities", "classes", "scores"]


def _set_head(head, model, width: int, num_classes: int) -> None:
    """The Dense softmax head set to a fitted scikit-learn logistic regression's weights."""
    kernel = np.zeros((width, num_classes), np.float32)
    bias = np.full((num_classes,), -30.0, np.float32)  # a class absent from training stays improbable
    if len(model.classes_) == 2:  # binary: one logit w.x + b; softmax over (-z/2, z/2) gives the same probabilities
        coef, intercept = model.coef_[0] / 2, model.intercept_[0] / 2
        kernel[:, model.classes_[0]], kernel[:, model.classes_[1]] = -coef, coef
        bias[model.classes_[0]], bias[model.classes_[1]] = -intercept, intercept
    else:
        kernel[:, model.classes_] = model.coef_.T
        bias[model.classes_] = model.intercept_
    head.kernel.assign(kernel)
    head.bias.assign(bias)
