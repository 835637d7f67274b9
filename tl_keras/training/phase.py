"""One training phase: a `fit` with best-epoch checkpointing, early stopping, a NaN guard and a resume state per epoch.

Any phase of any run goes through `run_phase` (frozen, each fine-tuning
stage, scratch, distillation); `two_phase` decides which phases run and
which one's weights are kept. Also here: compiling for a phase (its
optimizer, schedule, warmup, layer-wise rates) and the small rules every
phase shares (which way the monitor improves, the best finite epoch).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import sys
import warnings
from pathlib import Path
from typing import Sequence

import keras
from absl import logging

from tl_keras.config.settings import TrainSettings
from tl_keras.data.epochs import EpochBatches
from tl_keras.io.run_folder import RunFolder
from tl_keras.models.builders import compile_classifier, is_layerwise
from tl_keras.tasks import task_of
from tl_keras.training import distribute
from tl_keras.training import resume as resume_lib
from tl_keras.training.callbacks import OverfitWarning


@dataclasses.dataclass
class PhaseResult:
    """What one phase did. Epoch numbers are 1-based and count across phases."""

    name: str
    first_epoch: int
    epochs_run: int
    best_epoch: int | None
    best_value: float | None
    trainable_weights: int
    history: dict[str, list[float]]
    weights_path: str | None
    seconds: float = 0.0  # wall time, feature caching included
    on_cached_features: bool = False
    caching_seconds: float = 0.0
    head_strength: float | None = None  # the logistic fit's inverse L2 strength, picked on validation
    planned_epochs: int = 0  # the epochs the phase was given (its schedule's span); early stopping may run fewer
    rows_fitted: int | None = None  # rows the frozen head's convex fit saw (a sample where the cache holds more)


@dataclasses.dataclass
class PhaseRecording:
    """How one phase is recorded for resume: the run's ledger, where the phase starts, and what the state keeps."""

    ledger: resume_lib.RunLedger | None
    start: resume_lib.PhaseStart
    completed: Sequence[PhaseResult] = ()  # phases finished before this one
    state_model: keras.Model | None = None  # whose variables are kept (the full trainer when fit runs on a head over features)


def finished(start: resume_lib.PhaseStart) -> PhaseResult | None:
    return PhaseResult(**start.finished) if start.finished is not None else None


def record_finished(ledger: resume_lib.RunLedger, trainer: keras.Model, phases: list[PhaseResult]) -> None:
    """Marks the last phase finished, with the model as it leaves it (a resume starts the next phase from here)."""
    last = phases[-1]
    progress = resume_lib.Progress(last.name, last.first_epoch - 1 + last.epochs_run, last.history, last.seconds,
                                   [dataclasses.asdict(p) for p in phases], stop_requested=True)
    ledger.record(progress, trainer)


def steps_per_epoch(train_data, train_examples: int, batch_size: int) -> int:
    """Batches per epoch, or 0 when unknown (files that may fail to decode)."""
    if isinstance(train_data, EpochBatches):
        return train_data.steps_per_epoch
    try:
        count = int(train_data.cardinality())
    except (AttributeError, TypeError):
        count = -1
    if count > 0:
        return count
    return math.ceil(train_examples / batch_size) if train_examples > 0 else 0


def compile_phase(
    model,
    settings: TrainSettings,
    fine_tune: bool,
    epochs: int,
    steps_per_epoch: int,
    rate_scale: dict[int, float] | None = None,
    rate: float | None = None,
) -> None:
    """Compiles for one phase: its optimizer and rate (`rate` overrides the flag), clipping, cosine schedule and layer-wise rates."""
    optimizer = settings.fine_tune_optimizer if fine_tune else settings.optimizer
    if rate is None:
        rate = settings.fine_tune_learning_rate if fine_tune else settings.learning_rate
    decay_steps = 0
    total_steps = epochs * steps_per_epoch
    if settings.lr_schedule == "cosine":
        decay_steps = total_steps
        if not decay_steps:
            logging.warning("--lr_schedule=cosine: steps per epoch unknown; using a constant rate")
    warmup_steps = 0
    if fine_tune and settings.fine_tune_warmup > 0:
        if settings.lr_schedule == "plateau" or not total_steps:
            logging.warning("--fine_tune_warmup is skipped: it needs --lr_schedule=constant or cosine and a known number of steps")
        else:
            warmup_steps = max(1, int(round(settings.fine_tune_warmup * total_steps)))
    compile_classifier(
        model, optimizer, rate, settings.label_smoothing, clipnorm=settings.clipnorm, decay_steps=decay_steps, rate_scale=rate_scale,
        warmup_steps=warmup_steps, total_steps=total_steps, **task_loss(model, settings),
    )


