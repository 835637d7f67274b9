"""One sound run: clips -> backbone (speech encoder or image backbone over log-mel) -> two phases -> evaluation -> export.

The audio modality's `run` (registered in `audio/modality.py`); it shares
the run environment, the phases, the feature cache, resume, the task seam,
calibration and the versioned export with images and texts. What it adds:
the clip length chosen from the data, the MFCC + logistic regression
baseline every run reports beside scratch, the noise-robustness measure,
and the WAV-bytes serving signature.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np
from absl import logging

from tl_keras.io import storage
from tl_keras.audio import batches as batches_lib
from tl_keras.audio.augment import build_wave_augmentation
from tl_keras.audio.baselines import mfcc_baseline
from tl_keras.evaluation.baseline_rows import baseline_rows, sampled_note
from tl_keras.audio.data import AudioSplits, load_audio_splits
from tl_keras.audio.export import export_audio_saved_model
from tl_keras.audio.model import build_audio_classifier, clip_limits, load_audio_backbone
from tl_keras.audio.report import noise_robustness, plot_noise, worst_clips_html
from tl_keras.audio.tfds_source import tfds_to_table
from tl_keras.config.modalities import named, registered
from tl_keras.config.run_config import RunConfig
from tl_keras.data.splits import write_split
from tl_keras.data.subsets import balanced_class_weights
from tl_keras.evaluation.calibration import choose_temperature, fold_temperature
from tl_keras.evaluation.metrics import plot_curves, predict_dataset
from tl_keras.evaluation.predictions import SplitReport, evaluate_predictions
from tl_keras.evaluation.task_report import evaluate_task_split, frozen_probe_scores, settled_scores
from tl_keras.export.endpoints import check_same_classes_as_served
from tl_keras.io import atomic
from tl_keras.io.run_folder import RunFolder
from tl_keras.models.builders import with_augmentation
from tl_keras.tasks import SINGLE_LABEL, TargetSpec
from tl_keras.training import distribute
from tl_keras.training.run_steps import (
    card_metadata, check_run_splits, describe_counts, in_run_environment, scratch_budget, start_run, train_settings,
    training_entries, training_seconds, write_summary,
)
from tl_keras.training.two_phase import train_from_scratch, train_two_phase

TIME_SHIFT = 0.1  # training clips are shifted by up to a tenth of their length (with --spec_augment)


@dataclasses.dataclass
class TrainedAudioRun:
    """A trained and evaluated sound run, waiting for its export and summary."""

    config: RunConfig
    folder: RunFolder
    model: keras.Model
    splits: AudioSplits
    summary: dict
    timings: dict[str, float]
    started: float
    target: TargetSpec


BACKBONE_WORDS = {"speech": "speech encoder", "image": "image backbone over log-mel images", "hub": "audio module"}


def run_audio_experiment(config: RunConfig) -> dict:
    """Trains, evaluates and exports a sound classifier per `config`; returns the run summary (also summary.json)."""
    return in_run_environment(config, train_audio_run, finish_audio_run)


def load_backbone_for(config: RunConfig, *, pretrained: bool = True):
    """The run's sound backbone; image backbones come through the registry's vision entry (this package imports no vision)."""
    vision = named("vision").hooks.get("image_backbone") if "vision" in registered() else None
    return load_audio_backbone(config.backbone, config.weights or None, image_backbone=vision, image_size=config.image_size,
                               alpha=config.alpha, floor_db=config.mel_floor_db, pretrained=pretrained)


def read_audio_splits(config: RunConfig, split_file: Path | None, progress=None) -> AudioSplits:
    """The run's clips by split, checked and at one length; `split_file` (split.json) is reused and checked when it exists.

    The clip length's bounds are the backbone's (`clip_limits`: the speech encoder's window), read from --backbone unloaded.
    """
    shortest, floor = clip_limits(config.backbone)
    source = config.audio_file or config.audio_dir
    if config.audio_tfds:
        source = str(tfds_to_table(config.audio_tfds, Path(config.run_dir) / "tfds_audio", config.tfds_data_dir or None))
    return load_audio_splits(
        source, table=not config.audio_dir, task=config.task, validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction, seed=config.seed, clip_seconds=config.clip_seconds,
        min_seconds=shortest, floor_seconds=floor, max_train_per_class=config.max_train_per_class, split_file=split_file,
        progress=progress,
    )


def read_recorded_audio_splits(config: RunConfig, run_dir: str | Path) -> AudioSplits:
    """A finished run's clips by split, at the clip length it trained with, checked against its split.json.

    Raises:
        SplitMismatchError: the clips, their labels or the split settings changed since the run (one line naming the file).
    """
    folder = RunFolder(run_dir)
    recorded = json.loads(folder.split.read_text())
    seconds = recorded["clip_samples"] / recorded["sample_rate"]
    return read_audio_splits(dataclasses.replace(config, clip_seconds=seconds), folder.split)


def train_audio_run(config: RunConfig) -> TrainedAudioRun:
    """Everything up to the export: clips, backbone, both phases, calibration or the task's settling, evaluation, baselines."""
    config, run_dir = start_run(config)
    started = time.perf_counter()
    folder = RunFolder(run_dir)
    backbone = load_backbone_for(config)
    splits = read_audio_splits(config, folder.split)
    _check_splits(config, splits)
    write_split(folder.split, splits.record)
    atomic.write_json(folder.data_report, splits.report)
    logging.info("%s", describe_counts(splits.class_names, splits.counts))
    spec, task = splits.target, splits.target.task
    class_weight = balanced_class_weights(splits.counts["train"], splits.class_names) if config.class_weights == "auto" else None
    keras.utils.set_random_seed(config.seed)
    model = build_audio_classifier(
        backbone, splits.clip_samples, task.head_units(splits.class_names), activation=task.activation, dropout=config.dropout,
        head_l2=config.head_l2, spec_augment=config.spec_augment, name=f"{config.name}_classifier",
    )
    plan = train_settings(config, task)
    fitted = {s: spec.training_targets(splits.targets[s]) for s in splits.waves}
    train = batches_lib.training_batches(splits.waves["train"], fitted["train"], config.batch_size, seed=config.seed)
    held = "test" if splits.has("test") else "validation"

    def ordered(split: str):
        return batches_lib.ordered_batches(splits.waves[split], fitted[split], config.batch_size)

    augmentation = build_wave_augmentation(TIME_SHIFT if config.spec_augment else 0.0, config.noise_snr_db, config.seed)
    timings: dict[str, float] = {}
    callbacks = [keras.callbacks.TensorBoard(log_dir=str(folder.tensorboard))] if config.tensorboard else []
    t0 = time.perf_counter()
    result = train_two_phase(model, backbone.encoder, train, ordered("validation"), plan, run_dir, augmentation=augmentation,
                             class_weight=class_weight, train_examples=len(splits.waves["train"]), extra_callbacks=callbacks)
    timings["transfer_train_s"] = training_seconds(time.perf_counter() - t0, result)
    curves = plot_curves(result.to_dict(), folder.curves)
    title = f"{config.name}: {backbone.name} on the {held} split"
    extra = {"kept_phase": result.kept_phase, "kept_epoch": result.kept_epoch}
    holder = with_augmentation(model, augmentation)  # the phases' checkpoints are its weights
    probe = frozen_probe_scores(holder, model, result, spec, ordered("validation"), ordered(held), splits.targets["validation"],
                                splits.targets[held])
    if spec.kind == SINGLE_LABEL:
        metrics = _evaluate_single_label(config, model, ordered, splits, folder, held, curves, title, extra)
        scores = {"accuracy": float(metrics["accuracy"]), "macro_f1": float(metrics["macro"]["f1"])}
    else:
        spec, outputs, scores = settled_scores(model, spec, ordered("validation"), ordered(held), splits.targets["validation"],
                                               splits.targets[held])
        metrics = evaluate_task_split(outputs, splits.targets[held], spec, splits.paths[held], folder.evaluation,
                                      SplitReport(held, title, curves, extra), noun="clips")
    model.save(folder.model)
    summary = {
        "modality": "audio", "name": config.name, "run_dir": str(run_dir), "classes": splits.class_names, "counts": splits.counts,
        "task": spec.to_dict(), "backbone": backbone.name, "backbone_kind": backbone.kind, "sample_rate": splits.sample_rate,
        "setup": f"{backbone.name} ({BACKBONE_WORDS[backbone.kind]}) on "
                 f"{splits.clip_samples / splits.sample_rate:.2f} s clips at {splits.sample_rate} Hz",
        "clip_samples": splits.clip_samples, "clip_seconds": splits.clip_samples / splits.sample_rate, **training_entries(result),
        "evaluated_on": held, "scores": scores, **{f"transfer_{k}": v for k, v in scores.items()}, "probe": probe,
        "noise": metrics.get("noise"), "calibration": _calibration_entry(metrics), "report_html": metrics["report"],
        "metrics_json": str(folder.evaluation / "metrics.json"), "curves_png": str(curves),
    }
    if spec.kind != SINGLE_LABEL:
        validation_outputs, _ = predict_dataset(model, ordered("validation"))
        summary["validation_scores"] = task.scores(task.evaluate(validation_outputs, splits.targets["validation"], spec.names,
                                                                 spec.thresholds))
        summary["constant"] = task.constant_baseline(splits.targets["train"], splits.targets[held], spec)
    rows = baseline_rows(config.baselines, {split: len(splits.waves[split]) for split in ("train", "validation", held)},
                         config.seed)
    if not rows.skip:
        summary["mfcc"] = mfcc_baseline(splits.waves, splits.targets, spec, held, splits.sample_rate, rows)
        logging.info("MFCC + logistic regression on the %s split%s: %s", held, sampled_note(summary["mfcc"]),
                     _scores_line(summary["mfcc"]))
    if config.compare_scratch:
        summary.update(_scratch_arm(config, splits, spec, train, ordered, held, plan, folder, timings, result, class_weight))
        summary["transfer_minus_scratch"] = float(summary[f"transfer_{task.headline}"] - summary[f"scratch_{task.headline}"])
    return TrainedAudioRun(config, folder, model, splits, summary, timings, started, spec)


def _check_splits(config: RunConfig, splits: AudioSplits) -> None:
    check_run_splits(config, noun="clips", has_validation=splits.has("validation"), kind=splits.target.kind,
                     class_names=splits.class_names)
    if config.export and not config.allow_new_classes:  # before training: the export would be refused after it
        check_same_classes_as_served(storage.join(config.export_dir, config.name), splits.class_names)


def _evaluate_single_label(config, model, ordered, splits: AudioSplits, folder: RunFolder, held, curves, title, extra) -> dict:
    """The temperature choice on validation, the held-out report (worst clips, noise), then the temperature folded in if adopted.

    (Nine parameters: the run's pieces the report names.)
    """
    temperature, decision = None, None
    if config.calibrate:
        temperature, decision = choose_temperature(*predict_dataset(model, ordered("validation")), seed=config.seed)
    probabilities, labels = predict_dataset(model, ordered(held))

    def accuracy(waves):
        return float(np.mean(batches_lib.predict_waves(model, waves).argmax(-1) == labels))

    noise = noise_robustness(accuracy, splits.waves[held], seed=config.seed)
    folder.evaluation.mkdir(parents=True, exist_ok=True)
    figure = plot_noise(noise, "accuracy", folder.evaluation / "noise.png")
    shown = (worst_clips_html(probabilities, labels, splits.waves[held], splits.paths[held], splits.class_names, splits.sample_rate)
             + f'<h2>Accuracy against noise</h2><img alt="accuracy against noise" src="data:image/png;base64,'
               f'{base64.b64encode(figure.read_bytes()).decode()}">')
    about = SplitReport(held, title, curves, {**extra, "noise": noise}, temperature, decision)
    metrics = evaluate_predictions(probabilities, labels, splits.class_names, folder.evaluation, about, noun="clips", mistakes_html=shown)
    if decision and decision["adopted"]:
        fold_temperature(model, temperature)
    logging.info("%s: accuracy %.4f clean; with white noise: %s", held, noise["clean"],
                 ", ".join(f"{k} {v:.3f}" for k, v in noise.items() if k != "clean"))
    return metrics


def _calibration_entry(metrics: dict) -> dict | None:
    calibration = metrics.get("calibration")
    return {k: v for k, v in calibration.items() if not isinstance(v, (list, dict))} if calibration else None


def _scores_line(scores: dict) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if k not in ("strength", "seconds"))


