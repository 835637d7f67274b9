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
import os
from pathlib import Path
from typing import Sequence

import keras
from absl import logging

from tl_keras.io import atomic
from tl_keras.training import batch_norm
from tl_keras.training import features as features_lib
from tl_keras.training import phase as phase_lib
from tl_keras.training import resume as resume_lib
from tl_keras.training.frozen_features import frozen_phase_on_features, uses_feature_cache
from tl_keras.training.phase import PhaseRecording, PhaseResult
from tl_keras.models.builders import with_augmentation
from tl_keras.models.builders import layer_rate_scales
from tl_keras.io.run_folder import RunFolder
from tl_keras.config.settings import FINE_TUNE, FROZEN, SCRATCH, TrainSettings, require_settings
from tl_keras.training.freezing import backbone_leaves, freeze_backbone, unfreeze_backbone
from tl_keras.data.epochs import EpochBatches


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

    (Eleven parameters: a public entry point; each is a choice a caller makes, documented below.)

    Phase 1 trains the head on cached backbone features unless
    `settings.feature_cache` is "off" or mixup/CutMix is on (they mix images,
    which cached features cannot). Writes
    `<run_dir>/checkpoints/<phase>.weights.h5` (best epoch of each phase)
    and `<run_dir>/history.json` (both phases and the verdict).

    Args:
        model: a classifier from `build_classifier` containing `backbone`.
        backbone: the backbone layer inside `model`, or a list of them (fusion).
        train_data, validation_data: batched datasets of (model inputs, labels).
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
    custom_trainer = trainer is not None
    trainer = trainer if custom_trainer else with_augmentation(model, augmentation)
    run = _PhaseRun(
        model, trainer, backbone, train_data, validation_data, settings, Path(run_dir), phase_lib.ledger(Path(run_dir), settings),
        class_weight, tuple(extra_callbacks), phase_lib.steps_per_epoch(train_data, train_examples, settings.batch_size),
    )
    phases: list[PhaseResult] = []
    if settings.frozen_epochs > 0:
        freeze_backbone(backbone)  # before asking whether everything below the head is frozen
        # A custom trainer sees images (a distiller needs the teacher's view of them), so it cannot train on cached features.
        cached = uses_feature_cache(settings) and not custom_trainer and not features_lib.feature_extractor(model).trainable_weights
        phases.append(_frozen_phase(run, cached, augmentation, train_examples))
    if settings.fine_tune_epochs > 0:
        for index, (name, spec, stage_epochs) in enumerate(settings.fine_tune_stages(run.steps)):
            phases.append(_fine_tune_stage(run, phases, name, spec, stage_epochs, first_stage=index == 0))
    result = _keep_best(trainer, phases, settings.monitor)
    phase_lib.leave_compiled(model, settings)
    _write_json(RunFolder(run_dir).history, result.to_dict())
    return result


@dataclasses.dataclass(frozen=True)
class _PhaseRun:
    """What every phase of one `train_two_phase` call shares."""

    model: keras.Model
    trainer: keras.Model
    backbone: keras.layers.Layer
    train_data: object
    validation_data: object
    settings: TrainSettings
    run_dir: Path
    ledger: resume_lib.RunLedger
    class_weight: dict[int, float] | None
    extra_callbacks: tuple
    steps: int  # per epoch; 0 when unknown

    def epochs_before(self, phases: list[PhaseResult]) -> int:
        return sum(p.epochs_run for p in phases)