def task_loss(model, settings: TrainSettings) -> dict:
    """The loss and metrics of the model's task (read from its head), for `compile_classifier`."""
    task = task_of(model)
    return {"loss": task.loss(settings.label_smoothing, settings.regression_loss), "metrics": task.metrics()}


def run_phase(
    model: keras.Model,
    name: str,
    train_data,
    validation_data,
    epochs: int,
    initial_epoch: int,
    settings: TrainSettings,
    run_dir: Path,
    *,
    class_weight: dict[int, float] | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    recording: PhaseRecording | None = None,
    checkpoint_name: str | None = None,
) -> PhaseResult:
    """One `fit` with best-epoch checkpointing, early stopping, a NaN guard and a resume state per epoch.

    (Twelve parameters: its callers -- the frozen phase on images or on cached
    features, each fine-tuning stage, scratch, distillation -- differ in each.)

    Args:
        train_data: `EpochBatches` (resumable: epoch order fixed by the
            seed) or a plain batched dataset.
        initial_epoch: 0-based epoch, counted across phases, this phase starts at.
        recording: how the phase is recorded for resume (none: nothing is
            recorded, the phase starts fresh).
        checkpoint_name: file name of the best-epoch weights (default: `name`).
    """
    checkpoint = RunFolder(run_dir).checkpoint(checkpoint_name or name)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    recording = recording or PhaseRecording(None, resume_lib.PhaseStart(None, name))
    ledger, start = recording.ledger, recording.start
    state_model = recording.state_model or model
    completed = recording.completed
    resuming = start.in_progress
    if checkpoint.exists() and not resuming:
        checkpoint.unlink()  # a stale best from an earlier run must not win
    mode = monitor_mode(settings.monitor)
    callbacks = _phase_callbacks(settings, checkpoint, mode, extra_callbacks)
    history: dict[str, list[float]] = {}
    seconds_before, first, done_steps = 0.0, initial_epoch, 0
    stop_requested = False
    if resuming:
        start.resume(state_model, model)
        history, seconds_before, first, stop_requested = start.history, start.seconds, start.epoch, start.stop_requested
        done_steps = start.step if isinstance(train_data, EpochBatches) else 0
    elif settings.resume and not isinstance(train_data, EpochBatches):
        logging.warning("phase %s: the training data is a plain dataset, so a resumed run will not see the same batch order", name)
    recorder = resume_lib.EpochCheckpoint(
        ledger, name, state_model, [dataclasses.asdict(p) for p in completed], history, seconds_before, list(callbacks),
        restore_from=start.counters, every_steps=settings.checkpoint_every if isinstance(train_data, EpochBatches) else 0,
    )
    callbacks.append(recorder)
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    last_epoch = initial_epoch + epochs
    if stop_requested or first >= last_epoch:
        logging.info("phase %s: already ended after epoch %d", name, first)
    else:
        logging.info("phase %s: epochs %d-%d, %d trainable weights", name, first + 1, last_epoch, trainable)
        distribute.prepare_for_fit(model)
        fit = functools.partial(model.fit, validation_data=validation_data, callbacks=callbacks, class_weight=class_weight,
                                verbose=fit_verbosity(settings.verbose), shuffle=False)  # the stream is seeded already
        if done_steps and done_steps < train_data.steps_per_epoch:
            # A state taken inside epoch `first`: its other batches, then the epochs after it, as the uninterrupted run had them.
            logging.info("phase %s: epoch %d goes on after its batch %d", name, first + 1, done_steps)
            recorder.step_offset, recorder.restore_metrics_from = done_steps, start.counters
            fit(train_data.stream(first, skip_batches=done_steps), epochs=first + 1, initial_epoch=first,
                steps_per_epoch=train_data.steps_per_epoch - done_steps)
            first += 1
            recorder.restore_from = ledger.reread() if ledger is not None else None  # the counters as that epoch left them
            stop_requested = bool(getattr(model, "stop_training", False))
        if first < last_epoch and not stop_requested:
            if isinstance(train_data, EpochBatches):
                fit(train_data.stream(first), epochs=last_epoch, initial_epoch=first, steps_per_epoch=train_data.steps_per_epoch)
            else:
                fit(train_data, epochs=last_epoch, initial_epoch=first)
    return _phase_result(name, initial_epoch, recorder.history, settings.monitor, trainable, checkpoint, recorder.seconds(), epochs)


