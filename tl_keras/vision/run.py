"""One image run from a `RunConfig`: data -> backbone -> two phases -> evaluation -> export.

The vision modality's `run` (registered in `vision/modality.py`); `tl_keras.run`
dispatches to it for image sources and the built-in photos.

Everything the run decides or measures lands in its run folder
(`config.json`, `split.json`, `history.json`, `summary.json`, checkpoints,
`model.keras`) so any step can be inspected or repeated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tl_keras.io import storage
from tl_keras.vision import data as data_lib
from tl_keras.training import distribute
from tl_keras.vision import pretrain
from tl_keras.training import refit as refit_lib
from tl_keras.export.classes import require_same_classes
from tl_keras.export.endpoints import check_same_classes_as_served
from tl_keras.vision.augment import build_augmentation, mix_batches
from tl_keras.vision.classifier import build_classifier
from tl_keras.config.run_config import RunConfig
from tl_keras.training.run_steps import (  # noqa: F401 - shared steps, importable from here as before
    SCRATCH_MAX_EPOCHS, card_metadata, check_run_splits, describe_counts, in_run_environment, scratch_budget, start_run,
    train_settings, training_entries, training_seconds, write_summary,
)
from tl_keras.data.epochs import EpochBatches, epoch_seed
from tl_keras.evaluation.calibration import calibration_report, choose_temperature, fold_temperature, why_not_adopted
from tl_keras.evaluation.metrics import classification_metrics, plot_curves, predict_dataset
from tl_keras.evaluation.predictions import SplitReport
from tl_keras.evaluation.task_report import evaluate_task_split, frozen_probe_scores, settled_scores, targets_of
from tl_keras.models.builders import with_augmentation
from tl_keras.tasks import SINGLE_LABEL, TargetSpec
from tl_keras.vision.serving import export_saved_model
from tl_keras.vision.inspection import inspect_split
from tl_keras.vision.gallery import thumbnail_html
from tl_keras.export.reload import load_classifier
from tl_keras.models.anatomy import DEFAULT_INPUT_SIZE
from tl_keras.vision.backbones import backbone_from, backbone_of
from tl_keras.io.run_folder import RunFolder
from tl_keras.config.settings import AugmentSettings, DataSettings, ImageSettings, settings_from
from tl_keras.training.freezing import check_unfreeze_fits
from tl_keras.training.two_phase import train_from_scratch, train_two_phase



def run_image_experiment(config: RunConfig) -> dict:
    """Trains, evaluates and exports an image run per `config`; returns the run summary.

    The summary (also `<run_dir>/summary.json`) holds the kept phase, test
    accuracy, the transfer-vs-scratch comparison when asked, wall times and
    where the model went. Everything runs inside the `--strategy` scope
    under the `--mixed_precision` policy; on a cluster only the chief writes
    into the run folder and exports.
    """
    return in_run_environment(config, _train_and_evaluate, finish_run)


@dataclasses.dataclass
class TrainedRun:
    """A trained and evaluated run, waiting for its export and summary.

    Training happens inside the distribution strategy's scope and the export
    outside it; this carries what the second step needs from the first.
    """

    config: RunConfig
    folder: RunFolder
    model: keras.Model
    class_names: list[str]
    weights: str | None
    summary: dict
    timings: dict[str, float]
    started: float
    target: TargetSpec | None = None  # the task, with its thresholds once chosen (None: one class per image)


@dataclasses.dataclass
class _Trained:
    """One image run's pieces once its two phases ran: what evaluation, the refit, the scratch arm and the summary read."""

    config: RunConfig
    splits: data_lib.DataSplits
    backbone: object  # vision.backbones.Backbone
    weights: str | None
    plan: object  # config.settings.TrainSettings
    data: "RunBatches"
    augmentation: keras.Sequential | None
    folder: RunFolder
    result: object  # training.two_phase.TrainingResult
    curves: Path | None
    timings: dict[str, float]
    started: float

    def report_about(self, temperature=None, decision=None) -> SplitReport:
        split = self.data.evaluation_split
        return SplitReport(split, f"{self.config.name}: {self.backbone.name} on the {split} split", self.curves,
                           {"kept_phase": self.result.kept_phase, "kept_epoch": self.result.kept_epoch}, temperature, decision)


