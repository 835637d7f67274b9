"""The refit on every label: the kept recipe trained again on training plus validation, its choices fixed.

Validation is spent choosing: the head's L2 strength, how many fine-tuning
epochs to keep, whether fine-tuning is kept at all (and, later, the
temperature). Once those are chosen the validation images have nothing
left to choose, and on a small folder they are a large share of the
labels: 60 labelled photos per class split 40/20 leave a third of them out
of the model. The refit replays the kept recipe on all of them with every
choice fixed (the strength, the epoch count, the rate, the unfrozen
layers), so nothing is picked on data the model trained on.

Where the run carved its test split from the user's own labels (one
folder, no test split of its own), `--refit=auto` folds that split in too,
after the report is written: the frozen refit is then one logistic fit on
every labelled image, and the reported scores are those of the model
trained before it (the export has none of its own). A test split the
source supplied stays out of every refit but `--refit=all`.

What can be replayed: the frozen phase as the logistic fit on cached
features (`head_init="logistic"`, the default), and one fine-tuning stage
at a constant or cosine rate. A plateau schedule (it reacts to validation),
a gradual-unfreezing schedule, a head trained in Keras epochs or a custom
trainer are not replayed; `refit_plan` says why instead.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import keras
from absl import logging

from tl_keras.config.settings import FINE_TUNE, FROZEN, TrainSettings
from tl_keras.data.epochs import EpochBatches
from tl_keras.io.run_folder import RunFolder
from tl_keras.models.anatomy import anatomy
from tl_keras.models.builders import layer_rate_scales, with_augmentation
from tl_keras.tasks import task_of_head
from tl_keras.training import features as features_lib
from tl_keras.training import phase as phase_lib
from tl_keras.training.freezing import backbone_leaves, freeze_backbone, unfreeze_backbone
from tl_keras.training.frozen_features import cache_training_features, uses_feature_cache
from tl_keras.training.two_phase import recorded_rate


# --refit=auto refits folders of at most this many labelled (training + validation) images per class, when the
# frozen phase was kept: there the refit is one deterministic logistic fit on more rows, and it gained on average
# at every budget measured (benchmarks/label_budget.py, and with a carved test split folded in too,
# benchmarks/one_folder.py; docs/training.md). A kept fine-tuning is replayed only with
# --refit=on: a new fine-tuning run on more labels did not gain on average over the runs measured, since the epoch
# and phase validation chose were chosen for the first run's draw of the noise, not the replay's.
AUTO_MAX_PER_CLASS = 150


@dataclasses.dataclass(frozen=True)
class RefitPlan:
    """The choices validation made, which the refit keeps."""

    head_strength: float  # the logistic head's inverse L2 strength
    fine_tune_epochs: int  # epochs of fine-tuning kept; 0 when the frozen phase was kept
    planned_epochs: int  # the fine-tuning schedule's length (its cosine and warmup span), in epochs
    unfreeze: str
    fine_tune_rate: float | None  # None: the settings' rate
    include_test: bool = False  # the test split trains the refit too (after the report): the export has no held-out score

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def refit_plan(result, settings: TrainSettings, run_dir: Path, *, custom_trainer: bool = False) -> RefitPlan | str:
    """The plan that replays `result`'s kept recipe, or a sentence saying why it cannot be replayed."""
    if custom_trainer:
        return "a custom trainer (distillation) trained the model"
    if not uses_feature_cache(settings) or settings.head_init != "logistic":
        return "the frozen phase was not the logistic fit on cached features"
    phases = {p.name: p for p in result.phases}
    frozen = phases.get(FROZEN)
    if frozen is None or frozen.head_strength is None:
        return "there was no frozen phase to replay"
    plan = RefitPlan(frozen.head_strength, 0, 0, settings.unfreeze, None)
    if result.kept_phase == FROZEN:
        return plan
    if result.kept_phase != FINE_TUNE:
        return f"the kept phase {result.kept_phase} is a stage of a gradual-unfreezing schedule"
    if settings.lr_schedule == "plateau":
        return "--lr_schedule=plateau lowers the rate when validation stalls, which a refit has no validation to replay"
    tuned = phases[FINE_TUNE]
    kept_epochs = result.kept_epoch - tuned.first_epoch + 1
    rate = None
    if settings.fine_tune_learning_rate == 0:  # the rate the LR range test found for the stage
        rate = recorded_rate(run_dir, FINE_TUNE)
    planned = max(kept_epochs, tuned.planned_epochs or tuned.epochs_run)
    return dataclasses.replace(plan, fine_tune_epochs=kept_epochs, planned_epochs=planned, fine_tune_rate=rate)


def refit_decision(
    mode: str, plan: RefitPlan, most_per_class: int, *, has_test: bool, from_init: bool, spare_test: bool = False,
) -> RefitPlan | str:
    """`plan` when `--refit=mode` refits this run (`include_test` set where the test split trains it too), else why not.

    Args:
        most_per_class: labelled (training + validation) examples of the largest class.
        has_test: whether the run has a test split.
        from_init: the model came from `--init_from`, not from a backbone a refit can rebuild.
        spare_test: the test split was carved from the user's own labels and nothing else holds labels back
            (no label budget), so `auto` trains the export on it too once the report is written.
    """
    if from_init:
        return "the model came from --init_from, which a refit cannot rebuild from scratch"
    if mode == "auto" and not has_test:
        return "there is no test split to score the refit model on (--test_fraction=0)"
    if mode == "auto" and most_per_class > AUTO_MAX_PER_CLASS:
        return f"more than {AUTO_MAX_PER_CLASS} labelled images per class (--refit=on refits anyway)"
    if mode == "auto" and plan.fine_tune_epochs:
        return "fine-tuning was kept, and replaying it on more labels did not gain on average (--refit=on replays it anyway)"
    return dataclasses.replace(plan, include_test=mode == "all" or (mode == "auto" and spare_test))


