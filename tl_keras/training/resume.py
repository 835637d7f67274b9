"""Exact resume: all a run needs to continue after any epoch, in one file written atomically.

After every epoch (and, with `--checkpoint_every=N`, every N batches within
one) `EpochCheckpoint` writes `<run_dir>/checkpoints/resume_state.npz`:
every variable of the model (weights, BatchNorm statistics, and the seed
states of dropout and augmentation layers), every optimizer variable (step
count, moments, learning rate, and so the position in a schedule), the
counters of the callbacks that stop a phase or cut its rate, the phase's
history so far, and the phases already finished. The order of training
batches is a function of (seed, epoch) (`tl_keras.data.epochs`), so nothing about
the data needs saving; a state taken inside an epoch records how many of
its batches were trained, and its running training metrics, and the
resumed run skips those batches of the same epoch. The file is written beside itself and renamed over
the old one: a kill at any instant leaves the previous epoch's state or the
new one, never a mixture.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Iterable

import keras
import numpy as np
from absl import logging

from tl_keras.io import atomic
from tl_keras.io.mirror import push_if_mirrored
from tl_keras.io.run_folder import RunFolder
from tl_keras.config.settings import ConfigError

_FORMAT = 1

# The counters that make these callbacks' next decision; restored after their
# own on_train_begin has reset them.
_CALLBACK_STATE = {
    "EarlyStopping": ("wait", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "OverfitWarning": ("streak", "previous", "warned_at"),
    "BestWeights": ("best", "pending"),
    "TimeBudget": ("epochs", "spent"),
}


class ResumeError(ConfigError):
    """A resume state that cannot continue this run; the message says which file and what to do."""


class ResumeState:
    """What `resume_state.npz` holds. `epoch` counts finished epochs across phases."""

    def __init__(self, meta: dict, model_values: list[np.ndarray], optimizer_values: list[np.ndarray],
                 metric_values: list[np.ndarray] | None = None):
        self.meta = meta
        self.model_values = model_values
        self.optimizer_values = optimizer_values
        self.metric_values = metric_values or []

    phase = property(lambda self: self.meta["phase"])
    epoch = property(lambda self: int(self.meta["epoch"]))
    step = property(lambda self: int(self.meta.get("step", 0)))  # batches of epoch `epoch` (0-based) already trained
    history = property(lambda self: self.meta["history"])
    completed = property(lambda self: self.meta["completed"])

    def finished(self, phase: str) -> dict | None:
        """The recorded result of `phase` if it ran to its end, else None."""
        return next((p for p in self.completed if p["name"] == phase), None)

    def in_progress(self, phase: str) -> bool:
        return self.phase == phase and self.finished(phase) is None

    def restore_model(self, model: keras.Model) -> None:
        _assign(model.variables, self.model_values, "model")

    def restore_optimizer(self, model: keras.Model) -> None:
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        _assign(optimizer.variables, self.optimizer_values, "optimizer")

    def add_metrics(self, model: keras.Model) -> None:
        """Adds the interrupted epoch's training-metric sums to `model`'s, so the epoch's logged loss and accuracy are the
        whole epoch's. Called after the resumed epoch's first batch: Keras builds compiled metrics on the first batch, and
        their state (totals and counts) adds up."""
        if not self.metric_values:
            return
        variables = model.metrics_variables
        if len(variables) != len(self.metric_values):
            raise ResumeError(f"the resume state holds {len(self.metric_values)} metric variables but this run has "
                              f"{len(variables)}; was the code changed?")
        for variable, value in zip(variables, self.metric_values):
            variable.assign(variable.numpy() + value)

    def restore_callbacks(self, callbacks: Iterable[keras.callbacks.Callback]) -> None:
        saved = self.meta.get("callbacks", {})
        for callback in callbacks:
            for attribute, value in saved.get(type(callback).__name__, {}).items():
                setattr(callback, attribute, value)


def state_path(run_dir: str | os.PathLike) -> Path:
    return RunFolder(run_dir).resume_state


def load_state(path: str | os.PathLike, fingerprint: str, settings: dict | None = None) -> ResumeState | None:
    """The saved state, or None when there is none; refuses one made by other settings, naming each that differs."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            model_values = [archive[f"model/{i}"] for i in range(meta["model_variables"])]
            optimizer_values = [archive[f"optimizer/{i}"] for i in range(meta["optimizer_variables"])]
            metric_values = [archive[f"metrics/{i}"] for i in range(meta.get("metric_variables", 0))]
    except (OSError, ValueError, KeyError) as error:
        raise ResumeError(f"{path} is unreadable ({error}); pass --overwrite to start the run again") from error
    if meta.get("format") != _FORMAT:
        raise ResumeError(f"{path} was written by another tl_keras version (format {meta.get('format')}); pass --overwrite to start again")
    if meta.get("fingerprint") != fingerprint:
        saved = meta.get("settings")
        if settings is not None and isinstance(saved, dict):
            differing = [
                f"--{k}: saved {saved.get(k)!r}, now {settings.get(k)!r}"
                for k in sorted(set(saved) | set(settings))
                if saved.get(k) != settings.get(k)
            ]
            detail = "; ".join(differing) or f"config {meta.get('fingerprint')}, now {fingerprint}"
        else:
            detail = f"config {meta.get('fingerprint')}, now {fingerprint}"
        raise ResumeError(f"{path} belongs to a run with other settings ({detail}); pass --overwrite to start again")
    return ResumeState(meta, model_values, optimizer_values, metric_values)


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where training stands when a state is written: the counters and records a resume continues from."""

    phase: str
    epoch: int  # epochs finished, counted across phases
    history: dict[str, list[float]]  # this phase's, so far
    seconds: float  # this phase's wall time so far
    completed: list[dict]  # results of the phases finished before (or, at a phase's end, including) this one
    stop_requested: bool = False
    step: int = 0  # > 0: a state taken inside the next epoch after that many batches


def write_state(
    path: str | os.PathLike,
    progress: Progress,
    model: keras.Model,
    *,
    fingerprint: str,
    settings: dict | None = None,
    optimizer=None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    metrics: Iterable = (),
) -> None:
    """Writes the state atomically: to a temporary file, synced, then renamed over the old one.

    `model`'s variables (and `optimizer`'s, and `metrics`: the epoch's running
    training metrics of a mid-epoch state) with the `callbacks`' counters.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model_values = [np.asarray(v.numpy()) for v in model.variables]
    optimizer_values = [np.asarray(v.numpy()) for v in optimizer.variables] if optimizer is not None else []
    metric_values = [np.asarray(v.numpy()) for v in metrics]
    meta = {
        "format": _FORMAT,
        "fingerprint": fingerprint,
        "settings": settings,
        "phase": progress.phase,
        "epoch": int(progress.epoch),
        "step": int(progress.step),
        "history": progress.history,
        "seconds": float(progress.seconds),
        "completed": progress.completed,
        "stop_requested": bool(progress.stop_requested),
        "callbacks": _callback_state(callbacks),
        "model_variables": len(model_values),
        "optimizer_variables": len(optimizer_values),
        "metric_variables": len(metric_values),
    }
    arrays = {"meta": np.array(json.dumps(meta))}
    arrays.update({f"model/{i}": v for i, v in enumerate(model_values)})
    arrays.update({f"optimizer/{i}": v for i, v in enumerate(optimizer_values)})
    arrays.update({f"metrics/{i}": v for i, v in enumerate(metric_values)})
    atomic.write_with(path, lambda partial: np.savez(partial, **arrays))
    push_if_mirrored(path)  # a run folder on an object store gets the state (and what changed with it) now