def _train_and_evaluate(config: RunConfig) -> TrainedRun:
    """Everything up to the export: data, model, both phases, calibration, evaluation, the scratch arm."""
    config, run_dir = start_run(config)
    for warning in config.photo_warnings():
        logging.warning("%s", warning)
    started = time.perf_counter()
    splits = load_splits(config, run_dir)
    timings: dict[str, float] = {}
    weights = None if config.init_from else resolve_weights(config, run_dir, timings)
    spec = splits.target or TargetSpec(SINGLE_LABEL, list(splits.class_names))
    backbone, model = _model_for_run(config, splits, weights, spec.task)
    plan = train_settings(config, spec.task)
    check_unfreeze_fits(backbone.layer, plan)
    data = prepare_batches(config, splits, backbone.input_size, run_dir)
    augmentation = build_augmentation(settings_from(AugmentSettings, config))
    if data.class_weight:
        logging.info("class weights %s", {splits.class_names[i]: round(w, 3) for i, w in data.class_weight.items()})
    folder = RunFolder(run_dir)
    callbacks = [keras.callbacks.TensorBoard(log_dir=str(folder.tensorboard))] if config.tensorboard else []
    keras.utils.set_random_seed(config.seed)  # training's own draws (dropout, augmentation) start from the seed too
    t0 = time.perf_counter()
    result = train_two_phase(
        model, backbone.layer, data.train, data.validation, plan, run_dir,
        augmentation=augmentation, class_weight=data.class_weight, train_examples=splits.size("train"), extra_callbacks=callbacks,
    )
    timings["transfer_train_s"] = training_seconds(time.perf_counter() - t0, result)
    trained = _Trained(config, splits, backbone, weights, plan, data, augmentation, folder, result,
                       plot_curves(result.to_dict(), folder.curves), timings, started)
    if spec.kind != SINGLE_LABEL:
        return _tags_or_values_run(trained, model, spec)
    refit_plan = _refit_plan(trained)
    # Where the refit model is exported, the report, gallery and Grad-CAM are written for it alone; the model trained on
    # training alone is only scored (its accuracy is the one compared with scratch) and chooses the temperature.
    # Validation is in the refit model's training data: only a test split it did not train on can score it.
    refit_scored = refit_plan is not None and data.evaluation_split == "test" and not refit_plan.include_test
    metrics, calibration = _calibrate_and_inspect(trained, model, write_report=not refit_scored)
    summary = _run_summary(trained, metrics)
    summary["exported_accuracy"] = summary["transfer_accuracy"]
    if refit_plan is not None:
        model = _refit_and_score(trained, refit_plan, summary, calibration, refit_scored)
    model.save(folder.model)
    if config.compare_scratch and config.init_from:
        logging.info("--compare_scratch skipped: the model came from --init_from, not from --backbone")
    elif config.compare_scratch:
        summary.update(_scratch_arm(trained))
        summary["transfer_minus_scratch"] = float(summary["transfer_accuracy"] - summary["scratch_accuracy"])
    return TrainedRun(config, folder, model, splits.class_names, weights, summary, timings, started)


