"""Two-phase transfer training: frozen base, then fine-tuning, keeping the best of both.

What trains in each phase is `tl_keras.training.freezing`; the callbacks of our own
are `tl_keras.training.callbacks`; per-epoch state is `tl_keras.training.resume`. This module
runs the phases.

Phase 1 trains only the new head on a frozen backbone at a normal learning
rate. Phase 2 starts from phase 1's best weights, unfreezes the whole
backbone or its top layers (BatchNorm stays frozen and in inference mode,
so a small dataset cannot wreck statistics learned on a large one),
recompiles with a fresh optimizer at a much lower learning rate, and
continues. Whichever phase reached the better validation score supplies the
weights that are kept: fine-tuning must earn its place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import keras
from absl import logging

from tl_keras.io import atomic
from tl_keras.training import distribute
from tl_keras.training import features as features_lib
from tl_keras.training import resume as resume_lib
from tl_keras.vision.augment import with_augmentation
from tl_keras.models.anatomy import anatomy
from tl_keras.models.builders import compile_classifier, is_layerwise, layer_rate_scales
from tl_keras.io.run_folder import RunFolder
from tl_keras.config.settings import FINE_TUNE, FROZEN, SCRATCH, TrainSettings
from tl_keras.training.callbacks import OverfitWarning
from tl_keras.training.freezing import (  # noqa: F401 - unfreeze_backbone and check_unfreeze_fits stay importable from here
    backbone_leaves, check_unfreeze_fits, freeze_backbone, unfreeze_backbone,
)
from tl_keras.data.epochs import EpochBatches



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


@dataclasses.dataclass
class PhaseRecording:
    """How one phase is recorded for resume: the run's ledger, where the phase starts, and what the state keeps."""

    ledger: resume_lib.RunLedger | None
    start: resume_lib.PhaseStart
    completed: Sequence[PhaseResult] = ()  # phases finished before this one
    state_model: keras.Model | None = None  # whose variables are kept (the full trainer when fit runs on a head over features)