def _frozen_phase(run: _PhaseRun, cached: bool, augmentation, train_examples: int) -> PhaseResult:
    """Phase 1 on the frozen backbone (on cached features when `cached`), or its record when a resumed run had finished it."""
    start = run.ledger.restore(FROZEN, run.trainer)
    frozen = phase_lib.finished(start)
    if frozen is None:
        recording = PhaseRecording(run.ledger, start)
        if cached:
            frozen = frozen_phase_on_features(
                run.model, run.trainer, run.train_data, run.validation_data, run.settings, run.run_dir, recording=recording,
                augmentation=augmentation, class_weight=run.class_weight, train_examples=train_examples,
                extra_callbacks=run.extra_callbacks,
            )
        else:
            phase_lib.compile_phase(run.trainer, run.settings, False, run.settings.frozen_epochs, run.steps)
            frozen = phase_lib.run_phase(
                run.trainer, FROZEN, run.train_data, run.validation_data, run.settings.frozen_epochs, 0, run.settings, run.run_dir,
                class_weight=run.class_weight, extra_callbacks=run.extra_callbacks, recording=recording,
            )
        phase_lib.record_finished(run.ledger, run.trainer, [frozen])
    if frozen.weights_path:
        phase_lib.load_weights_quietly(run.trainer, frozen.weights_path)
    return frozen


def _fine_tune_stage(run: _PhaseRun, phases: list[PhaseResult], name: str, spec: str, epochs: int, first_stage: bool) -> PhaseResult:
    """One fine-tuning stage: unfreeze `spec`, compile at the fine-tuning rate (found, when auto), and fit."""
    if not first_stage:
        start_from = stage_start(phases, run.settings.monitor)
        if start_from is not None:
            phase_lib.load_weights_quietly(run.trainer, start_from.weights_path)
    unfrozen = unfreeze_backbone(run.backbone, spec)
    logging.info("%s: fine-tuning %d backbone layers (--unfreeze=%s); BatchNorm stays frozen", name, len(unfrozen), spec)
    start = run.ledger.restore(name, run.trainer)
    tuned = phase_lib.finished(start)
    if tuned is not None:
        return tuned
    settings = run.settings
    scales = layer_rate_scales(backbone_leaves(run.backbone), settings.layer_rate_bottom) if settings.layer_rate_bottom < 1.0 else None
    rate = None
    if settings.fine_tune_learning_rate == 0:
        rate = _found_fine_tune_rate(run.trainer, run.train_data, settings, run.run_dir, name, run.class_weight)
    phase_lib.compile_phase(run.trainer, settings, True, epochs, run.steps, rate_scale=scales, rate=rate)
    tuned = phase_lib.run_phase(
        run.trainer, name, run.train_data, run.validation_data, epochs, run.epochs_before(phases), settings, run.run_dir,
        class_weight=run.class_weight, extra_callbacks=run.extra_callbacks, recording=PhaseRecording(run.ledger, start, phases),
    )
    phase_lib.record_finished(run.ledger, run.trainer, [*phases, tuned])
    return tuned


