"""Exact resume: all a run needs to continue after any epoch, in one file written atomically.

After every epoch `EpochCheckpoint` writes `<run_dir>/checkpoints/resume_state.npz`:
every variable of the model (weights, BatchNorm statistics, and the seed
states of dropout and augmentation layers), every optimizer variable (step
count, moments, learning rate, and so the position in a schedule), the
counters of the callbacks that stop a phase or cut its rate, the phase's
history so far, and the phases already finished. The order of training
batches is a function of (seed, epoch) (`tl_keras.epochs`), so nothing about
the data needs saving. The file is written beside itself and renamed over
the old one: a kill at any instant leaves the previous epoch's state or the
new one, never a mixture.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Iterable

import keras
import numpy as np

from tl_keras import atomic
from tl_keras.run_folder import RunFolder
from tl_keras.settings import ConfigError

_FORMAT = 1

# The counters that make these callbacks' next decision; restored after their
# own on_train_begin has reset them.
_CALLBACK_STATE = {
    "EarlyStopping": ("wait", "best", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    "OverfitWarning": ("streak", "previous", "warned_at"),
    "BestWeights": ("best",),
}


class ResumeError(ConfigError):
    """A resume state that cannot continue this run; the message says which file and what to do."""


class ResumeState:
    """What `resume_state.npz` holds. `epoch` counts finished epochs across phases."""

    def __init__(self, meta: dict, model_values: list[np.ndarray], optimizer_values: list[np.ndarray]):
        self.meta = meta
        self.model_values = model_values
        self.optimizer_values = optimizer_values

    phase = property(lambda self: self.meta["phase"])
    epoch = property(lambda self: int(self.meta["epoch"]))
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
    return ResumeState(meta, model_values, optimizer_values)


def write_state(
    path: str | os.PathLike,
    *,
    fingerprint: str,
    settings: dict | None = None,
    phase: str,
    epoch: int,
    history: dict[str, list[float]],
    seconds: float,
    completed: list[dict],
    stop_requested: bool,
    model: keras.Model,
    optimizer=None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
) -> None:
    """Writes the state atomically: to a temporary file, synced, then renamed over the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model_values = [np.asarray(v.numpy()) for v in model.variables]
    optimizer_values = [np.asarray(v.numpy()) for v in optimizer.variables] if optimizer is not None else []
    meta = {
        "format": _FORMAT,
        "fingerprint": fingerprint,
        "settings": settings,
        "phase": phase,
        "epoch": int(epoch),
        "history": history,
        "seconds": float(seconds),
        "completed": completed,
        "stop_requested": bool(stop_requested),
        "callbacks": _callback_state(callbacks),
        "model_variables": len(model_values),
        "optimizer_variables": len(optimizer_values),
    }
    arrays = {"meta": np.array(json.dumps(meta))}
    arrays.update({f"model/{i}": v for i, v in enumerate(model_values)})
    arrays.update({f"optimizer/{i}": v for i, v in enumerate(optimizer_values)})
    atomic.write_with(path, lambda partial: np.savez(partial, **arrays))


class EpochCheckpoint(keras.callbacks.Callback):
    """Writes the resume state at the end of every epoch; put it last, after the callbacks it records.

    Args:
        path: the state file.
        phase: this phase's name.
        fingerprint: the run's config fingerprint, checked on resume.
        settings: the settings behind it, so a refused resume can name what differs.
        state_model: the model whose variables are saved; the full trainer
            even when `fit` runs on a head over cached features.
        completed: results (as dicts) of phases finished before this one.
        history, seconds: this phase's history and wall time before this process.
        tracked: callbacks whose counters are saved and restored.
        restore_from: a state whose counters `tracked` take back once their
            own `on_train_begin` has reset them (so this callback goes last).
    """

    def __init__(self, path, phase, fingerprint, state_model, completed, history, seconds, tracked, restore_from=None, settings=None):
        super().__init__()
        self.path = Path(path)
        self.phase = phase
        self.fingerprint = fingerprint
        self.settings = settings
        self.state_model = state_model
        self.completed = completed
        self.history = {k: list(v) for k, v in history.items()}
        self.seconds_before = seconds
        self.tracked = list(tracked)
        self.restore_from = restore_from
        self.started = 0.0

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        if self.restore_from is not None:
            self.restore_from.restore_callbacks(self.tracked)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        write_state(
            self.path,
            fingerprint=self.fingerprint,
            settings=self.settings,
            phase=self.phase,
            epoch=epoch + 1,
            history=self.history,
            seconds=self.seconds_before + time.perf_counter() - self.started,
            completed=self.completed,
            stop_requested=bool(getattr(self.model, "stop_training", False)),
            model=self.state_model,
            optimizer=self.model.optimizer,
            callbacks=self.tracked,
        )


class BestWeights(keras.callbacks.Callback):
    """Keeps the weights of the best epoch so far, replacing the file atomically.

    Plays the part of `ModelCheckpoint(save_best_only=True)`, whose writes
    are not atomic: a kill in the middle would leave a corrupt "best".
    """

    def __init__(self, path: str | os.PathLike, monitor: str, mode: str):
        super().__init__()
        self.path = Path(path)
        self.monitor = monitor
        self.mode = mode
        self.best: float | None = None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.best is None or improves(value, self.best, self.mode):
            self.best = value
            save_weights_atomically(self.model, self.path)


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