@dataclasses.dataclass
class TrainingResult:
    """Both phases, and which one's weights the model now holds."""

    phases: list[PhaseResult]
    monitor: str
    kept_phase: str
    kept_epoch: int | None
    kept_value: float | None
    change_from_frozen: float | None  # best fine-tune minus best frozen value

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def train_two_phase(
    model: keras.Model,
    backbone: keras.layers.Layer,
    train_data,
    validation_data,
    settings: TrainSettings,
    run_dir: str | os.PathLike,
    *,
    augmentation: keras.Sequential | None = None,
    class_weight: dict[int, float] | None = None,
    train_examples: int = -1,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    trainer: keras.Model | None = None,
) -> TrainingResult:
    """Runs phase 1 (frozen) then phase 2 (fine-tune) and loads the best weights.

    Phase 1 trains the head on cached backbone features unless
    `settings.feature_cache` is "off" or mixup/CutMix is on (they mix images,
    which cached features cannot). Writes
    `<run_dir>/checkpoints/<phase>.weights.h5` (best epoch of each phase)
    and `<run_dir>/history.json` (both phases and the verdict).

    Args:
        model: a classifier from `build_classifier` containing `backbone`.
        backbone: the backbone layer inside `model`, or a list of them (fusion).
        train_data, validation_data: batched datasets of (uint8 images, labels).
        settings: a `TrainSettings` (epochs, learning rates, optimizers,
            unfreeze, monitor, patience, label smoothing, caching, verbosity);
            `TrainSettings()` is the default recipe.
        run_dir: folder for checkpoints and history.
        augmentation: from `build_augmentation`; applied in training only.
        class_weight: optional per-class loss weights for `fit`.
        train_examples: training examples if known (sizes the feature cache).
        extra_callbacks: added to both phases (e.g. TensorBoard).
        trainer: the model `fit` runs, sharing `model`'s weights (e.g. a
            `Distiller`); by default `model` behind `augmentation`. A custom
            trainer sees images, so phase 1 does not use cached features.

    Returns:
        A `TrainingResult`; the model holds the kept weights.
    """
    _check_settings(settings)
    run_dir = Path(run_dir)
    custom_trainer = trainer is not None
    trainer = trainer if custom_trainer else with_augmentation(model, augmentation)
    ledger = _ledger(run_dir, settings)
    phases: list[PhaseResult] = []
    epoch = 0
    steps = _steps_per_epoch(train_data, train_examples, settings.batch_size)
    if settings.frozen_epochs > 0:
        freeze_backbone(backbone)
        start = ledger.restore(FROZEN, trainer)
        frozen = _finished(start)
        if frozen is None:
            if uses_feature_cache(settings) and not custom_trainer and not features_lib.feature_extractor(model).trainable_weights:
                frozen = _frozen_phase_on_features(
                    model, trainer, train_data, validation_data, settings, run_dir, recording=PhaseRecording(ledger, start),
                    augmentation=augmentation, class_weight=class_weight, train_examples=train_examples, extra_callbacks=extra_callbacks,
                )
            else:
                _compile_phase(trainer, settings, False, settings.frozen_epochs, steps)
                frozen = run_phase(
                    trainer, FROZEN, train_data, validation_data, settings.frozen_epochs, epoch, settings, run_dir,
                    class_weight=class_weight, extra_callbacks=extra_callbacks, recording=PhaseRecording(ledger, start),
                )
            _record_finished(ledger, trainer, [*phases, frozen])
        phases.append(frozen)
        epoch += frozen.epochs_run
        if frozen.weights_path:
            load_weights_quietly(trainer, frozen.weights_path)
    if settings.fine_tune_epochs > 0:
        stages = settings.fine_tune_stages(steps)
        for index, (name, spec, stage_epochs) in enumerate(stages):
            if index > 0:
                # A stage starts from the best weights so far, not from where the last one stopped
                # (possibly early-stopped past its best, or diverged): review M4.
                best = _best_phase(phases, settings.monitor)
                if best is not None:
                    load_weights_quietly(trainer, best.weights_path)
            unfrozen = unfreeze_backbone(backbone, spec)
            logging.info("%s: fine-tuning %d backbone layers (--unfreeze=%s); BatchNorm stays frozen", name, len(unfrozen), spec)
            start = ledger.restore(name, trainer)
            tuned = _finished(start)
            if tuned is None:
                scales = (
                    layer_rate_scales(backbone_leaves(backbone), settings.layer_rate_bottom) if settings.layer_rate_bottom < 1.0 else None
                )
                rate = (
                    _found_fine_tune_rate(trainer, train_data, settings, run_dir, name, class_weight)
                    if settings.fine_tune_learning_rate == 0
                    else None
                )
                _compile_phase(trainer, settings, True, stage_epochs, steps, rate_scale=scales, rate=rate)
                tuned = run_phase(
                    trainer, name, train_data, validation_data, stage_epochs, epoch, settings, run_dir,
                    class_weight=class_weight, extra_callbacks=extra_callbacks, recording=PhaseRecording(ledger, start, phases),
                )
                _record_finished(ledger, trainer, [*phases, tuned])
            phases.append(tuned)
            epoch += tuned.epochs_run
    result = _keep_best(trainer, phases, settings.monitor)
    _leave_compiled(model, settings)
    _write_json(RunFolder(run_dir).history, result.to_dict())
    return result


def _check_settings(settings) -> None:
    """Training takes its own settings, not a whole `RunConfig`; say how to make them."""
    if not isinstance(settings, TrainSettings):
        raise TypeError(
            f"settings: expected a TrainSettings, got {type(settings).__name__}; "
            "build one with TrainSettings(frozen_epochs=...), or take a RunConfig's with tl_keras.run.train_settings"
        )


def _leave_compiled(model: keras.Model, settings: TrainSettings) -> None:
    """Leaves `model` compiled with a plain optimizer, ready to evaluate and to save.

    `fit` may have compiled only a wrapper (augmentation, a distiller) or a
    head on cached features; and a layer-wise optimizer is not a class a
    saved model can be reloaded with.
    """
    if not getattr(model, "compiled", False) or is_layerwise(getattr(model, "optimizer", None)):
        compile_classifier(model, settings.optimizer, settings.learning_rate, settings.label_smoothing)


def _finished(start: resume_lib.PhaseStart) -> PhaseResult | None:
    return PhaseResult(**start.finished) if start.finished is not None else None


def _record_finished(ledger: resume_lib.RunLedger, trainer: keras.Model, phases: list[PhaseResult]) -> None:
    """Marks the last phase finished, with the model as it leaves it (a resume starts the next phase from here)."""
    last = phases[-1]
    ledger.record(
        last.name, trainer, epoch=last.first_epoch - 1 + last.epochs_run, history=last.history, seconds=last.seconds,
        completed=[dataclasses.asdict(p) for p in phases], stop_requested=True,
    )


def _steps_per_epoch(train_data, train_examples: int, batch_size: int) -> int:
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