def _scratch_arm(config, splits, spec, train, ordered, held, plan, folder, timings, transfer, class_weight) -> dict:
    """The same network from random weights (the front end, being signal processing, kept), same data and wall time or epochs.

    (Eleven parameters: the pieces of the run the scratch arm shares with the transfer arm.)
    """
    keras.utils.set_random_seed(config.seed)
    backbone = load_backbone_for(config, pretrained=False)
    scratch = build_audio_classifier(
        backbone, splits.clip_samples, spec.task.head_units(spec.names), activation=spec.task.activation, dropout=config.dropout,
        head_l2=config.head_l2, spec_augment=config.spec_augment, freeze_batch_norm=False, name=f"{config.name}_scratch",
    )
    budget = scratch_budget(config, transfer, timings["transfer_train_s"])
    t0 = time.perf_counter()
    augmentation = build_wave_augmentation(TIME_SHIFT if config.spec_augment else 0.0, config.noise_snr_db, config.seed)
    result = train_from_scratch(scratch, train, ordered("validation"), plan, folder.scratch.root, augmentation=augmentation,
                                class_weight=class_weight, **budget)
    timings["scratch_train_s"] = time.perf_counter() - t0
    scores = settled_scores(scratch, spec, ordered("validation"), ordered(held), splits.targets["validation"], splits.targets[held])[2]
    logging.info("scratch (same network, random weights): %s", ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
    return {**{f"scratch_{k}": v for k, v in scores.items()}, "scratch_epochs": result.phases[0].epochs_run,
            "scratch_budget": config.scratch_budget}


def finish_audio_run(trained: TrainedAudioRun, extra: dict) -> dict:
    """Exports the model (if asked), adds timings and `extra`, and writes summary.json last; returns the summary."""
    config, summary, timings = trained.config, trained.summary, trained.timings
    if config.export:
        split = summary["evaluated_on"]
        measured = {**{f"validation_{k}": v for k, v in summary.get("validation_scores", {}).items()},
                    **{f"{split}_{k}": v for k, v in summary["scores"].items()}}
        metadata = card_metadata(config, None, measured, summary["calibration"])
        t0 = time.perf_counter()
        exported = export_audio_saved_model(
            distribute.float32_copy(trained.model), config.export_dir, config.name, trained.splits.class_names,
            sample_rate=trained.splits.sample_rate, metadata=metadata, allow_new_classes=config.allow_new_classes,
            target=trained.target,
        )
        timings["export_s"] = time.perf_counter() - t0
        summary["export"] = str(exported)
    return write_summary(trained.folder, summary, timings, trained.started, extra)
