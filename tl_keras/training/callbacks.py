"""Callbacks of our own for `fit`: an overfitting warning and a wall-clock budget.

Keras provides the rest (EarlyStopping, ReduceLROnPlateau, TerminateOnNaN);
best-epoch weights and the resume state are in `tl_keras.training.resume`.
"""

from __future__ import annotations

import time

import keras
from absl import logging


class OverfitWarning(keras.callbacks.Callback):
    """Logs a warning once validation loss has risen while training loss fell, `patience` epochs running."""

    def __init__(self, patience: int):
        super().__init__()
        self.patience = patience
        self.streak = 0
        self.previous: tuple[float, float] | None = None
        self.warned_at: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "loss" not in logs or "val_loss" not in logs:
            return
        current = (float(logs["loss"]), float(logs["val_loss"]))
        if self.previous is not None:
            diverging = current[0] < self.previous[0] and current[1] > self.previous[1]
            self.streak = self.streak + 1 if diverging else 0
            if self.streak == self.patience:
                self.warned_at.append(epoch + 1)
                logging.warning(
                    "epoch %d: validation loss has risen while training loss fell for %d epochs: overfitting; "
                    "consider --dropout, --head_l2, augmentation or fewer epochs", epoch + 1, self.patience,
                )
        self.previous = current


class TimeBudget(keras.callbacks.Callback):
    """Stops `fit` before an epoch (at the mean epoch time so far) would overrun `seconds`; at least one epoch runs.

    Gives a baseline the same wall time as the run it is compared with. The
    number of epochs that fit then depends on the machine, so a time-budgeted
    arm is not bit-reproducible across machines; its epochs are recorded.
    `epochs` and `spent` (seconds of finished epochs) are part of the resume
    state, so a resumed arm spends what is left of its budget, not a new one.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = seconds
        self.epochs = 0
        self.spent = 0.0
        self._clock: float | None = None

    def on_train_begin(self, logs=None):
        self.epochs, self.spent, self._clock = 0, 0.0, None

    def on_epoch_begin(self, epoch, logs=None):
        if self._clock is None:  # this process's first epoch: a resume has put back `spent` by now
            self._clock = time.perf_counter() - self.spent

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        self.spent = time.perf_counter() - self._clock
        if self.spent + self.spent / self.epochs > self.seconds:
            self.model.stop_training = True