def _compile_phase(
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
        warmup_steps=warmup_steps, total_steps=total_steps,
    )


def uses_feature_cache(settings: TrainSettings) -> bool:
    return settings.feature_cache != "off" and not settings.mixes_images


def _frozen_phase_on_features(
    model, trainer, train_data, validation_data, settings, run_dir, *,
    recording, augmentation, class_weight, train_examples, extra_callbacks,
):
    """Phase 1 on cached features; the head's best is then saved as full-model weights."""
    started = time.perf_counter()
    extractor = features_lib.feature_extractor(model)
    cache_dir = RunFolder(run_dir).feature_cache
    passes = settings.feature_cache_augment_passes if augmentation is not None else 0
    one_pass = train_data.epoch(0) if isinstance(train_data, EpochBatches) else train_data
    train_cache = features_lib.cache_features(
        extractor, one_pass, passes=passes, augmentation=augmentation, storage=settings.feature_cache,
        directory=cache_dir, num_examples=train_examples, name="train",
    )
    validation_cache = features_lib.cache_features(
        extractor, validation_data, storage=settings.feature_cache, directory=cache_dir, name="validation"
    )
    cache_seconds = time.perf_counter() - started
    logging.info(
        "cached %d training features (clean + %d augmented view%s) and %d validation features in %.1fs",
        len(train_cache.labels), passes, "" if passes == 1 else "s", len(validation_cache.labels), cache_seconds,
    )
    head = features_lib.head_on_features(model)
    resuming = recording.start.in_progress
    start_path = RunFolder(run_dir).checkpoint("frozen_head.logistic")
    if settings.head_init == "logistic" and not resuming:
        fitted = features_lib.fit_logistic_head(
            anatomy(model).head, train_cache, validation_cache, class_weight=class_weight, seed=settings.seed
        )
        logging.info(
            "head started from a logistic regression on the cached features (C=%g, %d rows, %.1fs): validation accuracy %.4f",
            fitted["C"], fitted["rows"], fitted["seconds"], fitted["validation_accuracy"],
        )
        start_path.parent.mkdir(parents=True, exist_ok=True)
        resume_lib.save_weights_atomically(head, start_path)
    elif not resuming and start_path.exists():
        start_path.unlink()  # an earlier run's fit must not compete with this run's epochs
    feature_batches = train_cache.epochs(settings.batch_size, settings.seed)
    validation_batches = validation_cache.dataset(settings.batch_size)
    _compile_phase(head, settings, False, settings.frozen_epochs, feature_batches.steps_per_epoch)
    phase = run_phase(
        head, FROZEN, feature_batches, validation_batches, settings.frozen_epochs, 0, settings, run_dir,
        class_weight=class_weight, extra_callbacks=extra_callbacks, recording=dataclasses.replace(recording, state_model=trainer),
        checkpoint_name="frozen_head",
    )
    if start_path.exists():
        _let_starting_point_compete(head, phase, start_path, validation_batches, settings.monitor)
    if phase.weights_path:
        load_weights_quietly(head, phase.weights_path)
        full = RunFolder(run_dir).checkpoint(FROZEN)
        resume_lib.save_weights_atomically(trainer, full)
        phase.weights_path = str(full)
    phase.seconds += cache_seconds
    phase.caching_seconds = cache_seconds
    phase.on_cached_features = True
    return phase


def _let_starting_point_compete(head: keras.Model, phase: PhaseResult, start_path: Path, validation_batches, monitor: str) -> None:
    """Makes the converged logistic fit "epoch 0" of the frozen phase: the phase keeps it unless an epoch beat it.

    Keras epochs after the fit see augmented views through dropout and can
    drift away from the convex optimum without the validation score
    noticing in time; the fit itself is the reference the phase must beat
    (ties go to the fit). Scoring it again costs one pass over cached
    validation features, and works the same after a resume.
    """
    current = head.get_weights()
    load_weights_quietly(head, str(start_path))
    logs = head.evaluate(validation_batches, verbose=0, return_dict=True)
    value = logs.get(monitor.removeprefix("val_"))
    mode = _mode(monitor)
    if value is None or not math.isfinite(value):
        head.set_weights(current)
        return
    beaten = phase.best_value is not None and resume_lib.improves(phase.best_value, value, mode)
    if beaten:
        head.set_weights(current)
        return
    logging.info("frozen phase: no epoch beat the logistic fit (%s=%.4f); keeping the fit", monitor, value)
    best_path = Path(phase.weights_path) if phase.weights_path else start_path.with_name("frozen_head.weights.h5")
    resume_lib.save_weights_atomically(head, best_path)
    phase.weights_path, phase.best_value, phase.best_epoch = str(best_path), float(value), phase.first_epoch - 1


