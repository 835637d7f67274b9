"""Learning-rate range test: raise the rate exponentially over a few hundred steps, watch the loss, suggest a rate.

The loss barely moves while the rate is too small, falls fastest over a
band of useful rates, then blows up. The suggestion is the rate where the
smoothed loss falls fastest (steepest descent against log rate), taken
before the minimum; it is usually a few times below the rate at the
minimum. The model's weights are put back afterwards, so a test costs
`steps` training steps and changes nothing.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import keras
import numpy as np

from tl_keras.models.builders import make_optimizer
from tl_keras.tasks import task_of

# Steps of a range test, and the rates swept: the head on cached features tolerates far larger
# rates than a fine-tuned backbone. Shared by experiments/lr_find.py and --fine_tune_learning_rate=auto.
STEPS = 100
HEAD_RATES = (1e-6, 10.0)
FINE_TUNE_RATES = (1e-7, 1e-1)


@dataclasses.dataclass
class RangeTest:
    """One range test: the rate and loss of every step, the smoothed loss, and the suggested rate."""

    learning_rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _StepRecorder(keras.callbacks.Callback):
    """Per-step loss from Keras's running epoch mean; stops once the smoothed loss has diverged."""

    def __init__(self, smoothing: float, diverge: float):
        super().__init__()
        self.smoothing, self.diverge = smoothing, diverge
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._mean_before = 0.0
        self._average = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float((logs or {})["loss"])
        loss = (batch + 1) * mean - batch * self._mean_before  # the running mean -> this step's loss
        self._mean_before = mean
        if not math.isfinite(loss):
            self.model.stop_training = True
            return
        self.losses.append(loss)
        self._average = self.smoothing * self._average + (1 - self.smoothing) * loss
        smoothed = self._average / (1 - self.smoothing ** len(self.losses))  # bias-corrected, as Adam does
        self.smoothed.append(smoothed)
        if len(self.smoothed) > 5 and smoothed > self.diverge * min(self.smoothed):
            self.model.stop_training = True


def lr_range_test(
    model: keras.Model,
    data,
    *,
    optimizer: str = "adam",
    label_smoothing: float = 0.0,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    steps: int = 100,
    smoothing: float = 0.9,
    diverge: float = 4.0,
    class_weight: dict[int, float] | None = None,
) -> RangeTest:
    """Trains `model` for up to `steps` steps at rates from `min_lr` to `max_lr` (geometric), then restores it.

    (Ten parameters: a public entry point; each is a setting of the range test.)

    Args:
        model: compiled or not; its trainable weights are those the test moves.
        data: an endless (or long enough) dataset of (inputs, integer labels) batches.
    """
    if not (0 < min_lr < max_lr):
        raise ValueError(f"need 0 < min_lr < max_lr, got {min_lr} and {max_lr}")
    rates = min_lr * (max_lr / min_lr) ** (np.arange(steps) / max(steps - 1, 1))
    growth = float((max_lr / min_lr) ** (1 / max(steps - 1, 1)))
    schedule = keras.optimizers.schedules.ExponentialDecay(min_lr, decay_steps=1, decay_rate=growth)
    saved = model.get_weights()
    model.compile(optimizer=make_optimizer(optimizer, schedule), loss=task_of(model).loss(label_smoothing))
    recorder = _StepRecorder(smoothing, diverge)
    try:
        model.fit(data, epochs=1, steps_per_epoch=steps, callbacks=[recorder], class_weight=class_weight, verbose=0, shuffle=False)
    finally:
        model.set_weights(saved)
    tried = rates[: len(recorder.losses)].tolist()
    return RangeTest(tried, recorder.losses, recorder.smoothed, suggest(tried, recorder.smoothed))


def suggest(learning_rates: list[float], smoothed: list[float]) -> float | None:
    """The rate of steepest descent of the smoothed loss against log rate, before its minimum (None: too few steps)."""
    if len(smoothed) < 8:
        return None
    lowest = int(np.argmin(smoothed))
    window = max(2, len(smoothed) // 20)  # slopes over a span of steps: one batch's noise is as large as the real descent
    if lowest < 2 * window:
        return float(learning_rates[lowest]) / 10
    loss, log_rate = np.asarray(smoothed), np.log(np.asarray(learning_rates))
    centres = np.arange(window, lowest - window + 1)
    slopes = (loss[centres + window] - loss[centres - window]) / (log_rate[centres + window] - log_rate[centres - window])
    return float(learning_rates[int(centres[np.argmin(slopes)])])


def plot(tests: dict[str, RangeTest], path: str | os.PathLike) -> Path:
    """Loss against rate (log scale) for each named test, with its suggestion marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(tests), figsize=(5.5 * len(tests), 4), squeeze=False)
    for axis, (name, test) in zip(axes[0], tests.items()):
        axis.plot(test.learning_rates, test.losses, alpha=0.3, label="loss per step")
        axis.plot(test.learning_rates, test.smoothed, label="smoothed")
        if test.suggestion:
            axis.axvline(test.suggestion, color="tab:red", linestyle="--", label=f"suggested {test.suggestion:.1e}")
        axis.set_xscale("log")
        axis.set_xlabel("learning rate")
        axis.set_ylabel("training loss")
        axis.set_title(name)
        if test.smoothed:
            axis.set_ylim(top=min(max(test.smoothed), 4 * min(test.smoothed)))
        axis.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