def _refit_and_score(trained: _Trained, refit_plan, summary: dict, calibration: tuple, scored: bool):
    """The refit model, trained by `refit_plan`, scored on the test split where it did not train on it (`scored`), its
    temperature the first model's; `summary` gains what the refit did and the exported model's score (None: unscored)."""
    config, data = trained.config, trained.data
    model, summary["refit"] = _refit_on_all_labels(trained, refit_plan)
    summary["refit"]["accuracy_before"] = summary["transfer_accuracy"]
    summary["refit"]["calibration_before"] = summary["calibration"]  # the model trained on training alone
    summary["refit"]["temperature_from"] = "the model trained on training alone (the refit trained on validation)"
    if scored:
        refit_metrics, _ = _calibrate_and_inspect(trained, model, calibration=calibration)
        summary["exported_accuracy"] = float(refit_metrics["accuracy"])
        summary.update(_evaluation_entries(refit_metrics))  # the exported model's
        logging.info("refit on training + validation: %s accuracy %.4f (trained on training alone: %.4f)", data.evaluation_split,
                     summary["exported_accuracy"], summary["transfer_accuracy"])
    else:
        temperature, decision = calibration
        if decision and decision["adopted"]:
            fold_temperature(model, temperature)
        summary["exported_accuracy"] = None
        if refit_plan.include_test:
            summary["refit"]["unscored"] = "every labelled image, the test split's included, trained it"
            logging.info("refit on all %d labelled images, test split included: the export has no held-out score; the scores are "
                         "the model's before it%s", summary["refit"]["examples"], "" if config.refit == "all" else " (--refit=on: scored)")
        else:
            summary["refit"]["unscored"] = "there is no test split, and validation is part of the refit model's training data"
            logging.warning("--refit=on without a test split: the exported refit model has no held-out score (validation is "
                            "in its training data); the report and the scores are those of the model trained on training alone")
    return model


def _tags_or_values_run(trained: _Trained, model, spec) -> TrainedRun:
    """A multi-label or regression image run after training: the task settles its model (tag thresholds chosen on
    validation, or the value's scale folded into the head), the held-out split is measured in the task's terms, the
    scratch arm is scored alike. No temperature, refit or Grad-CAM: those rules were measured for one label.
    """
    config, data, splits, folder, result = trained.config, trained.data, trained.splits, trained.folder, trained.result
    backbone, curves = trained.backbone, trained.curves
    validation_targets, held_targets = targets_of(data.validation, spec), targets_of(data.held_out, spec)
    holder = with_augmentation(model, build_augmentation(settings_from(AugmentSettings, config)))  # the phases' checkpoints are its
    probe = frozen_probe_scores(holder, model, result, spec, data.validation, data.held_out, validation_targets, held_targets)
    spec, outputs, scores = settled_scores(model, spec, data.validation, data.held_out, validation_targets, held_targets)
    validation_scores = spec.task.scores(spec.task.evaluate(predict_dataset(model, data.validation)[0], validation_targets, spec.names,
                                                            spec.thresholds))
    train_targets = spec.user_targets(splits.indexed["train"].labels) if "train" in splits.indexed else None
    split = data.evaluation_split
    names = splits.split_record.get(split, [])
    metrics = evaluate_task_split(outputs, held_targets, spec, list(names) or [str(i) for i in range(len(outputs))],
                                  folder.evaluation, trained.report_about(), noun="images", show=thumbnail_html)
    if config.refit != "off":
        logging.info("no refit on training + validation: its rules were measured for one label per image, not for tags or values")
    summary = {
        "modality": "vision", "name": config.name, "run_dir": str(folder.root), "classes": splits.class_names, "counts": splits.counts,
        "task": spec.to_dict(),
        "backbone": backbone.name, "weights": trained.weights, "image_size": backbone.input_size,
        "setup": _setup(backbone, trained.weights), **training_entries(result),
        "evaluated_on": split, "scores": scores, **{f"transfer_{k}": v for k, v in scores.items()}, "probe": probe,
        "validation_scores": validation_scores,
        "constant": {} if train_targets is None else spec.task.constant_baseline(train_targets, held_targets, spec),
        "calibration": None, "report_html": metrics["report"],
        "metrics_json": str(folder.evaluation / "metrics.json"), "curves_png": str(curves),
    }
    model.save(folder.model)
    if config.compare_scratch:
        summary.update(_scratch_tags_or_values(trained, spec, validation_targets, held_targets))
        summary["transfer_minus_scratch"] = float(summary[f"transfer_{spec.task.headline}"] - summary[f"scratch_{spec.task.headline}"])
    return TrainedRun(config, folder, model, splits.class_names, trained.weights, summary, trained.timings, trained.started, spec)