class PhaseStart:
    """Where a phase begins, as `RunLedger.restore` found it: fresh, in the middle, or already finished."""

    def __init__(self, state: ResumeState | None, phase: str):
        self._state = state
        recorded = state.finished(phase) if state is not None else None
        self.finished: dict | None = recorded  # the phase's recorded result when it had ended
        self.in_progress = state is not None and recorded is None and state.phase == phase
        self.epoch = state.epoch if self.in_progress else None  # epochs finished, counted across phases
        self.step = state.step if self.in_progress else 0  # batches of the next epoch already trained (a mid-epoch state)
        self.history: dict[str, list[float]] = state.history if self.in_progress else {}
        self.seconds = float(state.meta["seconds"]) if self.in_progress else 0.0
        self.stop_requested = bool(state.meta["stop_requested"]) if self.in_progress else False

    def resume(self, state_model: keras.Model, fit_model: keras.Model) -> None:
        """An interrupted phase's weights (into `state_model`) and optimizer (moments, step, schedule position, into `fit_model`'s).

        Called right before `fit`, once `fit_model` is compiled for the phase:
        anything run between the ledger's `restore` and `fit` (feature caching
        through augmentation layers) could otherwise move random-generator states.
        """
        if self.in_progress:
            self._state.restore_model(state_model)
            self._state.restore_optimizer(fit_model)

    @property
    def counters(self) -> ResumeState | None:
        """The state whose callback counters an interrupted phase's callbacks take back."""
        return self._state if self.in_progress else None