def refit(
    model: keras.Model,
    backbone: keras.layers.Layer,
    all_labelled: EpochBatches,
    plan: RefitPlan,
    settings: TrainSettings,
    run_dir: Path,
    *,
    augmentation: keras.Sequential | None = None,
    class_weight: dict[int, float] | None = None,
    examples: int = -1,
) -> dict:
    """Trains a fresh `model` (same build, same seed) by `plan` on `all_labelled`; returns what it did.

    (Nine parameters: `train_two_phase`'s, less the validation data, plus the plan.)

    The frozen phase is the logistic fit at the kept strength on features of
    every labelled image; fine-tuning then runs for exactly the kept number
    of epochs at the kept rate over the same schedule, and its last weights
    are the model's (no epoch is picked: there is nothing to pick on).
    """
    started = time.perf_counter()
    freeze_backbone(backbone)
    extractor = features_lib.feature_extractor(model)
    cache = cache_training_features(extractor, all_labelled, settings, run_dir, augmentation, examples, "all_labelled")
    head = anatomy(model).head
    strength = _strength_on_every_label(head, plan, cache, class_weight)
    fitted = features_lib.fit_logistic_head(head, cache, None, class_weight=class_weight, seed=settings.seed, strength=strength)
    sampled = ("" if fitted["rows"] == fitted["of_rows"]
               else f", fitted on a seeded sample of {fitted['rows']} of the {fitted['of_rows']} cached rows")
    logging.info("refit: the logistic head at C=%g on all %d labelled examples%s (%.1fs)", strength,
                 cache.examples_per_pass, sampled, fitted["seconds"])
    if plan.fine_tune_epochs:
        _fine_tune(model, backbone, all_labelled, plan, settings, augmentation, class_weight)
    phase_lib.leave_compiled(model, settings)
    return {**plan.to_dict(), "head_strength_fitted": strength, "examples": int(cache.examples_per_pass),
            "seconds": round(time.perf_counter() - started, 2)}


def splits_trained_on(summary: dict) -> set[str]:
    """The splits the run's saved model trained on, read from its summary.json: training, and validation and test where
    a refit folded them in. A score on any of them is not a held-out score."""
    refit = summary.get("refit")
    if not refit:
        return {"train"}
    return {"train", "validation", "test"} if refit.get("include_test") else {"train", "validation"}


def splits_the_run_trained_on(run_dir) -> set[str]:
    """`splits_trained_on` of the run in `run_dir`, from its summary.json; empty for a run that has not finished."""
    summary = RunFolder(run_dir).summary
    return splits_trained_on(json.loads(summary.read_text())) if summary.is_file() else set()


# Rows up to which the refit on every label chooses its head's strength again by cross-validation (5 folds x the
# strength grid: about 35 s for 500 rows of 5 classes on 2 busy cores, growing with rows and classes); past it,
# validation's choice stands.
CROSS_VALIDATE_MAX_ROWS = 5_000


def _strength_on_every_label(head, plan: RefitPlan, cache, class_weight) -> float:
    """The head's strength for the refit: where the test split trains it too (nothing held out is left to pick with),
    chosen again by 5-fold cross-validation over every labelled example, else the one validation picked."""
    task = task_of_head(head)
    if not plan.include_test or cache.examples_per_pass > CROSS_VALIDATE_MAX_ROWS:
        return plan.head_strength
    features, labels = cache.clean()
    strength = task.cross_validated_strength(features, labels, features_lib.row_weights(class_weight, labels))
    if strength is None:
        return plan.head_strength
    logging.info("refit: the head's strength chosen again by 5-fold cross-validation over every labelled example: C=%g "
                 "(validation chose C=%g)", strength, plan.head_strength)
    return strength


def _fine_tune(model, backbone, all_labelled: EpochBatches, plan: RefitPlan, settings: TrainSettings, augmentation, class_weight) -> None:
    """The kept fine-tuning, replayed: same layers, rate and schedule span; the last epoch's weights are kept."""
    trainer = with_augmentation(model, augmentation)
    unfreeze_backbone(backbone, plan.unfreeze)
    scales = layer_rate_scales(backbone_leaves(backbone), settings.layer_rate_bottom) if settings.layer_rate_bottom < 1.0 else None
    steps = all_labelled.steps_per_epoch
    phase_lib.compile_phase(trainer, settings, True, plan.planned_epochs, steps, rate_scale=scales, rate=plan.fine_tune_rate)
    logging.info("refit: fine-tuning %d epoch%s on every label", plan.fine_tune_epochs, "" if plan.fine_tune_epochs == 1 else "s")
    trainer.fit(
        all_labelled.stream(0), epochs=plan.fine_tune_epochs, steps_per_epoch=steps, class_weight=class_weight,
        verbose=phase_lib.fit_verbosity(settings.verbose), shuffle=False,
    )