def _scratch_tags_or_values(trained: _Trained, spec, validation_targets, held_targets) -> dict:
    """The same network from random weights for tags or values, scored in the task's measures."""
    config, data, timings = trained.config, trained.data, trained.timings
    keras.utils.set_random_seed(config.seed)
    scratch = build_classifier(
        _load(config, None), spec.task.head_units(spec.names), dropout=config.dropout, head_l2=config.head_l2,
        pooling=_image(config).pooling, freeze_batch_norm=False, name=f"{config.name}_scratch", activation=spec.task.activation,
    )
    budget = scratch_budget(config, trained.result, timings["transfer_train_s"])
    t0 = time.perf_counter()
    result = train_from_scratch(scratch, data.train, data.validation, trained.plan, trained.folder.scratch.root,
                                augmentation=build_augmentation(settings_from(AugmentSettings, config)), **budget)
    timings["scratch_train_s"] = time.perf_counter() - t0
    scores = settled_scores(scratch, spec, data.validation, data.held_out, validation_targets, held_targets)[2]
    return {**{f"scratch_{k}": v for k, v in scores.items()}, "scratch_epochs": result.phases[0].epochs_run,
            "scratch_budget": config.scratch_budget}


def _model_for_run(config: RunConfig, splits: data_lib.DataSplits, weights: str | None, task):
    """(backbone, classifier): reloaded from --init_from (its classes must be the data's), or built on --backbone for `task`."""
    if not config.init_from:
        return build_model(config, weights, task.head_units(splits.class_names), activation=task.activation)
    require_same_classes(config.init_from, splits.class_names, "--init_from")
    model = load_classifier(config.init_from)
    backbone = backbone_of(model)
    if backbone.input_size == 0:
        backbone.input_size = _image(config).image_size or DEFAULT_INPUT_SIZE
    return backbone, model


def _calibrate_and_inspect(trained: _Trained, model, *, calibration=None, write_report: bool = True) -> tuple[dict, tuple]:
    """The temperature choice (on validation), the held-out evaluation with its report, then the temperature folded in if adopted.

    `calibration`: a (temperature, decision) already chosen, for the refit
    model, which trained on validation and so cannot choose on it.
    `write_report`: False scores the held-out split (accuracy, calibration)
    without writing the evaluation folder. Returns the metrics and the
    (temperature, decision) used.
    """
    config, data, folder, class_names = trained.config, trained.data, trained.folder, trained.splits.class_names
    temperature, decision = calibration or (None, None)
    if config.calibrate and calibration is None:  # fitted on validation, reported on the held-out split, then carried by the head
        temperature, decision = choose_temperature(*predict_dataset(model, data.validation), seed=config.seed)
    split = data.evaluation_split
    if write_report:
        metrics = inspect_split(model, data.held_out, class_names, folder.evaluation, trained.report_about(temperature, decision),
                                tta=_image(config).tta)
    else:
        probabilities, labels = predict_dataset(model, data.held_out)
        metrics = classification_metrics(probabilities, labels, class_names)
        metrics["calibration"], _ = calibration_report(probabilities, labels, temperature, decision, "validation", split)
        metrics["report"] = None
    if decision and decision["adopted"]:
        fold_temperature(model, temperature)
    if decision and calibration is None:  # the refit model carries the choice made (and logged) for the first one
        _log_temperature_decision(decision, temperature, split, metrics["calibration"])
    if config.tensorboard:
        _log_evaluation_to_tensorboard(folder.tensorboard, metrics, folder.evaluation / "confusion_matrix.png")
    return metrics, (temperature, decision)


def _log_temperature_decision(decision: dict, temperature: float, split: str, calibration: dict) -> None:
    if decision["adopted"]:
        logging.info("temperature %.3f fitted on validation: ECE on %s %.4f -> %.4f", temperature, split,
                     calibration["ece_before"], calibration["ece_after"])
    else:
        logging.info("temperature %.3f fitted on validation not adopted (%s); the head keeps T = 1", decision["fitted_temperature"],
                     why_not_adopted(decision))


