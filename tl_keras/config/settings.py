"""The vocabularies, string formats and small typed settings that the library's layers take.

`RunConfig` (config.py) holds every knob of a CLI run; `run.py` unpacks it
here once, at the boundary, into `TrainSettings`, `DataSettings` and
`AugmentSettings`, so training, data and augmentation never see the whole
config and a library user can call them without building one. Each
vocabulary (optimizers, poolings, ...) and each string format (`--unfreeze`
specs, backbone sources) is defined once, here, and both the CLI's
validation and the loaders use it. Standard library only: importing this
costs nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any, Mapping, TypeVar


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting (the CLI's flag) and the fix."""


OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
POOLINGS = ("avg", "max")
MONITORS = ("val_accuracy", "val_loss")
CLASS_WEIGHTS = ("none", "auto")
HEAD_INITS = ("logistic", "random")
SCRATCH_BUDGETS = ("time", "epochs")
BASELINE_MODES = ("auto", "all", "none")
REFIT_MODES = ("auto", "on", "off", "all")
TASKS = ("auto", "single_label", "multi_label", "regression")
REGRESSION_LOSSES = ("mse", "huber")
LR_SCHEDULES = ("constant", "cosine", "plateau")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
CACHES = ("auto", "memory", "disk", "none")
FEATURE_CACHES = ("auto", "memory", "disk", "off")
FLIPS = ("none", "horizontal", "vertical", "horizontal_and_vertical")
TTA_MODES = ("none", "flip", "crops", "flip_crops")

# Decoded images or cached features are kept in memory up to this size; past it, on disk.
MEMORY_BUDGET_BYTES = 2 << 30
# A model name becomes a folder and a TF Serving model name.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def check_model_name(name: str) -> str:
    """The one rule for run and export names: it becomes a folder TF Serving polls, so no path tricks.

    Raises:
        ConfigError: the name is empty, has other characters, starts with '.' or holds '..'.
    """
    import re

    if not name or not re.match(NAME_PATTERN, name) or ".." in name:
        raise ConfigError(
            f"--name {name!r}: use letters, digits, '_', '-' and '.', no path separators, no '..', not starting with '.'"
        )
    return name
# Prefixes of a TF Hub / Kaggle Models handle (loaded with hub.load).
HUB_PREFIXES = ("http://", "https://", "gs://", "tfhub:", "kaggle:")


def check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    """Raises ConfigError unless `value` is one of `choices`."""
    if value not in choices:
        raise ConfigError(f"--{flag} must be one of {', '.join(choices)}, got {value!r}.")


def parse_unfreeze(spec: str) -> tuple[str, int]:
    """Parses an --unfreeze spec into ('all', 0), ('top', N) or ('from', K)."""
    text = str(spec).strip().lower()
    if text == "all":
        return ("all", 0)
    try:
        if text.startswith("from:"):
            value = int(text[len("from:"):])
            kind = "from"
        else:
            value = int(text)
            kind = "top"
    except ValueError:
        raise ConfigError(f"--unfreeze {spec!r} is not understood; use 'all', a number N (top N layers) or 'from:K'.") from None
    if value < 0 or (kind == "top" and value == 0):
        raise ConfigError(f"--unfreeze {spec!r} must name at least one layer; use 'all', N >= 1 or 'from:K' with K >= 0.")
    return (kind, value)


def unfreeze_stages(schedule: str) -> list[str]:
    """The --unfreeze specs of an --unfreeze_schedule, each checked."""
    stages = [part.strip() for part in schedule.split(",") if part.strip()]
    if not stages:
        raise ConfigError(f"--unfreeze_schedule {schedule!r} names no stage; e.g. '20,50,all'.")
    for stage in stages:
        try:
            parse_unfreeze(stage)
        except ConfigError as error:
            raise ConfigError(f"--unfreeze_schedule: {error}") from None
    return stages


def backbone_source(text: str) -> str:
    """What kind of thing a --backbone string names: "hub", "keras_file", "saved_model" or "name".

    "name" is a registered backbone or a typo; the registry (which imports
    Keras) tells those apart. The CLI's validation and `load_backbone` both
    decide with this function, so they cannot disagree about a handle.
    """
    text = str(text)
    if text.startswith(HUB_PREFIXES):
        return "hub"
    if text.endswith(".keras"):
        return "keras_file"
    if (Path(text) / "saved_model.pb").is_file():
        return "saved_model"
    return "name"


# Phase names: history.json, checkpoints and resume states are keyed by them.
FROZEN = "frozen"
FINE_TUNE = "fine_tune"
SCRATCH = "scratch"

_Settings = TypeVar("_Settings")


def settings_from(cls: type[_Settings], source: Any, **overrides: Any) -> _Settings:
    """A settings object of type `cls` filled from the like-named attributes (or keys) of `source`.

    `source` is a `RunConfig`, another settings object or a mapping (a run's
    config.json); fields it lacks keep their defaults. A `cls` instance with
    no overrides is returned as it is, so a function may accept either.
    """
    if isinstance(source, cls) and not overrides:
        return source
    get = source.get if isinstance(source, Mapping) else lambda name, default: getattr(source, name, default)
    missing = object()
    values = {}
    for field in dataclasses.fields(cls):
        value = get(field.name, missing)
        if value is not missing:
            values[field.name] = value
    values.update(overrides)
    return cls(**values)