def _phase_callbacks(settings: TrainSettings, checkpoint: Path, mode: str, extra_callbacks) -> list[keras.callbacks.Callback]:
    """Best-epoch weights, the NaN guard, the caller's callbacks, then early stopping, the plateau schedule and the overfit warning."""
    callbacks: list[keras.callbacks.Callback] = [
        resume_lib.BestWeights(checkpoint, settings.monitor, mode), keras.callbacks.TerminateOnNaN(), *extra_callbacks,
    ]
    if settings.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=settings.monitor, mode=mode, patience=settings.early_stopping_patience))
    if settings.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=settings.monitor, mode=mode, factor=0.2, patience=2))
    if settings.overfit_patience > 0:
        callbacks.append(OverfitWarning(settings.overfit_patience))
    return callbacks


def _phase_result(
    name: str, initial_epoch: int, values: dict, monitor: str, trainable: int, checkpoint: Path, seconds: float, planned: int
) -> PhaseResult:
    scores = values.get(monitor, [])
    best_index = best_epoch_index(scores, monitor_mode(monitor))
    return PhaseResult(
        name=name,
        first_epoch=initial_epoch + 1,
        epochs_run=len(scores) if scores else len(values.get("loss", [])),
        best_epoch=None if best_index is None else initial_epoch + best_index + 1,
        best_value=None if best_index is None else scores[best_index],
        trainable_weights=trainable,
        history=values,
        planned_epochs=planned,
        weights_path=str(checkpoint) if checkpoint.exists() else None,
        seconds=seconds,
    )


def leave_compiled(model: keras.Model, settings: TrainSettings) -> None:
    """Leaves `model` compiled with a plain optimizer, ready to evaluate and to save.

    `fit` may have compiled only a wrapper (augmentation, a distiller) or a
    head on cached features; and a layer-wise optimizer is not a class a
    saved model can be reloaded with.
    """
    if not getattr(model, "compiled", False) or is_layerwise(getattr(model, "optimizer", None)):
        compile_classifier(model, settings.optimizer, settings.learning_rate, settings.label_smoothing, **task_loss(model, settings))


def ledger(run_dir: Path, settings: TrainSettings) -> resume_lib.RunLedger:
    """The run's resume ledger: continues from its state under --resume, discards any old state otherwise."""
    return resume_lib.RunLedger(run_dir, settings.fingerprint(), settings.result_settings(), settings.resume)


def fit_verbosity(verbose: int) -> int:
    """A progress bar (1) becomes one line per epoch (2) when stdout is not a terminal: a log file gets no ANSI redraws."""
    return 2 if verbose == 1 and not sys.stdout.isatty() else verbose


def load_weights_quietly(model: keras.Model, path: str) -> None:
    """Loads model weights; the optimizer state stored beside them is not wanted here.

    A checkpoint from another phase carries that phase's optimizer slots,
    which the next phase's fresh optimizer neither has nor needs, and Keras
    warns about every mismatch.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


def monitor_mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def best_epoch_index(scores: list[float], mode: str) -> int | None:
    finite = [(i, s) for i, s in enumerate(scores) if math.isfinite(s)]
    if not finite:
        return None
    pick = min if mode == "min" else max
    best = pick(s for _, s in finite)
    return next(i for i, s in finite if s == best)