def _refit_plan(trained: _Trained):
    """The `RefitPlan` when `--refit` asks for a refit and the kept recipe can be replayed, else None (the log says why)."""
    config, splits = trained.config, trained.splits
    labelled = {n: splits.counts["train"].get(n, 0) + splits.counts["validation"].get(n, 0) for n in splits.class_names}
    why_not = "--refit=off"
    if config.refit != "off":
        why_not = refit_lib.refit_plan(trained.result, trained.plan, trained.folder.root)
        if not isinstance(why_not, str):
            why_not = refit_lib.refit_decision(
                config.refit, why_not, max(labelled.values()), has_test=splits.test is not None, from_init=bool(config.init_from),
                spare_test=splits.test_carved and not config.max_train_per_class,
            )
    if isinstance(why_not, str):
        if config.refit != "off":
            logging.info("no refit on training + validation: %s", why_not)
        return None
    return why_not


def _refit_on_all_labels(trained: _Trained, refit_plan):
    """(the refit model, what the refit did): a fresh model trained by `refit_plan` on training + validation (+ test, where it says)."""
    config, splits, folder = trained.config, trained.splits, trained.folder
    pooled = data_lib.all_labelled(splits, include_test=refit_plan.include_test)
    backbone, model = build_model(config, trained.weights, len(splits.class_names))
    cache_path = folder.image_cache("all_labelled" + ("_and_test" if refit_plan.include_test else ""), backbone.input_size,
                                    _cache_key(config, splits))
    batches = data_lib.epoch_batches(pooled.train, backbone.input_size, config.batch_size, seed=config.seed,
                                     indexed=pooled.indexed.get("train"), num_examples=pooled.size("train"), cache=_image(config).cache,
                                     cache_path=cache_path)
    keras.utils.set_random_seed(config.seed)
    done = refit_lib.refit(model, backbone.layer, batches, refit_plan, trained.plan, folder.root, augmentation=trained.augmentation,
                           class_weight=trained.data.class_weight, examples=pooled.size("train"))
    return model, done


# What summary.json keeps of the calibration block of metrics.json.
_SUMMARY_CALIBRATION = (
    "temperature", "adopted", "fitted_temperature", "likelihood_ratio", "critical_value", "ece_before", "ece_after", "ece",
    "validation_examples", "min_examples", "halves_improved",
)


def _run_summary(trained: _Trained, metrics: dict) -> dict:
    """summary.json's content before the refit, the scratch arm, the export and the timings are added."""
    config, splits, backbone, weights = trained.config, trained.splits, trained.backbone, trained.weights
    evaluation_dir = trained.folder.evaluation
    return {
        "modality": "vision", "name": config.name, "run_dir": str(trained.folder.root), "classes": splits.class_names,
        "counts": splits.counts,
        "backbone": backbone.name, "weights": weights, "image_size": backbone.input_size, "setup": _setup(backbone, weights),
        **training_entries(trained.result),
        "evaluated_on": trained.data.evaluation_split, "transfer_accuracy": float(metrics["accuracy"]),
        "macro_f1": metrics["macro"]["f1"],
        "metrics_json": str(evaluation_dir / "metrics.json"), "confusion_matrix_png": str(evaluation_dir / "confusion_matrix.png"),
        "curves_png": str(trained.curves), **_evaluation_entries(metrics),
    }


def _setup(backbone, weights: str | None) -> str:
    """The run's model in one phrase, for the result table's heading."""
    shown = Path(weights).name if weights and "/" in weights else weights or "random"
    return f"{backbone.name} ({shown} weights) at {backbone.input_size} px"


def _evaluation_entries(metrics: dict) -> dict:
    """What summary.json keeps of one model's held-out evaluation: its calibration, its report page and its TTA gain if measured."""
    entries = {"calibration": {k: metrics["calibration"][k] for k in _SUMMARY_CALIBRATION if k in metrics["calibration"]},
               "report_html": metrics["report"]}
    if "tta" in metrics:
        entries["tta"] = metrics["tta"]
    return entries