def train_from_scratch(
    model: keras.Model,
    train_data,
    validation_data,
    settings: TrainSettings,
    run_dir: str | os.PathLike,
    *,
    epochs: int | None = None,
    augmentation: keras.Sequential | None = None,
    class_weight: dict[int, float] | None = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> TrainingResult:
    """Trains every weight from the start at --learning_rate; the transfer baseline.

    The epoch budget defaults to the two phases' total, so both arms see the
    same data the same number of times. Early stopping is off: a network
    from random weights often sits at chance for several epochs before it
    moves, and stopping it there would flatter transfer. The best epoch is
    still the one kept.
    """
    _check_settings(settings)
    run_dir = Path(run_dir)
    for layer in model.layers:  # the model's own flag does not reach a sub-model frozen explicitly
        layer.trainable = True
    model.trainable = True
    trainer = with_augmentation(model, augmentation)
    budget = epochs if epochs is not None else settings.frozen_epochs + settings.fine_tune_epochs
    _compile_phase(trainer, settings, False, budget, _steps_per_epoch(train_data, -1, settings.batch_size))
    no_early_stop = dataclasses.replace(settings, early_stopping_patience=0)
    ledger = _ledger(run_dir, no_early_stop)
    start = ledger.restore(SCRATCH, trainer)
    phase = _finished(start)
    if phase is None:
        phase = run_phase(
            trainer,
            SCRATCH,
            train_data,
            validation_data,
            budget,
            0,
            no_early_stop,
            run_dir,
            class_weight=class_weight,
            recording=PhaseRecording(ledger, start),
            extra_callbacks=extra_callbacks,
        )
        _record_finished(ledger, trainer, [phase])
    result = _keep_best(trainer, [phase], settings.monitor)
    _leave_compiled(model, settings)
    _write_json(RunFolder(run_dir).history, result.to_dict())
    return result


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
    mode = _mode(settings.monitor)
    best = resume_lib.BestWeights(checkpoint, settings.monitor, mode)
    callbacks: list[keras.callbacks.Callback] = [best, keras.callbacks.TerminateOnNaN(), *extra_callbacks]
    if settings.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(monitor=settings.monitor, mode=mode, patience=settings.early_stopping_patience))
    if settings.lr_schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=settings.monitor, mode=mode, factor=0.2, patience=2))
    if settings.overfit_patience > 0:
        callbacks.append(OverfitWarning(settings.overfit_patience))
    history: dict[str, list[float]] = {}
    seconds_before, first = 0.0, initial_epoch
    stop_requested = False
    if resuming:
        start.resume(state_model, model)
        history, seconds_before, first, stop_requested = start.history, start.seconds, start.epoch, start.stop_requested
    elif settings.resume and not isinstance(train_data, EpochBatches):
        logging.warning("phase %s: the training data is a plain dataset, so a resumed run will not see the same batch order", name)
    recorder = resume_lib.EpochCheckpoint(
        ledger, name, state_model, [dataclasses.asdict(p) for p in completed], history, seconds_before, list(callbacks),
        restore_from=start.counters,
    )
    callbacks.append(recorder)
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    last_epoch = initial_epoch + epochs
    if isinstance(train_data, EpochBatches):
        fit_data, steps_per_epoch = train_data.stream(first), train_data.steps_per_epoch
    else:
        fit_data, steps_per_epoch = train_data, None
    if stop_requested or first >= last_epoch:
        logging.info("phase %s: already ended after epoch %d", name, first)
    else:
        logging.info("phase %s: epochs %d-%d, %d trainable weights", name, first + 1, last_epoch, trainable)
        distribute.prepare_for_fit(model)
        model.fit(
            fit_data,
            validation_data=validation_data,
            epochs=last_epoch,
            initial_epoch=first,
            steps_per_epoch=steps_per_epoch,
            callbacks=callbacks,
            class_weight=class_weight,
            verbose=_fit_verbosity(settings.verbose),
            shuffle=False,  # the data is a seeded tf.data stream already; Keras would only warn that it ignores shuffle=True
        )
    values = recorder.history
    seconds = seconds_before + (time.perf_counter() - recorder.started if recorder.started else 0.0)
    scores = values.get(settings.monitor, [])
    best_index = _best_index(scores, mode)
    return PhaseResult(
        name=name,
        first_epoch=initial_epoch + 1,
        epochs_run=len(scores) if scores else len(values.get("loss", [])),
        best_epoch=None if best_index is None else initial_epoch + best_index + 1,
        best_value=None if best_index is None else scores[best_index],
        trainable_weights=trainable,
        history=values,
        weights_path=str(checkpoint) if checkpoint.exists() else None,
        seconds=seconds,
    )