class RunLedger:
    """The per-epoch state of one training run: its file, its identity, and the loop's two calls.

    `restore(phase, model)` says where a phase starts and puts back what the
    state holds for it; `record(...)` writes the state after an epoch (through
    an `EpochCheckpoint` callback) or at a phase's end. Without `resume`, an old
    state in the folder is discarded at once; with it, a state written under
    other settings is refused, naming each setting that differs.
    """

    def __init__(self, run_dir: str | os.PathLike, fingerprint: str, settings: dict | None, resume: bool):
        self.path = state_path(run_dir)
        self.fingerprint = fingerprint
        self.settings = settings
        if not resume:
            self.path.unlink(missing_ok=True)
            self.state = None
            return
        self.state = load_state(self.path, fingerprint, settings)
        if self.state is None:
            logging.info("--resume: no saved state in %s; starting from the beginning", self.path.parent)
        else:
            logging.info("--resume: continuing after epoch %d (phase %s)", self.state.epoch, self.state.phase)

    def restore(self, phase: str, model: keras.Model) -> PhaseStart:
        """Where `phase` starts. A phase the state ended on puts `model` back as it left it.

        A finished phase further back leaves `model` alone (the caller loads its
        best weights); a phase in the middle is continued by `PhaseStart.resume`
        right before its `fit`.
        """
        start = PhaseStart(self.state, phase)
        if start.finished is not None:
            logging.info("resume: phase %s had finished (%d epochs)", phase, start.finished["epochs_run"])
            if self.state.phase == phase:
                self.state.restore_model(model)
        return start

    def record(self, progress: Progress, model: keras.Model, *, optimizer=None, callbacks: Iterable[keras.callbacks.Callback] = (),
               metrics: Iterable = ()) -> None:
        """Writes the state: `model`'s variables (and `optimizer`'s) where `progress` says training stands."""
        write_state(self.path, progress, model, fingerprint=self.fingerprint, settings=self.settings, optimizer=optimizer,
                    callbacks=callbacks, metrics=metrics)

    def reread(self) -> ResumeState | None:
        """The state as last written (for a second `fit` of the same phase, whose callbacks reset their counters)."""
        return load_state(self.path, self.fingerprint, self.settings)