def _scratch_arm(trained: _Trained) -> dict:
    """The same network from random weights, on the same data, for the same wall time (or epochs); its held-out accuracy."""
    config, data, timings = trained.config, trained.data, trained.timings
    keras.utils.set_random_seed(config.seed)
    scratch = build_classifier(
        _load(config, None), len(trained.splits.class_names), dropout=config.dropout, head_l2=config.head_l2,
        pooling=_image(config).pooling, freeze_batch_norm=False, name=f"{config.name}_scratch",
    )
    budget = scratch_budget(config, trained.result, timings["transfer_train_s"])
    t0 = time.perf_counter()
    augmentation = build_augmentation(settings_from(AugmentSettings, config))
    result = train_from_scratch(
        scratch, data.train, data.validation, trained.plan, trained.folder.scratch.root, augmentation=augmentation,
        class_weight=data.class_weight, **budget,
    )
    timings["scratch_train_s"] = time.perf_counter() - t0
    probabilities, labels = predict_dataset(scratch, data.held_out)
    return {"scratch_accuracy": float(np.mean(probabilities.argmax(-1) == labels)), "scratch_epochs": result.phases[0].epochs_run,
            "scratch_budget": config.scratch_budget}


def _trained_on(summary: dict) -> str:
    """What the exported model was trained on, for its model card."""
    refit = summary.get("refit")
    if not refit:
        return "the training split"
    if refit.get("include_test"):
        return (f"every labelled example ({refit['examples']}: training, validation and test), after the report; its scores "
                "are those of the model trained on the training split")
    return f"training + validation ({refit['examples']})"


def finish_run(trained: TrainedRun, extra: dict) -> dict:
    """Exports the model (if asked), adds timings and `extra`, and writes summary.json last; returns the summary."""
    config, summary, timings = trained.config, trained.summary, trained.timings
    if config.export:
        scores = summary.get("scores") or {"accuracy": summary["exported_accuracy"]}
        measured = {**{f"validation_{k}": v for k, v in summary.get("validation_scores", {}).items()},
                    **{f"{summary['evaluated_on']}_{k}": v for k, v in scores.items()}}
        refit = summary.get("refit")
        if refit and summary.get("exported_accuracy") is None and "accuracy_before" in refit:
            measured[f"{summary['evaluated_on']}_accuracy_before_refit"] = refit["accuracy_before"]
        metadata = card_metadata(config, trained.weights, measured, summary["calibration"], trained_on=_trained_on(summary))
        t0 = time.perf_counter()
        # Trained in float16/bfloat16 or not, servers and phones get float32.
        exported = export_saved_model(
            distribute.float32_copy(trained.model), config.export_dir, config.name, trained.class_names, metadata=metadata,
            tta=_image(config).tta, allow_new_classes=config.allow_new_classes, target=trained.target,
        )
        timings["export_s"] = time.perf_counter() - t0
        summary["export"] = str(exported)
    return write_summary(trained.folder, summary, timings, trained.started, extra)


def load_splits(config: RunConfig, run_dir: Path) -> data_lib.DataSplits:
    """The run's data, checked against --num_classes and recorded in split.json."""
    splits = data_lib.limit_train_per_class(
        data_lib.load_data(settings_from(DataSettings, config), run_dir, progress=_log_progress), config.max_train_per_class, config.seed
    )
    kind = splits.target.kind if splits.target is not None else SINGLE_LABEL
    check_run_splits(config, noun="images", has_validation=splits.validation is not None, kind=kind, class_names=splits.class_names)
    if config.export and not config.allow_new_classes:  # before training: the export would be refused after it
        check_same_classes_as_served(storage.join(config.export_dir, config.name), splits.class_names)
    data_lib.write_split(RunFolder(run_dir).split, splits.split_record)
    logging.info("%s", describe_counts(splits.class_names, splits.counts))
    return splits


def resolve_weights(config: RunConfig, run_dir: Path, timings: dict[str, float]) -> str | None:
    """--weights as a loader takes it; `pretrain:<dataset>` is trained (or reused) here first."""
    weights = config.weights
    if pretrain.is_pretrain_spec(weights):
        t0 = time.perf_counter()
        image = _image(config)
        weights = str(pretrain.pretrain_backbone(
            image.backbone, weights[len(pretrain.PREFIX):], RunFolder(run_dir).pretrained,
            image_size=image.image_size, alpha=image.alpha, batch_size=config.batch_size, seed=config.seed,
        ))
        timings["pretrain_s"] = time.perf_counter() - t0
    return weights


