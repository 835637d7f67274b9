"""The steps every kind of run shares, whatever its modality: the run environment, the run folder's start, the settings.

`tl_keras.vision.run` (images), `tl_keras.text.run` (texts) and `tl_keras.audio.run` (sound) call these, so
--strategy, --mixed_precision, the seeded start, the recorded config and
the resume fingerprint behave the same for all.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any, Callable

import keras
import tensorflow as tf
from absl import logging

from tl_keras.io import atomic
from tl_keras.training import distribute
from tl_keras.config.recipes import given_settings, provenance_line
from tl_keras.config.modalities import modality_for
from tl_keras.tasks import Task
from tl_keras.config.run_config import ConfigError, RunConfig, check_run_dir_reuse
from tl_keras.io.run_folder import RunFolder
from tl_keras.config.settings import TrainSettings, settings_from

# Cap of a time-budgeted scratch arm's epochs; the budget ends it long before.
SCRATCH_MAX_EPOCHS = 1000


def scratch_budget(config: RunConfig, transfer, transfer_seconds: float) -> dict:
    """`train_from_scratch`'s budget for the --compare_scratch arm: the transfer arm's wall time, or the epochs it ran.

    Epochs are counted as the two phases ran them (fine-tuning stretched to
    --fine_tune_min_steps, a frozen phase that is one logistic fit counting
    none), not as the flags set them.
    """
    from tl_keras.training.callbacks import TimeBudget

    if config.scratch_budget == "time":
        return {"epochs": SCRATCH_MAX_EPOCHS, "extra_callbacks": [TimeBudget(transfer_seconds)]}
    return {"epochs": max(1, sum(phase.epochs_run for phase in transfer.phases))}


def in_run_environment(config: RunConfig, train: Callable[[RunConfig], Any], finish: Callable[[Any, dict], dict]) -> dict:
    """Runs `train(config)` inside the --strategy scope under the --mixed_precision policy, then `finish(trained, extra)` outside.

    Every run kind (transfer, distillation) goes through here, so each
    honours --strategy and --mixed_precision the same way. On a cluster,
    non-chief workers train in a scratch folder (continuing from the chief's
    resume state under --resume) and never export; `extra` says how many
    replicas took part and whether this process is the chief.
    """
    config = config.resolved().validate()
    strategy = distribute.make_strategy(config.strategy)  # first: a cluster must form before other TF work
    chief = distribute.is_chief(strategy)
    previous_policy = keras.mixed_precision.global_policy().name
    distribute.set_precision(config.mixed_precision)
    try:
        with distribute.writable_run_dir(Path(config.run_dir), chief) as run_dir:
            if not chief:
                if config.resume:  # continue from the chief's state: needs a run folder every worker can read
                    distribute.copy_resume_state(Path(config.run_dir), run_dir)
                config = dataclasses.replace(config, run_dir=str(run_dir), export=False, overwrite=not config.resume)
            with strategy.scope(), distribute.keras_workarounds(strategy):
                trained = train(config)
            # Outside the scope: export creates variables, and no other worker takes part.
            return finish(trained, {"replicas": strategy.num_replicas_in_sync, "chief": chief})
    finally:
        distribute.set_precision(previous_policy)


def card_metadata(config: RunConfig, weights: str | None, metrics: dict, calibration: dict | None = None, **provenance) -> dict:
    """What a run adds to its export's model card (the export reads size and normalisation from the model itself).

    The resolved config travels with the artifact, so the model can be reproduced.
    """
    return {
        "modality": modality_for(config).name, "backbone": config.backbone, "weights": weights, "metrics": metrics,
        "calibration": calibration, "config": config.to_dict(),
        "config_fingerprint": config.fingerprint(), "provenance": provenance or None,
    }


def start_run(config: RunConfig) -> tuple[RunConfig, Path]:
    """Claims the run folder, records the settings, seeds everything.

    `config` is resolved and validated already: `in_run_environment` does it
    once, at the library's entry (a script also does it before any
    TensorFlow work, to fail fast).
    """
    check_run_dir_reuse(config)
    folder = RunFolder(config.run_dir)
    run_dir = folder.root
    run_dir.mkdir(parents=True, exist_ok=True)
    folder.summary.unlink(missing_ok=True)  # its absence marks the run unfinished until the end
    if config.overwrite:
        folder.split.unlink(missing_ok=True)  # a new run makes its own split (an old one may have other settings)
        shutil.rmtree(run_dir / "cache", ignore_errors=True)  # and decodes its own images
        shutil.rmtree(run_dir / "tfds_texts", ignore_errors=True)  # and writes its TFDS texts again
    atomic.write_text(folder.config, config.to_json())
    atomic.write_text(folder.flags, config.to_flagfile())
    provenance = provenance_line(config)
    if provenance:
        logging.info("%s", provenance)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    return config, run_dir


def train_settings(config: RunConfig, task: Task | None = None) -> TrainSettings:
    """The training part of `config`, carrying the whole run's fingerprint (a resume state belongs to the run).

    The best epoch and phase are picked by `--monitor` when the user gave it,
    else by the task's own (validation accuracy for one label; validation
    loss for tags and numbers, which have no accuracy).

    Raises:
        ConfigError: --monitor=val_accuracy given for a task without accuracy.
    """
    monitor = config.monitor
    if task is not None and task.monitor != monitor:
        if "monitor" in given_settings(config):
            if monitor == "val_accuracy":
                raise ConfigError(f"--monitor=val_accuracy: a {task.kind} run has no accuracy; use --monitor=val_loss")
        else:
            monitor = task.monitor
    return settings_from(TrainSettings, config, run_fingerprint=config.fingerprint(), run_settings=config.result_settings(),
                         monitor=monitor)


def training_entries(result) -> dict:
    """What summary.json says of the training itself, for any run: each phase's epochs, best and time, which phase was kept
    and what fine-tuning changed."""
    return {
        "phases": {p.name: {"epochs": p.epochs_run, "best_epoch": p.best_epoch, "best": p.best_value, "seconds": round(p.seconds, 2),
                            "on_cached_features": p.on_cached_features} for p in result.phases},
        "kept_phase": result.kept_phase, "kept_epoch": result.kept_epoch, f"best_{result.monitor}": result.kept_value,
        "fine_tune_change": result.change_from_frozen,
    }


def write_summary(folder: RunFolder, summary: dict, timings: dict, started: float, extra: dict) -> dict:
    """Adds the timings (with the whole job's), the model's path and `extra`, and writes summary.json; returns the summary.

    Written last by every kind of run: its presence marks the run finished.
    """
    import time

    timings["total_s"] = time.perf_counter() - started
    summary["timings"] = timings
    summary["model_keras"] = str(folder.model)
    summary.update(extra)
    atomic.write_json(folder.summary, summary)
    return summary


def training_seconds(process_seconds: float, result) -> float:
    """The transfer run's training wall time across processes: a resumed run's phases carry the time spent before the kill.

    The time-budgeted scratch arm gets this, so a resume does not shrink it to
    what the last process spent reloading finished phases.
    """
    return max(process_seconds, sum(phase.seconds for phase in result.phases))


def check_run_splits(config: RunConfig, *, noun: str, has_validation: bool, kind: str, class_names: list[str],
                     validation_hint: str = "") -> None:
    """What every modality requires of its splits before training, refused in one line each: a validation split (the
    head's strength, the best epoch and the kept phase are chosen on it), --num_classes matching the data, and
    --class_weights=auto only where there are classes. (The served-classes check, an export's, follows in each run.)"""
    if not has_validation:
        raise ConfigError(f"the {noun} have no validation split; set --validation_fraction above 0{validation_hint} (the head's "
                          "strength, the best epoch and the kept phase are chosen on it)")
    if config.num_classes and config.num_classes != len(class_names):
        raise ConfigError(f"--num_classes={config.num_classes} but the data has {len(class_names)} classes {class_names}; "
                          "fix the data or the flag")
    if config.class_weights == "auto" and kind != "single_label":
        raise ConfigError(f"--class_weights=auto weights classes; a {kind} run has none (its labels are tags or values)")


def describe_counts(class_names: list[str], counts: dict[str, dict[str, int]]) -> str:
    """One short log line for a split's sizes: "5 classes (daisy, dandelion, ...); train 200, validation 100, test 200"."""
    shown = ", ".join(class_names[:4]) + (", ..." if len(class_names) > 4 else "")
    sizes = ", ".join(f"{split} {sum(per_class.values())}" for split, per_class in counts.items())
    return f"{len(class_names)} classes ({shown}); {sizes} (split.json has every count)"
