"""What a task kind owns, and how the core finds the task of a model: from its head, not from a flag.

A task kind (one label, several tags, a number) decides the head's
activation, the loss and the metrics `fit` reports, the frozen phase's
estimator on cached features, the scores that estimator's fit is logged
with, how examples are split, and how a held-out split is measured. The
core asks the task for each; none branches on the task's name.

The kind travels in the graph: a softmax head is one label, a sigmoid head
several tags, a linear head a number. So a reloaded `.keras` file, a head
over cached features and a training wrapper around the classifier all
answer `task_of` without a side channel that could disagree with the model.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import keras
import numpy as np

from tl_keras.models.anatomy import producer

SINGLE_LABEL = "single_label"
MULTI_LABEL = "multi_label"
REGRESSION = "regression"
KINDS = (SINGLE_LABEL, MULTI_LABEL, REGRESSION)

# Rows scored at once on the host: 65,536 x 1,280 float64 features are 0.7 GB, whatever the cache holds.
HOST_SCORE_ROWS = 65_536


class Task:
    """One task kind; subclasses fill in every method. Instances hold no data: what a run learns (names,
    thresholds, the target's scale) is a `tasks.targets.TargetSpec`."""

    kind: str = ""
    activation: str = ""  # the head's, which is how `task_of` recognises the kind
    monitor: str = "val_loss"  # what picks the best epoch and phase when the user names none
    headline: str = ""  # the metric of `evaluate` a run reports first
    estimator: str = ""  # the frozen phase's convex fit, as the log names it
    raw_output: str = ""  # the serving output that is the model's own output (what a TFLite file returns)

    def head_units(self, names: Sequence[str]) -> int:
        return len(names)

    def loss(self, label_smoothing: float = 0.0, regression_loss: str = "mse") -> keras.losses.Loss:
        raise NotImplementedError

    def metrics(self) -> list:
        raise NotImplementedError

    def fit_head(self, head: keras.layers.Dense, train: tuple, validation: tuple | None, *, sample_weight=None,
                 strength: float | None = None) -> dict:
        """Sets `head` to the task's convex estimator on (features, targets); its strength picked on `validation`
        (or `strength` when given: the refit, which has no validation left). Returns {"C", "rows", "seconds", ...}."""
        raise NotImplementedError

    def cross_validated_strength(self, features: np.ndarray, targets: np.ndarray, sample_weight=None, folds: int = 5) -> float | None:
        """The estimator's strength chosen by cross-validation over these rows, or None where the task does not choose it so
        (the caller keeps the strength validation picked)."""
        return None

    def host_scores(self, head: keras.layers.Dense, features: np.ndarray, targets: np.ndarray, label_smoothing: float = 0.0) -> dict:
        """The loss and metrics `fit` would log for `head` on cached features, computed in NumPy (a Keras loss called
        under a distribution strategy divides by the replica count, and `evaluate` cannot take host arrays there)."""
        raise NotImplementedError

    def host_scores_in_chunks(self, head: keras.layers.Dense, features: np.ndarray, targets: np.ndarray,
                              label_smoothing: float = 0.0, rows: int = HOST_SCORE_ROWS) -> dict:
        """`host_scores` over `rows` rows at a time, averaged by rows: the same numbers (each is a mean over rows,
        the penalty a constant) without a float64 copy of every cached feature, which at millions of rows is
        more memory than the features themselves. One chunk when everything fits in it."""
        total = len(targets)
        if total <= rows:
            return self.host_scores(head, np.asarray(features), np.asarray(targets), label_smoothing)
        sums: dict[str, float] = {}
        for start in range(0, total, rows):
            part = self.host_scores(head, np.asarray(features[start:start + rows]), np.asarray(targets[start:start + rows]),
                                    label_smoothing)
            share = min(rows, total - start)
            for key, value in part.items():
                sums[key] = sums.get(key, 0.0) + value * share
        return {key: float(np.float32(value / total)) for key, value in sums.items()}

    def split(self, targets: np.ndarray, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def evaluate(self, outputs: np.ndarray, targets: np.ndarray, names: Sequence[str], thresholds=None) -> dict:
        raise NotImplementedError

    def counts(self, targets: np.ndarray, names: Sequence[str]) -> dict[str, int]:
        """What a split holds, per name, for the log and summary.json."""
        raise NotImplementedError

    def scores(self, metrics: dict) -> dict[str, float]:
        """The few numbers of `evaluate`'s dict that a summary, a model card and a comparison carry; the headline first."""
        raise NotImplementedError

    def constant_baseline(self, train_targets: np.ndarray, held_targets: np.ndarray, spec) -> dict[str, float]:
        """`scores` of the answer that ignores the input, learnt from the training targets alone (each tag's training
        share as its score; the training mean as the value): what a model must beat to have learnt anything."""
        raise NotImplementedError

    def finish_model(self, model: keras.Model, spec, validation_outputs: Callable[[], np.ndarray], validation_targets: np.ndarray):
        """What training leaves to settle once the kept weights are in: returns the spec, with anything chosen on validation.

        One label: nothing here (its temperature has a rule of its own, `evaluation.calibration`).
        """
        return spec

    def parity(self, outputs: np.ndarray, reference: np.ndarray, targets: np.ndarray, spec) -> dict:
        """A converted model's outputs against the Keras model's on the same inputs, in the task's terms: `agreement` (the share
        of decisions that match), `accuracy` (the task's headline on `targets`, `measure` names it) and `keras_accuracy`."""
        raise NotImplementedError

    def output_reading(self, spec) -> str:
        """How an app reads the raw output, for a TFLite sidecar."""
        raise NotImplementedError

    def serving_outputs(self, names: Sequence[str], top_k: int, thresholds=None) -> tuple[Callable, list[str]]:
        """(model outputs -> the serving signature's dict, the output names) for the export."""
        raise NotImplementedError


def head_of(model: keras.Model) -> keras.layers.Layer | None:
    """The layer that makes the model's output, looking through wrappers (augmentation, a head over features) to the classifier's;
    None for a model with no graph to read (a subclassed trainer such as the distiller, which trains one label)."""
    if not getattr(model, "outputs", None):
        return None
    layer = producer(model.outputs[0])
    while isinstance(layer, keras.Model) and getattr(layer, "outputs", None):
        layer = producer(layer.outputs[0])
    return layer


def dense_logits(head: keras.layers.Dense, features: np.ndarray) -> np.ndarray:
    """The head's pre-activation outputs in float64 (dropout is off at inference)."""
    return np.asarray(features, np.float64) @ np.asarray(head.kernel, np.float64) + np.asarray(head.bias, np.float64)


def penalty(head: keras.layers.Dense) -> float:
    """The head's L2 penalty, which Keras adds to the logged loss, so host scores and `fit`'s compare on one scale."""
    return float(head.kernel_regularizer(head.kernel)) if head.kernel_regularizer is not None else 0.0


def pick_strength(strengths: Sequence[float], fit_and_score: Callable[[float], tuple[float, object]]) -> tuple[float, float, object]:
    """The strength with the lowest validation loss, searched strongest first; two rises past the best end the search
    (validation loss is unimodal in the strength in practice). Returns (strength, loss, fitted)."""
    best, rises = None, 0
    for strength in strengths:
        loss, fitted = fit_and_score(strength)
        if best is None or loss < best[1]:
            best, rises = (strength, loss, fitted), 0
        else:
            rises += 1
            if rises == 2:
                break
    return best


def timed(started: float) -> float:
    return round(time.perf_counter() - started, 2)