def build_model(config: RunConfig, weights: str | None, num_classes: int, *, name: str | None = None, activation: str = "softmax"):
    """The configured backbone and a fresh classifier on it, from a freshly seeded state.

    Reseeding here makes the initial weights independent of what ran
    before in the process: a rerun that reuses cached source weights skips
    builds that draw random numbers, and would otherwise start from another
    head; the refit on every label builds its model here too.
    """
    keras.utils.set_random_seed(config.seed)
    backbone = _load(config, weights)
    model = build_classifier(
        backbone,
        num_classes,
        dropout=config.dropout,
        head_l2=config.head_l2,
        pooling=_image(config).pooling,
        name=name or f"{config.name}_classifier",
        activation=activation,
    )
    return backbone, model


@dataclasses.dataclass
class RunBatches:
    """The batched splits a run trains and evaluates on."""

    train: EpochBatches
    validation: tf.data.Dataset
    held_out: tf.data.Dataset
    evaluation_split: str  # "test", or "validation" when there is no test split
    class_weight: dict[int, float] | None


def prepare_batches(config: RunConfig, splits: data_lib.DataSplits, size: int, run_dir: Path) -> RunBatches:
    """Seeded training epochs (mixed if asked), validation and held-out batches at `size` pixels."""
    num_classes = len(splits.class_names)

    def cached(split: str) -> dict:
        return {
            "num_examples": splits.size(split),
            "cache": _image(config).cache,
            "cache_path": RunFolder(run_dir).image_cache(split, size, _cache_key(config, splits)),
        }

    def batches(split: str):
        return data_lib.make_batches(getattr(splits, split), size, config.batch_size, **cached(split))

    train = data_lib.epoch_batches(
        splits.train, size, config.batch_size, seed=config.seed, indexed=splits.indexed.get("train"),
        per_epoch=splits.epoch_sources.get("train"), **cached("train"),
    )
    if config.mixup_alpha or config.cutmix_alpha:
        train = train.map_epochs(
            lambda batches, epoch: mix_batches(
                batches, num_classes, config.mixup_alpha, config.cutmix_alpha, epoch_seed(config.seed, epoch)
            )
        )
    validation = batches("validation")
    has_test = splits.test is not None
    class_weight = data_lib.balanced_class_weights(splits.counts["train"], splits.class_names) if config.class_weights == "auto" else None
    return RunBatches(train, validation, batches("test") if has_test else validation, "test" if has_test else "validation", class_weight)


def _cache_key(config: RunConfig, splits: data_lib.DataSplits) -> str:
    """What the disk image cache is keyed to: the settings and which files went where.

    Adding, removing or moving an image changes the split record, so a rerun
    never trains on arrays decoded from the folder as it was.
    """
    content = hashlib.sha256(json.dumps(splits.split_record, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{config.fingerprint()}_{content}"


def _log_evaluation_to_tensorboard(log_dir: Path, metrics: dict, confusion_png: Path) -> None:
    """Final metrics and the confusion matrix image, beside the training curves."""
    writer = tf.summary.create_file_writer(str(log_dir / "evaluation"))
    with writer.as_default():
        step = 0
        tf.summary.scalar("accuracy", metrics["accuracy"], step=step)
        tf.summary.scalar("macro_f1", metrics["macro"]["f1"], step=step)
        for name, row in metrics["per_class"].items():
            tf.summary.scalar(f"recall/{name}", row["recall"], step=step)
        image = tf.io.decode_png(confusion_png.read_bytes(), channels=4)
        tf.summary.image("confusion_matrix", image[None], step=step)
    writer.flush()


def _log_progress(done: int, total: int) -> None:
    if done == total or done % 500 == 0:
        logging.info("data check: %d/%d files read", done, total)


def _load(config: RunConfig, weights: str | None):
    return backbone_from(_image(config), weights)


def _image(config: RunConfig) -> ImageSettings:
    """The image knobs of a run (backbone, size, pooling, storage, test-time views), as their own settings group."""
    return settings_from(ImageSettings, config)
