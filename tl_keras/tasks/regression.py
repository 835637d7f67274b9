"""A number per example: a linear head on a standardised target, mean squared error (or Huber), ridge regression on frozen features.

Training sees the target standardised (mean 0, standard deviation 1 on the
training split: the head's initial scale and the rates tuned for
classification suit it, and Huber's threshold means one standard
deviation); `tasks.targets.fold_target_scale` then folds the scale into the
head, so the saved and exported model answers in the user's units.
"""

from __future__ import annotations

import time

import keras
import numpy as np

from tl_keras.tasks import measures
from tl_keras.tasks.base import REGRESSION, Task, dense_logits, head_of, penalty, pick_strength, timed
from tl_keras.tasks.splitting import quantile_bins
from tl_keras.data.splits import stratified_split

# Ridge penalties tried as inverse strengths (C = 1 / alpha), strongest first, so a refit replays the choice like the logistic heads'.
STRENGTHS = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
LOSSES = ("mse", "huber")


class Regression(Task):
    kind = REGRESSION
    activation = "linear"
    monitor = "val_loss"
    headline = "mae"
    estimator = "a ridge regression"
    raw_output = "value"

    def head_units(self, names) -> int:
        return 1

    def loss(self, label_smoothing: float = 0.0, regression_loss: str = "mse"):
        if regression_loss not in LOSSES:
            raise ValueError(f"regression_loss={regression_loss!r}: use one of {', '.join(LOSSES)}")
        return keras.losses.Huber(delta=1.0) if regression_loss == "huber" else keras.losses.MeanSquaredError()

    def metrics(self) -> list:
        return [keras.metrics.MeanAbsoluteError(name="mae")]

    def fit_head(self, head, train, validation, *, sample_weight=None, strength=None) -> dict:
        """Ridge regression, its penalty picked by validation squared error."""
        from sklearn.linear_model import Ridge

        started = time.perf_counter()
        features, targets = train
        targets = np.asarray(targets, np.float64).reshape(-1)

        def fit(c):
            model = Ridge(alpha=1.0 / c).fit(features, targets, sample_weight=sample_weight)
            if validation is None:
                return 0.0, model
            val_x, val_y = validation
            return float(np.mean((model.predict(val_x) - np.asarray(val_y, np.float64).reshape(-1)) ** 2)), model

        if strength is None:
            strength, loss, model = pick_strength(STRENGTHS, fit)
        else:
            loss, model = None, fit(strength)[1]
        head.kernel.assign(np.asarray(model.coef_, np.float32).reshape(-1, 1))
        head.bias.assign(np.asarray([model.intercept_], np.float32))
        return {"C": strength, "validation_mse": loss, "rows": int(len(targets)), "seconds": timed(started)}

    def host_scores(self, head, features, targets, label_smoothing: float = 0.0) -> dict:
        errors = dense_logits(head, features)[:, 0] - np.asarray(targets, np.float64).reshape(-1)
        return {"loss": float(np.float32(np.mean(errors**2) + penalty(head))), "mae": float(np.float32(np.mean(np.abs(errors))))}

    def split(self, targets, validation_fraction, test_fraction, seed):
        """Stratified by quantile bins of the value, so every split spans the range (a random draw can miss a tail)."""
        return stratified_split(quantile_bins(np.asarray(targets, np.float64).reshape(-1)), validation_fraction, test_fraction, seed)

    def evaluate(self, outputs, targets, names, thresholds=None) -> dict:
        return measures.regression_measures(np.asarray(outputs).reshape(len(outputs), -1)[:, 0], targets)

    def counts(self, targets, names) -> dict[str, int]:
        return {name: int(len(targets)) for name in names}

    def constant_baseline(self, train_targets, held_targets, spec) -> dict[str, float]:
        mean = float(np.mean(np.asarray(train_targets, np.float64)))
        return self.scores(measures.regression_measures(np.full(len(held_targets), mean), held_targets))

    def finish_model(self, model, spec, validation_outputs, validation_targets):
        """The standardised head made to answer in the user's units (kernel and bias rescaled by the training spread and mean)."""
        if spec.mean != 0.0 or spec.std != 1.0:
            head = head_of(model)
            head.kernel.assign(np.asarray(head.kernel) * spec.std)
            head.bias.assign(np.asarray(head.bias) * spec.std + spec.mean)
        return spec

    def scores(self, metrics: dict) -> dict[str, float]:
        return {k: metrics[k] for k in ("mae", "rmse", "r2", "pearson", "spearman")}

    def parity(self, outputs, reference, targets, spec) -> dict:
        """Agreement: the share of values within 1% of the training spread of the Keras model's; accuracy: mean absolute error."""
        outputs, reference = np.asarray(outputs).reshape(-1), np.asarray(reference).reshape(-1)
        return {"measure": "mae", "accuracy": measures.regression_measures(outputs, targets)["mae"],
                "keras_accuracy": measures.regression_measures(reference, targets)["mae"],
                "agreement": float(np.mean(np.abs(outputs - reference) <= 0.01 * spec.std))}

    def output_reading(self, spec) -> str:
        return f"value [1], in the training data's units (training mean {spec.mean:.4g}, standard deviation {spec.std:.4g})"

    def serving_outputs(self, names, top_k, thresholds=None):
        def outputs(values):
            return {"value": values[:, 0]}

        return outputs, ["value"]