def _check_settings(settings) -> None:
    """Training takes its own settings, not a whole `RunConfig` (take a RunConfig's with tl_keras.training.run_steps.train_settings)."""
    require_settings(TrainSettings, settings, "settings", "training")


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

    (Nine parameters: a public entry point, `train_two_phase`'s less the backbone plus the epoch budget.)

    The epoch budget defaults to the two phases' total, so both arms see the
    same data the same number of times. Early stopping is off: a network
    from random weights often sits at chance for several epochs before it
    moves, and stopping it there would flatter transfer. The best epoch is
    still the one kept. BatchNorm layers follow the weights with momentum 0.9
    and the kept weights get their statistics re-estimated on training
    batches (`training.batch_norm`): without that a short scratch run scores
    at chance whatever it learned, which would flatter transfer too.
    """
    _check_settings(settings)
    run_dir = Path(run_dir)
    for layer in model.layers:  # the model's own flag does not reach a sub-model frozen explicitly
        layer.trainable = True
    model.trainable = True
    batch_norm.follow_quickly(model)  # else its moving statistics lag the weights and it scores at chance (training/batch_norm.py)
    trainer = with_augmentation(model, augmentation)
    budget = epochs if epochs is not None else settings.frozen_epochs + settings.fine_tune_epochs
    phase_lib.compile_phase(trainer, settings, False, budget, phase_lib.steps_per_epoch(train_data, -1, settings.batch_size))
    no_early_stop = dataclasses.replace(settings, early_stopping_patience=0)
    ledger = phase_lib.ledger(run_dir, no_early_stop)
    start = ledger.restore(SCRATCH, trainer)
    phase = phase_lib.finished(start)
    if phase is None:
        phase = phase_lib.run_phase(
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
        phase_lib.record_finished(ledger, trainer, [phase])
    result = _keep_best(trainer, [phase], settings.monitor)
    used = batch_norm.reestimate(model, train_data.epoch(0) if isinstance(train_data, EpochBatches) else train_data)
    if used:
        logging.debug("scratch: BatchNorm statistics re-estimated on %d training batches", used)
    phase_lib.leave_compiled(model, settings)
    _write_json(RunFolder(run_dir).history, result.to_dict())
    return result


def _found_fine_tune_rate(trainer, train_data, settings: TrainSettings, run_dir: Path, stage: str, class_weight) -> float:
    """`--fine_tune_learning_rate=auto`: an LR range test from the weights the stage starts from, recorded for resume.

    The rate found is written to `lr_find.json` in the run folder; a resumed
    run reads it back rather than testing again (the test draws random
    numbers, and the stage's weights have moved since).
    """
    from tl_keras.training import lr_finder

    recorded = recorded_rate(run_dir, stage)
    if recorded is not None:
        return recorded
    record_file = RunFolder(run_dir).lr_find
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
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


def recorded_rate(run_dir: Path, stage: str) -> float | None:
    """The fine-tuning rate the LR range test found for `stage`, as `lr_find.json` records it; None when it was not run."""
    record_file = RunFolder(run_dir).lr_find
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    return float(record[stage]["rate"]) if stage in record else None


def stage_start(phases: list[PhaseResult], monitor: str) -> PhaseResult | None:
    """Whose weights a later unfreezing stage starts from: the previous stage's best epoch.

    Gradual unfreezing builds on what the last stage learned (ULMFiT), so a
    stage does not restart from the frozen phase even when the frozen phase
    scored better: the run's verdict still compares every phase at the end.
    Not from where the last stage stopped either (possibly early-stopped past
    its best, or diverged). When the previous stage has no finite best, the
    best phase so far.
    """
    previous = phases[-1] if phases else None
    if previous is not None and previous.best_value is not None and previous.weights_path:
        return previous
    return _best_phase(phases, monitor)


def _best_phase(phases: list[PhaseResult], monitor: str) -> PhaseResult | None:
    """The phase with the best finite `monitor` and saved weights; an earlier phase wins ties."""
    mode = phase_lib.monitor_mode(monitor)
    best = None
    for phase in phases:
        if phase.best_value is None or not phase.weights_path:
            continue
        if best is None or resume_lib.improves(phase.best_value, best.best_value, mode):
            best = phase
    return best


def _keep_best(model: keras.Model, phases: list[PhaseResult], monitor: str) -> TrainingResult:
    """Loads the best phase's weights; an earlier phase wins ties."""
    mode = phase_lib.monitor_mode(monitor)
    candidates = [p for p in phases if p.best_value is not None and p.weights_path]
    best = _best_phase(phases, monitor)
    if best is None:
        raise RuntimeError(f"no phase produced a finite {monitor}; the loss may have diverged (try a lower --learning_rate)")
    phase_lib.load_weights_quietly(model, best.weights_path)
    change = None
    frozen = next((p for p in candidates if p.name == FROZEN), None)
    tuned = [p for p in candidates if p.name.startswith(FINE_TUNE)]
    if frozen is not None and tuned:
        pick = min if mode == "min" else max
        change = pick(p.best_value for p in tuned) - frozen.best_value
    where = f"epoch {best.best_epoch}" if best.epochs_run else "its one fit"
    if change is not None:
        logging.info(
            "kept the %s phase (%s, %s=%.4f); fine-tuning changed the best %s by %+.4f",
            best.name, where, monitor, best.best_value, monitor, change,
        )
    else:
        logging.info("kept the %s phase (%s, %s=%.4f)", best.name, where, monitor, best.best_value)
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
