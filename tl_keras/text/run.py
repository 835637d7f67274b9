"""One text-classification run from a `RunConfig`: texts -> encoder -> two phases -> evaluation -> export.

The text counterpart of `tl_keras.run`, sharing its run environment
(strategy scope, precision, chief-only writes), run folder, seeded start,
both training phases (`train_two_phase`: the head on cached sentence
vectors, then fine-tuning with layer-wise rates), calibration rule and
summary. What differs is only what touches text: reading and splitting
texts, the tokenizer (kept beside the model in the run folder and the
export), batches padded per batch, the TF-IDF baseline and a text export.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
from absl import logging

from tl_keras.io import storage
from tl_keras.io import atomic
from tl_keras.training import distribute
from tl_keras.evaluation.calibration import choose_temperature, fold_temperature
from tl_keras.config.run_config import RunConfig
from tl_keras.data.subsets import balanced_class_weights
from tl_keras.data.splits import write_split
from tl_keras.evaluation.metrics import plot_curves, predict_dataset
from tl_keras.evaluation.predictions import SplitReport
from tl_keras.evaluation.task_report import evaluate_task_split, frozen_probe_scores, settled_scores
from tl_keras.tasks import SINGLE_LABEL, TargetSpec
from tl_keras.training.run_steps import (
    card_metadata, check_run_splits, describe_counts, in_run_environment, scratch_budget, start_run, train_settings,
    training_entries, training_seconds, write_summary,
)
from tl_keras.io.run_folder import RunFolder
from tl_keras.text import batches as batches_lib
from tl_keras.evaluation.baseline_rows import baseline_rows, sampled_note
from tl_keras.text.baselines import tfidf_baseline
from tl_keras.text.data import TextSplits, check_same_data, covering_length, duplicates_across_splits, length_report, load_text_splits
from tl_keras.text.encoders import TextEncoder, load_text_encoder
from tl_keras.text.records import text_splits_from_records
from tl_keras.text.evaluate import evaluate_text_split
from tl_keras.export.endpoints import check_same_classes_as_served
from tl_keras.text.export import TOKENIZER_FOLDER, export_text_saved_model
from tl_keras.text.hub_format import encoder_of, export_hub_encoder
from tl_keras.text.tables import lists_to_files, tfds_class_order, tfds_to_files
from tl_keras.text.model import build_text_classifier
from tl_keras.training.two_phase import train_from_scratch, train_two_phase


@dataclasses.dataclass
class TrainedTextRun:
    """What the export and summary need from the training step (which runs inside the strategy scope)."""

    config: RunConfig
    folder: RunFolder
    model: keras.Model
    encoder: TextEncoder
    class_names: list[str]
    summary: dict
    timings: dict[str, float]
    started: float
    target: TargetSpec | None = None  # the task, with its thresholds once chosen


@dataclasses.dataclass
class TokenizedSplits:
    """Each text's length in tokens (framed: `[CLS] pieces [SEP]`, cut to the sequence length), the labels of every
    split, and the texts, which batches tokenize inside `tf.data` (`batches.text_training_batches`)."""

    lengths: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    texts: dict[str, list[str]]


def run_text_experiment(config: RunConfig) -> dict:
    """Trains, evaluates and exports a text classifier per `config`; returns the run summary (also summary.json)."""
    return in_run_environment(config, train_text_run, finish_text_run)


def train_text_run(config: RunConfig) -> TrainedTextRun:
    """Everything up to the export: texts, encoder, both phases, calibration, evaluation, the baselines."""
    config, run_dir = start_run(config)
    started = time.perf_counter()
    folder = RunFolder(run_dir)
    splits = checked_splits(config, folder)
    encoder = load_text_encoder(config.backbone, sequence_length=10**6, preprocessor=config.text_preprocessor)
    tokenized, data_report = tokenize_splits(config, splits, encoder)
    atomic.write_json(folder.data_report, data_report)
    write_split(folder.split, {**splits.record, "sequence_length": encoder.tokenizer.sequence_length})
    encoder.tokenizer.save(folder.root / TOKENIZER_FOLDER)
    logging.info("%s; %d tokens per text", describe_counts(splits.class_names, splits.counts), encoder.tokenizer.sequence_length)
    spec, task = splits.target, splits.target.task
    class_weight = balanced_class_weights(splits.counts["train"], splits.class_names) if config.class_weights == "auto" else None
    if class_weight:
        logging.info("class weights %s", {splits.class_names[i]: round(w, 3) for i, w in class_weight.items()})

    keras.utils.set_random_seed(config.seed)
    model = build_text_classifier(
        encoder, task.head_units(splits.class_names), pooling=config.pooling, dropout=config.dropout, head_l2=config.head_l2,
        name=f"{config.name}_classifier", activation=task.activation,
    )
    plan = train_settings(config, task)
    fitted = {split: spec.training_targets(tokenized.labels[split]) for split in tokenized.labels}
    train = batches_lib.text_training_batches(tokenized.texts["train"], tokenized.lengths["train"], fitted["train"],
                                              config.batch_size, tokenizer=encoder.tokenizer, seed=config.seed)
    held_split = "test" if splits.has("test") else "validation"

    def ordered(split: str):
        return batches_lib.text_ordered_batches(tokenized.texts[split], fitted[split], config.batch_size,
                                                tokenizer=encoder.tokenizer)

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    callbacks = [keras.callbacks.TensorBoard(log_dir=str(folder.tensorboard))] if config.tensorboard else []
    result = train_two_phase(model, encoder.model, train, ordered("validation"), plan, run_dir, class_weight=class_weight,
                             train_examples=len(tokenized.texts["train"]), extra_callbacks=callbacks)
    timings["transfer_train_s"] = training_seconds(time.perf_counter() - t0, result)
    curves = plot_curves(result.to_dict(), folder.curves)
    title = f"{config.name}: {encoder.name} on the {held_split} split"
    extra = {"kept_phase": result.kept_phase, "kept_epoch": result.kept_epoch}
    if spec.kind == SINGLE_LABEL:
        metrics = _evaluate_single_label(config, model, ordered, tokenized, splits, folder, held_split, curves, title, extra)
    else:
        probe = frozen_probe_scores(model, model, result, spec, ordered("validation"), ordered(held_split), tokenized.labels["validation"],
                                    tokenized.labels[held_split])
        spec, outputs, _ = settled_scores(model, spec, ordered("validation"), ordered(held_split), tokenized.labels["validation"],
                                          tokenized.labels[held_split])
        metrics = evaluate_task_split(outputs, tokenized.labels[held_split], spec, tokenized.texts[held_split], folder.evaluation,
                                      SplitReport(held_split, title, curves, extra), noun="texts")
    model.save(folder.model)
    summary = text_summary(config, run_dir, splits, encoder, result, metrics, held_split, curves, spec)
    rows = baseline_rows(config.baselines, {split: len(tokenized.texts[split]) for split in ("train", "validation", held_split)},
                         config.seed)
    if not rows.skip:
        summary["tfidf"] = tfidf_baseline(tokenized.texts, tokenized.labels, spec, held_split, rows)
        logging.info("TF-IDF baseline on the %s split%s (%.1fs)", held_split, sampled_note(summary["tfidf"]),
                     summary["tfidf"]["seconds"])
    if spec.kind != SINGLE_LABEL:
        summary["probe"] = probe
        summary["constant"] = task.constant_baseline(tokenized.labels["train"], tokenized.labels[held_split], spec)
        validation_outputs, _ = predict_dataset(model, ordered("validation"))
        summary["validation_scores"] = task.scores(task.evaluate(validation_outputs, tokenized.labels["validation"], spec.names,
                                                                 spec.thresholds))
    if config.compare_scratch:
        arm = scratch_arm(config, model, train, ordered, held_split, plan, folder, timings, result, class_weight, spec=spec,
                          held_targets=tokenized.labels)
        summary.update(arm)
        summary["transfer_minus_scratch"] = float(summary[f"transfer_{task.headline}"] - summary[f"scratch_{task.headline}"])
    return TrainedTextRun(config, folder, model, encoder, splits.class_names, summary, timings, started, spec)


def _evaluate_single_label(config, model, ordered, tokenized, splits, folder, held_split, curves, title, extra) -> dict:
    """The temperature choice on validation, the held-out report, then the temperature folded into the head if adopted.

    (Ten parameters: the run's pieces the report names.)
    """
    temperature, decision = None, None
    if config.calibrate:
        temperature, decision = choose_temperature(*predict_dataset(model, ordered("validation")), seed=config.seed)
    probabilities, labels = predict_dataset(model, ordered(held_split))
    metrics = evaluate_text_split(probabilities, labels, tokenized.texts[held_split], splits.class_names, folder.evaluation,
                                  SplitReport(held_split, title, curves, extra, temperature, decision))
    if decision and decision["adopted"]:
        fold_temperature(model, temperature)
    return metrics


def checked_splits(config: RunConfig, folder: RunFolder) -> TextSplits:
    """The run's texts by split, refused (one line each) when they differ from its split.json, lack a validation split, or
    hold another number of classes than --num_classes."""
    splits = read_splits(config)
    check_same_data(folder.split, splits, fix="pass --overwrite to train again on the data as it is now")
    check_run_splits(config, noun="texts", has_validation=splits.has("validation"), kind=splits.target.kind,
                     class_names=splits.class_names, validation_hint=" or pass --validation_file")
    if config.export and not config.allow_new_classes:  # before training: the export would be refused after it
        check_same_classes_as_served(storage.join(config.export_dir, config.name), splits.class_names)
    return splits


def read_splits(config: RunConfig) -> TextSplits:
    """The run's texts by split, from its files or (written once into the run folder) its TFDS dataset."""
    if config.records:
        return text_splits_from_records(config.records)
    source, validation, test = config.text_dir or config.text_file, config.validation_file, config.test_file
    columns = {"text_column": config.text_column, "label_column": config.label_column}
    order = None
    if config.text_tfds:
        folder = Path(config.run_dir) / "tfds_texts"
        files = tfds_to_files(
            config.text_tfds, folder, config.tfds_data_dir or None, text_key=config.text_column, label_key=config.label_column,
        )
        source, validation, test = files["train"], files.get("validation", ""), files.get("test", "")
        columns = {"text_column": "text", "label_column": "label"}
        order = tfds_class_order(folder)
    return load_text_splits(
        source, validation_source=validation, test_source=test, **columns, validation_fraction=config.validation_fraction,
        test_fraction=config.test_fraction, seed=config.seed, min_per_class=config.min_images_per_class,
        max_train_per_class=config.max_train_per_class, class_order=order, task=config.task,
    )


def read_recorded_splits(config: RunConfig, run_dir: str | Path) -> TextSplits:
    """A finished run's texts by split, read again and checked against its split.json (for scoring it after training).

    Raises:
        SplitMismatchError: the data or its classes changed since the run (one line naming the file).
    """
    splits = read_splits(config)
    check_same_data(RunFolder(run_dir).split, splits, fix="train a new run on the data as it is now")
    return splits


def tokenize_splits(config: RunConfig, splits: TextSplits, encoder: TextEncoder) -> tuple[TokenizedSplits, dict]:
    """Sets the sequence length (--max_sequence_length, or 99% coverage of the training texts) and tokenises every split.

    Returns the token ids and the data report: what was skipped, texts
    shared between splits, and per split the token-length distribution and
    how many texts the sequence length truncates.
    """
    tokenizer = encoder.tokenizer
    pieces = {split: tokenizer.piece_lengths(splits.texts[split]) for split in ("train", "validation", "test")}
    lengths = {split: (rows + 2).tolist() for split, rows in pieces.items()}
    limit = encoder.max_positions
    tokenizer.sequence_length = min(config.max_sequence_length, limit) if config.max_sequence_length else covering_length(
        lengths["train"], limit
    )
    framed = {split: np.minimum(rows, tokenizer.sequence_length - 2) + 2 for split, rows in pieces.items()}
    duplicates = duplicates_across_splits(splits)
    for split, count in duplicates.items():
        if count:
            logging.warning("text data: %d texts of the %s split also occur in train; its score partly measures memory", count, split)
    report = {
        "skipped": splits.problems, "duplicates_in_train": duplicates,
        "lengths": {split: length_report(lengths[split], tokenizer.sequence_length) for split in lengths if lengths[split]},
        "sequence_length_source": "--max_sequence_length" if config.max_sequence_length else "99% of the training texts",
    }
    return TokenizedSplits(framed, splits.labels, splits.texts), report


def text_summary(config, run_dir, splits, encoder, result, metrics, held_split, curves, spec: TargetSpec | None = None) -> dict:
    """The run summary in the image runs' shape, with the text facts (sequence length, pooling) in place of pixels.

    (Nine parameters: the pieces of the run the summary reports.) A
    multi-label or regression run reports its task's scores (`transfer_map`,
    `transfer_mae`, ...) where a single-label run reports accuracy and calibration.
    """
    summary = _summary_common(config, run_dir, splits, encoder, result, held_split, curves, metrics)
    if spec is not None and spec.kind != SINGLE_LABEL:
        scores = spec.task.scores(metrics)
        return {**summary, "task": spec.to_dict(), "scores": scores, **{f"transfer_{k}": v for k, v in scores.items()},
                "calibration": None}
    return {**summary, "transfer_accuracy": float(metrics["accuracy"]), "macro_f1": metrics["macro"]["f1"],
            "calibration": {k: v for k, v in metrics["calibration"].items() if not isinstance(v, (list, dict))}}


def _summary_common(config, run_dir, splits, encoder, result, held_split, curves, metrics) -> dict:
    pooling = encoder.pooling if config.pooling == "auto" else config.pooling
    return {
        "modality": "text", "name": config.name, "run_dir": str(run_dir), "classes": splits.class_names, "counts": splits.counts,
        "backbone": encoder.name, "sequence_length": encoder.tokenizer.sequence_length, "pooling": pooling,
        "setup": f"{encoder.name}, {pooling} pooling, {encoder.tokenizer.sequence_length} tokens",
        **training_entries(result), "evaluated_on": held_split,
        "metrics_json": str(Path(metrics["report"]).parent / "metrics.json"), "curves_png": str(curves), "report_html": metrics["report"],
    }


def scratch_arm(config, model, train, ordered, held_split, plan, folder, timings, transfer, class_weight=None, *, spec=None,
                held_targets=None) -> dict:
    """The same network from random weights, trained for the transfer run's wall time (--scratch_budget=time) or epochs.

    (Twelve parameters: the pieces of the run the scratch arm shares with the
    transfer arm, class weights included, and the task with the targets in
    the user's units, for a multi-label or regression run.)
    """
    keras.utils.set_random_seed(config.seed)
    scratch = scratch_copy(model)
    budget = scratch_budget(config, transfer, timings["transfer_train_s"])
    t0 = time.perf_counter()
    result = train_from_scratch(scratch, train, ordered("validation"), plan, folder.scratch.root, class_weight=class_weight, **budget)
    timings["scratch_train_s"] = time.perf_counter() - t0
    done = {"scratch_epochs": result.phases[0].epochs_run, "scratch_budget": config.scratch_budget}
    if spec is not None and spec.kind != SINGLE_LABEL:
        scores = settled_scores(scratch, spec, ordered("validation"), ordered(held_split), held_targets["validation"],
                                held_targets[held_split])[2]
        return {**done, **{f"scratch_{k}": v for k, v in scores.items()}}
    probabilities, labels = predict_dataset(scratch, ordered(held_split))
    return {"scratch_accuracy": float(np.mean(probabilities.argmax(-1) == labels)), **done}


def scratch_copy(model: keras.Model) -> keras.Model:
    """The same architecture with freshly initialised weights: every layer is rebuilt from its config, none loads a checkpoint.

    (A Hub-format encoder would reload its module's weights here; validation
    refuses --compare_scratch for it.)
    """
    return keras.models.clone_model(model)


def finish_text_run(trained: TrainedTextRun, extra: dict) -> dict:
    """Exports the model (if asked), adds timings and `extra`, and writes summary.json last; returns the summary."""
    config, summary, timings = trained.config, trained.summary, trained.timings
    if config.export:
        split = summary["evaluated_on"]
        scores = summary.get("scores") or {"accuracy": summary["transfer_accuracy"]}
        measured = {**{f"validation_{k}": v for k, v in summary.get("validation_scores", {}).items()},
                    **{f"{split}_{k}": v for k, v in scores.items()}}
        metadata = card_metadata(config, None, measured, summary["calibration"])
        t0 = time.perf_counter()
        exported = export_text_saved_model(
            distribute.float32_copy(trained.model), trained.encoder.tokenizer, config.export_dir, config.name, trained.class_names,
            metadata=metadata, allow_new_classes=config.allow_new_classes, target=trained.target,
        )
        timings["export_s"] = time.perf_counter() - t0
        summary["export"] = str(exported)
    if config.hub_encoder_dir:
        pooling = trained.encoder.pooling if config.pooling == "auto" else config.pooling
        model = distribute.float32_copy(trained.model)
        encoder_dir, preprocessor_dir = export_hub_encoder(encoder_of(model), trained.encoder.tokenizer, pooling, config.hub_encoder_dir)
        summary["hub_encoder"] = {"encoder": str(encoder_dir), "preprocessor": str(preprocessor_dir)}
    return write_summary(trained.folder, summary, timings, trained.started, extra)


def run_on_texts(
    train: tuple[Sequence[str], Sequence], validation: tuple[Sequence[str], Sequence] | None = None,
    test: tuple[Sequence[str], Sequence] | None = None, **settings,
) -> dict:
    """A text run on (texts, labels) from Python (lists or arrays); `settings` are RunConfig fields. Returns the summary.

    The texts are written as JSON Lines beside the run folder (`<run_dir>-texts/`),
    so split.json, resume and later checks read them like any --text_file.
    """
    name = settings.pop("name", "") or Path(settings.get("run_dir") or "texts").name
    run_dir = settings.pop("run_dir", "") or str(Path("runs") / name)
    files = lists_to_files(f"{run_dir}-texts", train, validation, test)
    config = RunConfig(
        text_file=files["train"], validation_file=files.get("validation", ""), test_file=files.get("test", ""), name=name,
        run_dir=run_dir, **settings,
    )
    return run_text_experiment(config)
