"""What makes a RunConfig valid: every rule, each raising ConfigError that names the flag and says what would do.

Checks that need a layer above `config/` (a backbone name against the
registry, a text encoder, a sound source) belong to the modality that
registered itself in `config.modalities`, so this layer imports nothing
above it and every entry point validates alike.
"""

from __future__ import annotations

import dataclasses

from tl_keras.io import storage
from tl_keras.config.modalities import modality_for
from tl_keras.config.recipes import given_settings
from tl_keras.config.settings import (
    CACHES, CLASS_WEIGHTS, FEATURE_CACHES, FLIPS, HEAD_INITS, LR_SCHEDULES, MONITORS, OPTIMIZERS, POOLINGS, PRECISIONS, REFIT_MODES,
    REGRESSION_LOSSES, TASKS,
    SCRATCH_BUDGETS, STRATEGIES, BASELINE_MODES, TTA_MODES, ConfigError, check_choice, check_model_name, parse_unfreeze, unfreeze_stages,
)

# Settings that are counts, sizes or strengths: 0 skips or keeps a default, below 0 means nothing.
_NON_NEGATIVE = (
    "frozen_epochs", "fine_tune_epochs", "fine_tune_min_steps", "early_stopping_patience", "alpha", "image_size", "head_l2",
    "label_smoothing", "min_images_per_class", "max_train_per_class", "rotation_degrees", "zoom", "translation", "contrast",
    "brightness", "mixup_alpha", "cutmix_alpha", "clipnorm", "overfit_patience", "feature_cache_augment_passes",
    "checkpoint_every",
)
# Settings that take one of a vocabulary: any modality's, then the image runs' own.
_CHOICES = {
    "class_weights": CLASS_WEIGHTS, "head_init": HEAD_INITS, "scratch_budget": SCRATCH_BUDGETS, "lr_schedule": LR_SCHEDULES,
    "strategy": STRATEGIES, "mixed_precision": PRECISIONS, "feature_cache": FEATURE_CACHES, "optimizer": OPTIMIZERS,
    "fine_tune_optimizer": OPTIMIZERS, "monitor": MONITORS, "refit": REFIT_MODES, "task": TASKS,
    "regression_loss": REGRESSION_LOSSES, "baselines": BASELINE_MODES,
}
_IMAGE_CHOICES = {"cache": CACHES, "flip": FLIPS, "tta": TTA_MODES, "pooling": POOLINGS}


def _check_labels_file(config) -> None:
    """A labels file names images in --image_dir; tags and values need one (class folders say one class per image)."""
    if config.labels_file and not config.image_dir:
        raise ConfigError(f"--labels_file={config.labels_file}: give --image_dir, the folder its file names are relative to")
    if config.labels_file and not storage.isfile(config.labels_file):
        raise ConfigError(f"--labels_file={config.labels_file}: file not found")
    if config.task in ("multi_label", "regression") and not config.labels_file:
        raise ConfigError(f"--task={config.task}: image tags or values come from --labels_file (class folders give one class per image)")
    if config.labels_file and (config.mixup_alpha or config.cutmix_alpha):
        raise ConfigError("--mixup_alpha/--cutmix_alpha blend one-class labels; a --labels_file run of tags or values cannot use them")
    if config.labels_file and config.class_weights == "auto":
        raise ConfigError("--class_weights=auto weights classes; a --labels_file run of tags or values has none")


def validate_run_config(config) -> None:
    """Every rule for `config` (a RunConfig): one data source, then its modality's own rules, then the shared ones.

    Each modality registers its own rules with its `Modality` (the image
    rules are `check_image_run` below; the text and audio ones live in their
    packages); the rules every run shares (`check_shared`) are written once, here.
    """
    modality_for(config).validate(config)
    check_shared(config)