def _ledger(run_dir: Path, settings: TrainSettings) -> resume_lib.RunLedger:
    """The run's resume ledger: continues from its state under --resume, discards any old state otherwise."""
    return resume_lib.RunLedger(run_dir, settings.fingerprint(), settings.result_settings(), settings.resume)


def _fit_verbosity(verbose: int) -> int:
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


def _mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def _best_index(scores: list[float], mode: str) -> int | None:
    finite = [(i, s) for i, s in enumerate(scores) if math.isfinite(s)]
    if not finite:
        return None
    pick = min if mode == "min" else max
    best = pick(s for _, s in finite)
    return next(i for i, s in finite if s == best)


def _found_fine_tune_rate(trainer, train_data, settings: TrainSettings, run_dir: Path, stage: str, class_weight) -> float:
    """`--fine_tune_learning_rate=auto`: an LR range test from the weights the stage starts from, recorded for resume.

    The rate found is written to `lr_find.json` in the run folder; a resumed
    run reads it back rather than testing again (the test draws random
    numbers, and the stage's weights have moved since).
    """
    from tl_keras.training import lr_finder

    record_file = RunFolder(run_dir).lr_find
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    if stage in record:
        return float(record[stage]["rate"])
    data = train_data.stream(0) if isinstance(train_data, EpochBatches) else train_data.repeat()
    test = lr_finder.lr_range_test(
        trainer, data, optimizer=settings.fine_tune_optimizer, label_smoothing=settings.label_smoothing, steps=lr_finder.STEPS,
        min_lr=lr_finder.FINE_TUNE_RATES[0], max_lr=lr_finder.FINE_TUNE_RATES[1], class_weight=class_weight,
    )
    rate = test.suggestion or TrainSettings.fine_tune_learning_rate
    logging.info(
        "%s: LR range test over %d steps suggests %.2e%s",
        stage,
        len(test.losses),
        rate,
        "" if test.suggestion else " (too few steps: the default)",
    )
    record[stage] = {"rate": rate, **test.to_dict()}
    _write_json(record_file, record)
    lr_finder.plot({stage: test}, run_dir / f"lr_find_{stage}.png")
    return rate


def _best_phase(phases: list[PhaseResult], monitor: str) -> PhaseResult | None:
    """The phase with the best finite `monitor` and saved weights; an earlier phase wins ties."""
    mode = _mode(monitor)
    best = None
    for phase in phases:
        if phase.best_value is None or not phase.weights_path:
            continue
        if best is None or resume_lib.improves(phase.best_value, best.best_value, mode):
            best = phase
    return best


def _keep_best(model: keras.Model, phases: list[PhaseResult], monitor: str) -> TrainingResult:
    """Loads the best phase's weights; an earlier phase wins ties."""
    mode = _mode(monitor)
    candidates = [p for p in phases if p.best_value is not None and p.weights_path]
    best = _best_phase(phases, monitor)
    if best is None:
        raise RuntimeError(f"no phase produced a finite {monitor}; the loss may have diverged (try a lower --learning_rate)")
    load_weights_quietly(model, best.weights_path)
    change = None
    frozen = next((p for p in candidates if p.name == FROZEN), None)
    tuned = [p for p in candidates if p.name.startswith(FINE_TUNE)]
    if frozen is not None and tuned:
        pick = min if mode == "min" else max
        change = pick(p.best_value for p in tuned) - frozen.best_value
    if change is not None:
        logging.info(
            "kept the %s phase (epoch %d, %s=%.4f); fine-tuning changed the best %s by %+.4f",
            best.name, best.best_epoch, monitor, best.best_value, monitor, change,
        )
    else:
        logging.info("kept the %s phase (epoch %d, %s=%.4f)", best.name, best.best_epoch, monitor, best.best_value)
    return TrainingResult(
        phases=phases,
        monitor=monitor,
        kept_phase=best.name,
        kept_epoch=best.best_epoch,
        kept_value=best.best_value,
        change_from_frozen=change,
    )


def _write_json(path: Path, payload: dict) -> None:
    atomic.write_json(path, payload)