class EpochCheckpoint(keras.callbacks.Callback):
    """Records the run's state at the end of every epoch (`RunLedger.record`); it goes last, after the callbacks it records.

    Args:
        ledger: where the state goes; None keeps only the history.
        phase: this phase's name.
        state_model: the model whose variables are saved; the full trainer
            even when `fit` runs on a head over cached features.
        completed: results (as dicts) of phases finished before this one.
        history, seconds: this phase's history and wall time before this process.
        tracked: callbacks whose counters are saved and restored.
        restore_from: a state whose counters `tracked` take back once their
            own `on_train_begin` has reset them (so this callback goes last).
    """

    def __init__(self, ledger: RunLedger | None, phase, state_model, completed, history, seconds, tracked, restore_from=None,
                 every_steps: int = 0):
        super().__init__()
        self.ledger = ledger
        self.phase = phase
        self.state_model = state_model
        self.completed = completed
        self.history = {k: list(v) for k, v in history.items()}
        self.seconds_before = seconds
        self.tracked = list(tracked)
        self.restore_from = restore_from
        self.every_steps = int(every_steps)  # also a state every this many batches within an epoch (0: epoch ends only)
        self.step_offset = 0  # batches of the current epoch trained before this `fit` (a resumed partial epoch)
        self.restore_metrics_from: ResumeState | None = None  # the partial epoch's running metrics, put back at its start
        self.started = 0.0
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        if self.restore_from is not None:
            self.restore_from.restore_callbacks(self.tracked)
        self._promote_best()  # what the state names (a kill may have come between writing it and promoting)

    def on_train_end(self, logs=None):
        self.seconds_before += time.perf_counter() - self.started  # a phase may take two `fit`s (a resumed partial epoch)
        self.started = 0.0

    def seconds(self) -> float:
        return self.seconds_before + (time.perf_counter() - self.started if self.started else 0.0)

    def _promote_best(self) -> None:
        for callback in self.tracked:
            if isinstance(callback, BestWeights):
                callback.promote()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.restore_metrics_from is not None:  # the resumed partial epoch's first batch: its metrics now exist
            self.restore_metrics_from.add_metrics(self.model)
            self.restore_metrics_from = None
        step = self.step_offset + batch + 1
        last = batch + 1 == (self.params or {}).get("steps")  # the epoch's end writes its own state
        if self.ledger is None or not self.every_steps or step % self.every_steps or last:
            return
        progress = Progress(self.phase, self._epoch, self.history, self.seconds(), self.completed, step=step)
        self.ledger.record(progress, self.state_model, optimizer=self.model.optimizer, callbacks=self.tracked,
                           metrics=self.model.metrics_variables)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.ledger is None:  # a phase run outside a training run: its history is kept, nothing is written
            self._promote_best()
            return
        progress = Progress(self.phase, epoch + 1, self.history, self.seconds(), self.completed,
                            stop_requested=bool(getattr(self.model, "stop_training", False)))
        self.ledger.record(progress, self.state_model, optimizer=self.model.optimizer, callbacks=self.tracked)
        self._promote_best()  # only now that the state records this epoch


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best epoch so far, in step with the resume state.

    Plays the part of `ModelCheckpoint(save_best_only=True)`, whose writes
    are not atomic (a kill in the middle would leave a corrupt "best"), and
    whose file runs ahead of the run's state: an improving epoch's weights
    would replace the best before the state recording that epoch is written,
    so a kill between the two left a best file the recorded history did not
    contain. Here an improving epoch goes to its own file
    (`<name>.epoch<N>.weights.h5`, named in the state as `pending`), and
    `promote` moves it over the best file only once the state is written
    (`EpochCheckpoint` calls it); a resumed run promotes what its state names
    and deletes epoch files the state never recorded.
    """

    def __init__(self, path: str | os.PathLike, monitor: str, mode: str):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None
        self.pending: str | None = None  # an improving epoch's weights, waiting for the state that records it

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.best is None or improves(value, self.best, self.mode):
            self.best = value
            pending = self.path.with_name(self.path.name.replace(".weights.h5", f".epoch{epoch + 1}.weights.h5"))
            save_weights_atomically(self.model, pending)
            self.pending = str(pending)

    def promote(self) -> None:
        """The pending epoch becomes the best file; epoch files no state names are deleted."""
        if self.pending and Path(self.pending).exists():
            os.replace(self.pending, self.path)
        self.pending = None
        for stale in self.path.parent.glob(self.path.name.replace(".weights.h5", ".epoch*.weights.h5")):
            stale.unlink(missing_ok=True)


def improves(value: float, best: float, mode: str) -> bool:
    """Whether `value` is strictly better than `best` for a monitor minimised ("min") or maximised ("max")."""
    return value < best if mode == "min" else value > best


def save_weights_atomically(model: keras.Model, path: str | os.PathLike) -> None:
    atomic.write_with(path, lambda partial: model.save_weights(str(partial)))


def _assign(variables, values, what: str) -> None:
    variables = list(variables)
    if len(variables) != len(values):
        raise ResumeError(f"the resume state holds {len(values)} {what} variables but this run has {len(variables)}; was the code changed?")
    for variable, value in zip(variables, values):
        if tuple(variable.shape) != tuple(value.shape):
            raise ResumeError(f"{what} variable {variable.path}: saved shape {value.shape}, this run's {tuple(variable.shape)}")
    for variable, value in zip(variables, values):
        variable.assign(value)


def _callback_state(callbacks) -> dict:
    state = {}
    for callback in callbacks:
        attributes = _CALLBACK_STATE.get(type(callback).__name__)
        if attributes:
            state[type(callback).__name__] = {a: _plain(getattr(callback, a, None)) for a in attributes}
    return state


def _plain(value):
    """JSON-ready copy: numpy scalars to floats/ints, tuples to lists."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