def given_flags_among(config, names) -> list[str]:
    """`--name` for each of `names` the caller gave with a value other than the default: settings a modality cannot honour, named."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    return [f"--{key}" for key in sorted(given_settings(config) & set(names)) if getattr(config, key) != defaults[key]]


def check_shared(config) -> None:
    """The rules of any run, whatever it classifies: splits, batch, regularisation, epochs, rates, choices, run folder, name."""
    for flag in ("validation_fraction", "test_fraction"):
        value = getattr(config, flag)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"--{flag} must be in [0, 1), got {value}.")
    if config.validation_fraction + config.test_fraction >= 1.0:
        raise ConfigError("--validation_fraction plus --test_fraction must leave data to train on (sum < 1).")
    if config.batch_size < 1:
        raise ConfigError(f"--batch_size must be >= 1, got {config.batch_size}.")
    for flag in ("dropout", "label_smoothing"):
        if not 0.0 <= getattr(config, flag) < 1.0:
            raise ConfigError(f"--{flag} must be in [0, 1), got {getattr(config, flag)}.")
    for flag in ("frozen_epochs", "fine_tune_epochs"):
        if getattr(config, flag) < 0:
            raise ConfigError(f"--{flag} must be >= 0, got {getattr(config, flag)}; use 0 to skip the phase.")
    if config.frozen_epochs == 0 and config.fine_tune_epochs == 0:
        raise ConfigError("--frozen_epochs and --fine_tune_epochs are both 0; nothing would be trained.")
    if config.learning_rate <= 0:
        raise ConfigError(f"--learning_rate must be > 0, got {config.learning_rate}.")
    if config.fine_tune_learning_rate < 0:
        raise ConfigError(f"--fine_tune_learning_rate must be > 0, or auto (0), got {config.fine_tune_learning_rate}.")
    for flag, choices in _CHOICES.items():
        check_choice(flag, getattr(config, flag), choices)
    if config.resume and config.overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: one continues the run in --run_dir, the other starts it again.")
    if config.name:
        check_model_name(config.name)


def check_image_run(config) -> None:
    """An image run's own rules: its sources, labels file, numbers, training schedule and choices (the backbone: `vision.checks`)."""
    _check_image_sources(config)
    _check_labels_file(config)
    _check_numbers(config)
    _check_training(config)
    for flag, choices in _IMAGE_CHOICES.items():
        check_choice(flag, getattr(config, flag), choices)
    if config.init_from and not storage.exists(config.init_from):
        raise ConfigError(f"--init_from: not found: {config.init_from!r}; pass a .keras file, a run folder or an export folder")


def _check_image_sources(config) -> None:
    if config.records and (config.labels_file or config.validation_dir):
        raise ConfigError("--records bring their own labels and splits; --labels_file and --validation_dir go with --image_dir")
    if config.image_dir and config.tfds:
        raise ConfigError("--image_dir and --tfds are all set; give one data source.")
    if config.image_dir and not storage.isdir(config.image_dir):
        raise ConfigError(f"--image_dir: folder not found: {config.image_dir!r}; pass a folder with one sub-folder per class.")
    if config.validation_dir and not config.image_dir:
        raise ConfigError("--validation_dir needs --image_dir: it is the validation tree beside a training tree.")
    if config.validation_dir and not storage.isdir(config.validation_dir):
        raise ConfigError(f"--validation_dir: folder not found: {config.validation_dir!r}; pass a folder with one sub-folder per class.")
    if config.tfds_data_dir and not config.tfds:
        raise ConfigError("--tfds_data_dir is set but --tfds is not; name the dataset with --tfds.")
    if config.num_classes == 1 or config.num_classes < 0:
        raise ConfigError(
            f"--num_classes must be 0 (take it from the data) or at least 2, got {config.num_classes}; "
            "a classifier needs two classes or more."
        )


def _check_numbers(config) -> None:
    for flag in _NON_NEGATIVE:
        if getattr(config, flag) < 0:
            raise ConfigError(f"--{flag} must be >= 0, got {getattr(config, flag)}; use 0 to skip or keep the default.")
    if config.image_size and config.image_size < 8:
        raise ConfigError(f"--image_size must be at least 8 pixels (or 0 for the backbone's default), got {config.image_size}.")
    if config.rotation_degrees > 180:
        raise ConfigError(f"--rotation_degrees must be at most 180, got {config.rotation_degrees}.")
    for flag in ("zoom", "translation", "contrast", "brightness"):
        if getattr(config, flag) >= 1.0:
            raise ConfigError(f"--{flag} is a fraction and must be below 1, got {getattr(config, flag)}.")


def _check_training(config) -> None:
    parse_unfreeze(config.unfreeze)
    stages = unfreeze_stages(config.unfreeze_schedule) if config.unfreeze_schedule else []
    if len(stages) > max(config.fine_tune_epochs, 1):
        raise ConfigError(
            f"--unfreeze_schedule has {len(stages)} stages but --fine_tune_epochs={config.fine_tune_epochs}; "
            "give each stage an epoch at least."
        )
    if not 0.0 < config.layer_rate_bottom <= 1.0:
        raise ConfigError(f"--layer_rate_bottom must be in (0, 1], got {config.layer_rate_bottom}; 1 turns layer-wise rates off.")
    if not 0.0 <= config.fine_tune_warmup < 1.0:
        raise ConfigError(f"--fine_tune_warmup is a share of phase 2 and must be in [0, 1), got {config.fine_tune_warmup}.")