def require_settings(cls: type, value: Any, argument: str, taker: str) -> None:
    """Refuses anything but a `cls` below the settings boundary (a whole `RunConfig` included), saying how to make one.

    Code under config/ takes only the settings group it reads, so what a
    function depends on is in its signature; `settings_from` converts at
    the boundary (the run, a script).
    """
    if not isinstance(value, cls):
        raise TypeError(
            f"{argument}: {taker} takes a{'n' if cls.__name__[0] in 'AEIOU' else ''} {cls.__name__}, got {type(value).__name__}; "
            f"build one with {cls.__name__}(...) or settings_from({cls.__name__}, config)"
        )


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """What the two-phase training loop needs; defaults are the `default` recipe's.

    `run_fingerprint` and `run_settings` identify the whole run for
    `--resume` (a run's state is refused under other settings); a library
    user can leave them empty, and the training settings themselves are
    then the identity.
    """

    frozen_epochs: int = 50
    fine_tune_epochs: int = 1
    fine_tune_min_steps: int = 56
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    fine_tune_optimizer: str = "adam"
    fine_tune_learning_rate: float = 5e-5  # 0: an LR range test picks it per stage
    fine_tune_warmup: float = 0.2
    lr_schedule: str = "cosine"
    clipnorm: float = 0.0
    label_smoothing: float = 0.0
    regression_loss: str = "mse"
    unfreeze: str = "all"
    unfreeze_schedule: str = ""
    layer_rate_bottom: float = 0.1
    monitor: str = "val_accuracy"
    early_stopping_patience: int = 5
    overfit_patience: int = 3
    feature_cache: str = "auto"
    feature_cache_augment_passes: int = 0
    head_init: str = "logistic"
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    seed: int = 42
    verbose: int = 2
    resume: bool = False
    checkpoint_every: int = 0  # also a resume state every this many training batches within an epoch (0: at epoch ends)
    run_fingerprint: str = ""
    run_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def fingerprint(self) -> str:
        """The identity a resume state is written and checked under."""
        return self.run_fingerprint or hashlib.sha256(json.dumps(self.result_settings(), sort_keys=True).encode()).hexdigest()[:12]

    def result_settings(self) -> dict[str, Any]:
        """The settings a refused resume compares field by field."""
        if self.run_settings:
            return dict(self.run_settings)
        own = dataclasses.asdict(self)
        for reporting in ("verbose", "resume", "checkpoint_every", "run_fingerprint", "run_settings"):
            own.pop(reporting)
        return own

    @property
    def mixes_images(self) -> bool:
        """Mixup/CutMix blend images, which features cached per image cannot."""
        return bool(self.mixup_alpha or self.cutmix_alpha)

    def fine_tune_epoch_count(self, steps_per_epoch: int = 0) -> int:
        """Phase 2's epochs: --fine_tune_epochs, raised until they hold --fine_tune_min_steps steps.

        A schedule's length in epochs means little across folder sizes: 2
        epochs of 200 photos are 14 steps, too few to move a backbone, while 2
        epochs of 20,000 are 1,250. So, like BiT's schedule rule, small
        training sets get more epochs (never fewer than asked); 0 steps or an
        unknown epoch length leaves the count as it is.
        """
        if self.fine_tune_epochs <= 0 or self.fine_tune_min_steps <= 0 or steps_per_epoch <= 0:
            return self.fine_tune_epochs
        return max(self.fine_tune_epochs, -(-self.fine_tune_min_steps // steps_per_epoch))

    def fine_tune_stages(self, steps_per_epoch: int = 0) -> list[tuple[str, str, int]]:
        """(phase name, --unfreeze spec, epochs) of each stage of phase 2.

        One stage (no --unfreeze_schedule) is the phase "fine_tune"; a schedule
        of n stages gives "fine_tune_1".."fine_tune_n", with phase 2's epochs
        (`fine_tune_epoch_count`) split evenly and any remainder going to the
        last stages.
        """
        epochs = self.fine_tune_epoch_count(steps_per_epoch)
        specs = unfreeze_stages(self.unfreeze_schedule) if self.unfreeze_schedule else [self.unfreeze]
        if len(specs) == 1:
            return [(FINE_TUNE, specs[0], epochs)]
        base, extra = divmod(epochs, len(specs))
        return [(f"{FINE_TUNE}_{i + 1}", spec, base + (1 if i >= len(specs) - extra else 0)) for i, spec in enumerate(specs)]


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """Which labelled data a run reads and how it is split: one of image_dir, tfds or a built-in dataset."""

    dataset: str = "flowers"
    image_dir: str = ""
    labels_file: str = ""
    task: str = "auto"
    validation_dir: str = ""
    tfds: str = ""
    tfds_data_dir: str = ""
    records: str = ""  # a folder written by experiments/make_records.py
    validation_fraction: float = 0.2
    test_fraction: float = 0.1
    seed: int = 42
    data_check: bool = True
    min_images_per_class: int = 2


@dataclasses.dataclass(frozen=True)
class ImageSettings:
    """The image modality's own knobs: the backbone and what it sees, how its feature map is pooled, how decoded images are
    stored, and which test-time views evaluation averages. A text run reads none of them (its encoder has its own)."""

    backbone: str = "mobilenet_v2"
    image_size: int = 0  # 0: the backbone's default side
    alpha: float = 0.0  # MobileNet width multiplier; 0: the backbone's default
    preprocessing: str = ""  # "": the backbone's own pixel normalisation
    backbone_cut_layer: str = ""
    hub_signature: str = ""
    hub_output_key: str = ""
    pooling: str = "avg"  # global 2-D pooling of the feature map
    cache: str = "auto"  # where resized images are kept: auto, memory, disk or none
    tta: str = "none"


@dataclasses.dataclass(frozen=True)
class AugmentSettings:
    """Random training-time changes to images; zeros and "none" turn each off."""

    flip: str = "horizontal"
    rotation_degrees: float = 10.0
    zoom: float = 0.1
    translation: float = 0.0
    contrast: float = 0.0
    brightness: float = 0.0
    seed: int = 42
