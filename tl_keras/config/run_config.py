"""`RunConfig`: every knob of a run, its default, and its validation.

Flags in `experiments/` are generated from these fields one to one (same
name, same default, the help text below), so a config error can always name
the flag that fixes it. The resolved config is written as JSON beside every
artifact; `RunConfig.from_json` reads it back to reproduce a run.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from tl_keras.io import storage
from tl_keras.config.settings import ConfigError
from tl_keras.config.recipes import NEVER_GIVEN, apply_recipe, given_settings
from tl_keras.io.run_folder import RESUME_STATE, RunFolder
from tl_keras.config.validation import validate_run_config

# The field defaults below are the `default` recipe: what a user's own photos
# get (a real backbone with ImageNet weights at its pretraining resolution,
# photo augmentation, the cached frozen phase fitted to convergence, a short
# warmed-up fine-tune). With no data source the `embedded` recipe runs on the
# photos and weights that ship inside the package (tl_keras/recipes/).
DEFAULT_DATASET = "flowers"
DEFAULT_BACKBONE = "mobilenet_v2"
DEFAULT_WEIGHTS = "imagenet"



# Settings that change how a run reports or where it writes, not what it computes: a run folder that
# moved, a non-chief worker's scratch folder, another --cache storage or --name must still resume.
# `recipe` and `explicit` only say where the values came from; the values themselves are hashed.
# `compare_scratch` and `baselines` add arms beside the transfer model without changing it, so a run may resume
# with them turned on or off; `checkpoint_every` changes how often the state is saved, not what is trained.
_NOT_RESULT_SETTINGS = ("verbose", "overwrite", "resume", "tensorboard", "export", "export_dir", "allow_new_classes", "recipe", "explicit",
                        "run_dir", "name", "cache", "tfds_data_dir", "tta", "hub_encoder_dir", "compare_scratch",
                        "baselines", "checkpoint_every")


def _field(default: Any, help: str) -> Any:  # noqa: A002 - mirrors absl's name
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a training run does."""

    # Where the other defaults come from (tl_keras/recipes/).
    recipe: str = _field(
        "auto",
        "Named recipe whose settings fill every flag not given explicitly: default, mobile, tutorial, accurate, embedded or digits. "
        "'auto' is embedded (or digits) for a built-in --dataset, default for --image_dir/--tfds.",
    )
    explicit: str = _field(
        "",
        "Comma-separated settings given explicitly, which win over --recipe. The command line fills it; recorded in config.json.",
    )

    # Data: exactly one source; its modality (tl_keras.config.modalities) runs it. With none, `dataset`
    # names a built-in offline image dataset.
    modality: str = _field(
        "auto", "What the examples are: auto (from the data source given), vision, text, audio, or a modality a package registered."
    )
    dataset: str = _field(
        DEFAULT_DATASET,
        "Built-in offline dataset used when neither --image_dir nor --tfds is given: flowers (500 real photos shipped in the package), "
        "digits_0_4, digits_5_9 or digits.",
    )
    image_dir: str = _field("", "Folder with one sub-folder of images per class (or the images a --labels_file names).")
    labels_file: str = _field(
        "", "CSV beside --image_dir (header filename,labels or filename,value): tags joined by | or ; per image (multi-label), or "
        "a number (regression); the file names are relative to --image_dir."
    )
    validation_dir: str = _field(
        "",
        "Optional second class-per-folder tree used for validation (and --test_fraction of it for test); all of --image_dir then trains.",
    )
    tfds: str = _field("", "TensorFlow Datasets name, e.g. tf_flowers (downloads unless already in --tfds_data_dir).")
    tfds_data_dir: str = _field("", "Where TFDS keeps prepared datasets (TFDS's default when empty).")
    records: str = _field(
        "", "A folder of sharded TFRecords with their manifest.json (experiments/make_records.py), local or on a bucket: trains on "
        "the images or texts and the splits it holds, reading whole shards in a seeded order.",
    )
    text_dir: str = _field("", "Folder with one sub-folder of .txt files per class (one document per file): a text classifier.")
    text_file: str = _field(
        "", "CSV, TSV or JSON Lines file of labelled texts (header detected; see --text_column, --label_column): a text classifier."
    )
    text_tfds: str = _field(
        "", "A TFDS text-classification dataset by name (imdb_reviews, ag_news_subset, glue/sst2, ...): a text classifier; "
        "--text_column/--label_column name its features when they are not the supervised keys."
    )
    audio_dir: str = _field("", "Folder with one sub-folder of WAV clips per class: a sound classifier.")
    audio_file: str = _field(
        "", "CSV or TSV of clip path (relative to the file) and label, tags or value (header path,label / path,tags / path,value): "
        "a sound classifier."
    )
    audio_tfds: str = _field("", "A TFDS audio dataset by name (speech_commands, spoken_digit, ...): a sound classifier.")
    clip_seconds: float = _field(
        0.0, "Sound runs: seconds per clip (shorter clips are padded, longer ones cropped about their loudest part); 0 takes the 95th "
        "percentile of the training clips."
    )
    mel_floor_db: float = _field(
        40.0, "Sound runs with an image backbone: the log-mel image keeps this many dB below each clip's peak (quieter is clipped)."
    )
    noise_snr_db: float = _field(
        0.0, "Sound runs: mix white noise into training clips at a random SNR between this value and 30 dB; 0 turns it off."
    )
    spec_augment: bool = _field(
        True, "Sound runs: mask random time and frequency bands of training spectrograms (SpecAugment) and shift clips in time."
    )
    validation_file: str = _field(
        "", "Text runs: a separate file (or folder) of validation texts, instead of a share of the training file."
    )
    test_file: str = _field("", "Text runs: a separate file (or folder) of test texts, instead of a share of the training file.")
    text_column: str = _field("", "Column (or JSON key) holding the text; empty finds text, sentence, review, ... or the first column.")
    label_column: str = _field("", "Column (or JSON key) holding the label; empty finds label, class, category, ... or the last column.")
    max_sequence_length: int = _field(
        0, "Text runs: tokens per text, [CLS] and [SEP] included; 0 covers 99% of the training texts (capped at the encoder's limit)."
    )
    text_preprocessor: str = _field(
        "", "Text runs with a TF Hub-format --backbone (an encoder SavedModel): its BERT preprocessing SavedModel (vocabulary, casing)."
    )
    hub_encoder_dir: str = _field("", "Text runs: also write the fine-tuned encoder and its preprocessor in TF Hub format here.")
    validation_fraction: float = _field(0.2, "Share of labelled data held out for validation when the source has no validation split.")
    test_fraction: float = _field(0.1, "Share of labelled data held out for the final test when the source has no test split.")
    max_train_per_class: int = _field(0, "Train on at most this many labelled images per class (seeded); 0 uses all. For learning curves.")
    num_classes: int = _field(0, "Expected number of classes; 0 takes it from the data. A mismatch stops the run.")
    data_check: bool = _field(True, "Decode every image once before training; report and skip unreadable files (data_report.json).")
    min_images_per_class: int = _field(2, "Stop when a class has fewer usable images than this.")
    class_weights: str = _field("none", "'auto' weights the loss by inverse class frequency (balanced); 'none' leaves it.")
    cache: str = _field("auto", "Decoded-image cache: auto (memory when it fits), memory, disk (a file in the run folder) or none.")
    feature_cache: str = _field(
        "auto",
        "Frozen phase on cached backbone features: auto (memory when it fits, else disk), memory, disk or off.",
    )
    feature_cache_augment_passes: int = _field(
        0,
        "With augmentation on: augmented passes over the training images to cache for the frozen phase, besides the clean one; each "
        "epoch draws one view per image. Each pass costs a forward pass over the training split; measured, they did not improve the "
        "converged logistic head, so the default caches the clean view only.",
    )

    # Augmentation: Keras preprocessing layers in the training model only.
    flip: str = _field("horizontal", "Random flips: none, horizontal, vertical or horizontal_and_vertical.")
    rotation_degrees: float = _field(10.0, "Random rotation of up to this many degrees either way.")
    zoom: float = _field(0.1, "Random zoom in or out by up to this fraction of the image side.")
    translation: float = _field(0.0, "Random shift by up to this fraction of the image side.")
    contrast: float = _field(0.0, "Random contrast change by up to this factor (0.2: x0.8 to x1.2).")
    brightness: float = _field(0.0, "Random brightness shift by up to this fraction of the full range.")
    mixup_alpha: float = _field(0.0, "Mixup: Beta(alpha, alpha) blend of image pairs and their labels; 0 is off.")
    cutmix_alpha: float = _field(0.0, "CutMix: paste a Beta(alpha, alpha)-sized patch from another image; 0 is off.")

    # Backbone and classifier.
    backbone: str = _field(
        DEFAULT_BACKBONE,
        "Registered backbone name (see tl_keras.vision.backbones.BACKBONES), a TF Hub handle, a local SavedModel folder, or a .keras file; "
        "for texts, keras_hub:<preset> or a local BERT-family checkpoint folder (Hugging Face or keras-hub format).",
    )
    weights: str = _field(
        DEFAULT_WEIGHTS,
        "Backbone weights: 'imagenet', 'none', a weights file, or 'pretrain:<dataset>' to pretrain the backbone on a built-in source "
        "dataset first.",
    )
    alpha: float = _field(0.0, "Width multiplier for MobileNet backbones and small_cnn; 0 keeps the backbone's default.")
    image_size: int = _field(0, "Side of the square image the backbone sees; 0 uses the backbone's default.")
    preprocessing: str = _field(
        "",
        "Override the backbone's own pixel normalisation: tf, torch, caffe, zero_one or none. Empty keeps the backbone's.",
    )
    init_from: str = _field(
        "",
        "Continue from a classifier of ours (.keras file, run folder or export) instead of building one; its classes must match the "
        "data.",
    )
    backbone_cut_layer: str = _field(
        "",
        "For a .keras backbone: the layer whose output becomes the features. Empty cuts before the model's head.",
    )
    hub_signature: str = _field("", "For a Hub/SavedModel backbone: call this signature instead of __call__ (TF1-style modules).")
    hub_output_key: str = _field("", "For a Hub/SavedModel backbone returning a dict: the output to use as features.")
    pooling: str = _field("avg", "Global pooling over the backbone's feature map: avg or max.")
    dropout: float = _field(0.2, "Dropout rate before the new softmax head.")
    head_l2: float = _field(0.0, "L2 penalty on the head's kernel.")
    label_smoothing: float = _field(0.0, "Label smoothing of the cross-entropy loss.")
    task: str = _field(
        "auto", "What each label is: auto (decided from the labels, and said in the log), single_label (one class), multi_label "
        "(tags joined by | or ;) or regression (a number)."
    )
    regression_loss: str = _field("mse", "Regression runs: mse, or huber (squared below one standard deviation, linear above).")

    # Two-phase training.
    batch_size: int = _field(32, "Images per training step.")
    frozen_epochs: int = _field(
        50,
        "Most epochs of phase 1 (frozen backbone, head only) when it trains with Keras epochs (--head_init=random, or images that cannot "
        "be cached); early stopping ends it sooner. 0 skips phase 1.",
    )
    head_init: str = _field(
        "logistic",
        "Phase 1 on cached features: 'logistic' is one logistic regression fitted to convergence on them (L-BFGS, its L2 strength "
        "picked on validation), no epochs; 'random' trains the head from random weights for up to --frozen_epochs epochs.",
    )
    fine_tune_epochs: int = _field(1, "Epochs of phase 2 (backbone partly or fully unfrozen); 0 skips it.")
    fine_tune_min_steps: int = _field(
        56,
        "Phase 2 runs at least this many training steps: a small training set gets more epochs than --fine_tune_epochs (never fewer); "
        "0 is off.",
    )
    learning_rate: float = _field(1e-3, "Learning rate of phase 1.")
    fine_tune_learning_rate: float = _field(
        5e-5,
        "Peak learning rate of phase 2; keep it 10-100x below --learning_rate. 'auto' (stored as 0) runs an LR range test (100 steps) "
        "before each fine-tuning stage and takes its suggestion (lr_find.json, lr_find_<stage>.png).",
    )
    fine_tune_warmup: float = _field(
        0.2,
        "Share of phase 2's steps over which its rate rises linearly from 0, so the first updates cannot wreck pretrained features; 0 is "
        "off.",
    )
    optimizer: str = _field("adam", "Optimizer of phase 1: adam, adamw, rmsprop or sgd.")
    fine_tune_optimizer: str = _field("adam", "Optimizer of phase 2: adam, adamw, rmsprop or sgd.")
    unfreeze: str = _field(
        "all",
        "What phase 2 unfreezes: 'all', N (the top N layers) or 'from:K' (layers K and above, as in the Keras tutorial). BatchNorm stays "
        "frozen.",
    )
    unfreeze_schedule: str = _field(
        "",
        "Gradual unfreezing: comma-separated --unfreeze specs for successive stages of phase 2, e.g. '20,50,all' (top 20 layers, then "
        "top 50, then all); --fine_tune_epochs is split evenly. Empty uses --unfreeze alone.",
    )
    layer_rate_bottom: float = _field(
        0.1,
        "Discriminative fine-tuning rates: the lowest trainable backbone layer learns at this multiple of --fine_tune_learning_rate, the "
        "top one at 1, geometric in between; 1 is off.",
    )
    early_stopping_patience: int = _field(
        5,
        "Stop a phase after this many epochs without improvement of --monitor; 0 turns early stopping off.",
    )
    monitor: str = _field("val_accuracy", "Validation metric that picks the best epoch and the best phase: val_accuracy or val_loss.")
    clipnorm: float = _field(0.0, "Clip each gradient to this L2 norm; 0 turns clipping off.")
    lr_schedule: str = _field(
        "cosine",
        "Learning rate within a phase: constant, cosine (decays to 0 over the phase) or plateau (x0.2 after 2 epochs without "
        "improvement).",
    )
    overfit_patience: int = _field(
        3,
        "Warn when validation loss has risen while training loss fell for this many epochs in a row; 0 is off.",
    )
    tensorboard: bool = _field(False, "Write TensorBoard logs (both phases, final metrics, confusion matrix) to <run_dir>/tensorboard.")
    strategy: str = _field(
        "default",
        "tf.distribute strategy: default (one device), mirrored (all local GPUs, or CPUs), multi_worker (cluster from TF_CONFIG) or tpu.",
    )
    mixed_precision: str = _field(
        "float32",
        "Keras dtype policy while training: float32, mixed_float16 (GPUs) or mixed_bfloat16 (TPUs, recent CPUs). The head and every "
        "export stay float32.",
    )
    deterministic: bool = _field(True, "Use TensorFlow's deterministic ops, so the same --seed gives the same run on the same machine.")
    compare_scratch: bool = _field(
        False,
        "Also train the same network from random weights on the same data, and report transfer against scratch.",
    )
    baselines: str = _field(
        "auto",
        "The simple baselines a text or sound run reports beside the model (TF-IDF, MFCC): all (every row, the strength picked "
        "on validation), auto (all up to 50,000 training rows; past that a seeded sample of 50,000 per split, one fit, "
        "said in the summary) or none.",
    )
    scratch_budget: str = _field(
        "time",
        "Budget of the --compare_scratch arm: time (the transfer run's training wall time) or epochs (the epochs its phases ran).",
    )
    calibrate: bool = _field(
        True,
        "Fit a temperature on the validation split after training and fold it into the head, so exported and TFLite probabilities are "
        "calibrated (top-1 unchanged); ECE before/after goes into metrics.json.",
    )
    refit: str = _field(
        "auto",
        "Image runs: once validation has chosen the head's strength, the epochs and the kept phase, train the kept recipe again on "
        "training plus validation with those choices fixed, and export that: on (whenever the recipe can be replayed), off, auto "
        "(when the frozen phase was kept, on folders of at most 150 labelled images per class with a test split; a test split "
        "carved from the same labels by --test_fraction trains it too, after the report, unless --max_train_per_class holds "
        "labels back), or all (on training, validation and test, after the report). Where the test split trained the export, "
        "the reported scores are those of the model trained before it; otherwise the test split scores the exported model.",
    )
    tta: str = _field(
        "none",
        "Test-time augmentation measured at evaluation and added to the export as a serving_tta signature: none, flip (image + mirror), "
        "crops (full + 4 corner crops) or flip_crops (10 views).",
    )
    seed: int = _field(42, "Seed for data splits, weight initialisation and shuffling.")
    verbose: int = _field(2, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")

    # Where things go.
    name: str = _field("", "Model name: the run folder and saved_models/<name>/. Empty derives it from the data source.")
    run_dir: str = _field("", "Folder for this run's config, checkpoints, history and metrics. Empty means runs/<name>.")
    export_dir: str = _field("saved_models", "Root of the TF Serving layout saved_models/<name>/<version>/.")
    export: bool = _field(True, "Export a SavedModel when training ends.")
    allow_new_classes: bool = _field(
        False,
        "Export even when the latest version under --export_dir/--name predicts other classes; without it such a run is refused before "
        "training (a server would answer the old model's clients with the new classes).",
    )
    overwrite: bool = _field(False, "Allow --run_dir to hold an earlier run made with different settings (its files are replaced).")
    resume: bool = _field(
        False,
        "Continue the interrupted run in --run_dir after its last finished epoch: same phase, weights, optimizer state, schedule "
        "position, best so far and data order.",
    )
    checkpoint_every: int = _field(
        0,
        "Also save the resume state every N training batches inside an epoch (0: at the end of each epoch only), so a run "
        "stopped mid-epoch (a preempted worker, an epoch of hours) resumes from its last N-batch mark to the same weights.",
    )

    # ---------------------------------------------------------------- helpers

    def validate(self) -> "RunConfig":
        """Raises ConfigError naming the offending flag; returns self (the rules: `tl_keras.config.validation`)."""
        validate_run_config(self)
        return self

    def resolved(self) -> "RunConfig":
        """Applies the recipe and fills the derived defaults (name, run_dir) so the saved JSON is complete.

        Idempotent: resolving a resolved config changes nothing.
        """
        config = apply_recipe(self)
        name = config.name or _derive_name(config)
        run_dir = config.run_dir or os.path.join("runs", name)
        return dataclasses.replace(config, name=name, run_dir=run_dir)

    def photo_warnings(self) -> list[str]:
        """Settings that make no sense for photos (--image_dir/--tfds), each naming its flag; empty otherwise."""
        if not (self.image_dir or self.tfds):
            return []
        found = []
        if self.weights.startswith("pretrain:"):
            found.append(
                f"--weights={self.weights} pretrains on 8x8 scikit-learn digits, not photos; "
                "--weights=imagenet (or a weights file) transfers far better"
            )
        if self.backbone == "small_cnn":
            found.append(
                "--backbone=small_cnn is a 140k-weight demo network for tiny images; use a pretrained backbone such as mobilenet_v2"
            )
        if 0 < self.image_size < 64:
            found.append(
                f"--image_size={self.image_size} shrinks photos to {self.image_size} px, below what ImageNet backbones can see; "
                "leave it at 0 for the backbone's own size"
            )
        return found

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def to_flagfile(self) -> str:
        """The config as `--flag=value` lines; rerun with `--flagfile=<this file>`."""
        lines = []
        for key, value in self.to_dict().items():
            if isinstance(value, bool):
                lines.append(f"--{key}" if value else f"--no{key}")
            else:
                lines.append(f"--{key}={value}")
        return "\n".join(lines) + "\n"

    def result_settings(self) -> dict[str, Any]:
        """Every setting that changes what a run computes (not where it writes or how it reports)."""
        settings = {k: v for k, v in self.to_dict().items() if k not in _NOT_RESULT_SETTINGS}
        # Where cached features are kept (memory or disk) does not change them; whether the frozen phase uses them does.
        settings["feature_cache"] = "off" if self.feature_cache == "off" else "on"
        return settings

    def fingerprint(self) -> str:
        """Short hash of the `result_settings` that differ from their defaults; tells two runs' configs apart.

        Only what differs from a default is hashed, so a release that adds a
        setting (at a default that computes what was computed before) leaves
        every earlier run's fingerprint, and so its resume state and caches, valid.
        """
        defaults = _default_result_settings()
        changed = {k: v for k, v in self.result_settings().items() if k not in defaults or defaults[k] != v}
        return hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config keys {unknown}; known: {sorted(known)}.")
        return _build_as_recorded(values)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


@functools.lru_cache(maxsize=1)
def _default_result_settings() -> dict[str, Any]:
    return RunConfig().result_settings()


_GENERATED_INIT = RunConfig.__init__
_INIT_FIELDS = frozenset(f.name for f in dataclasses.fields(RunConfig) if f.init)


def _init_recording_given(self: RunConfig, **given: Any) -> None:
    """`RunConfig(**given)`, with every field the caller named listed in `explicit`, so no recipe replaces it.

    A recipe may only fill what the caller left out; telling "left out" from
    "given, equal to the default" by value alone replaced `fine_tune_epochs=1`
    with the text recipe's 3. A call naming every field is a copy
    (`dataclasses.replace`, a recorded config.json): its `explicit` is kept
    as recorded.
    """
    _GENERATED_INIT(self, **given)
    if set(given) >= _INIT_FIELDS:
        return
    named = given_settings(self) | (set(given) - NEVER_GIVEN)
    object.__setattr__(self, "explicit", ",".join(sorted(named)))


def _build_as_recorded(values: dict[str, Any]) -> RunConfig:
    """A `RunConfig` whose `explicit` is exactly `values["explicit"]` (the command line and config.json say it themselves)."""
    config = RunConfig.__new__(RunConfig)
    _GENERATED_INIT(config, **values)
    return config


RunConfig.__init__ = _init_recording_given  # type: ignore[method-assign]


def recipe_config(recipe: str, /, **overrides: Any) -> RunConfig:
    """A resolved `RunConfig` from `recipe` with `overrides` on top (library use, tests)."""
    explicit = ",".join(sorted(overrides))
    return RunConfig(**overrides, recipe=recipe, explicit=explicit).resolved()


def check_run_dir_reuse(config: RunConfig) -> None:
    """Refuses a run folder that holds a run with other settings, unless --overwrite.

    Rerunning the same settings in the same folder is allowed (it reuses the
    recorded split and pretrained weights); mixing two configurations' files
    in one folder is how results stop being reproducible. A folder holding
    an interrupted run is refused too, unless the caller says --resume (go
    on) or --overwrite (start again): silently restarting would throw away
    the hours already spent.
    """
    folder = RunFolder(config.run_dir)
    recorded = folder.config
    if config.overwrite:
        return
    if recorded.is_file():
        try:
            previous = RunConfig.from_json(recorded)
        except (ConfigError, ValueError, TypeError):
            raise ConfigError(
                f"--run_dir {config.run_dir} holds a config.json this version cannot read; pass --overwrite or a new --run_dir"
            ) from None
        if previous.fingerprint() != config.fingerprint():
            earlier = previous.result_settings()
            changed = sorted(k for k, v in config.result_settings().items() if earlier.get(k) != v)
            raise ConfigError(
                f"--run_dir {config.run_dir} holds a run with different settings ({', '.join('--' + c for c in changed)}); "
                "pass --overwrite to replace it or choose a new --run_dir"
            )
    if not config.resume and folder.is_interrupted():
        raise ConfigError(
            f"--run_dir {config.run_dir} holds an interrupted run ({RESUME_STATE}); "
            "pass --resume to continue it or --overwrite to start again"
        )


# Folder names that say which split a folder holds, not what the data is: `photos/train` names its run `photos`.
SPLIT_FOLDER_NAMES = ("train", "training", "val", "valid", "validation", "test", "testing")


def _derive_name(config: RunConfig) -> str:
    """The run and export name a data source implies: its folder's name (its parent's, for a split folder), TFDS name or dataset."""
    local = config.image_dir or config.text_dir or config.text_file or config.audio_dir or config.audio_file or config.records
    if local:
        source = PurePosixPath(local.split("://", 1)[1]) if storage.is_remote(local) else Path(local).resolve()
        folder = source if storage.isdir(local) or not source.suffix else source.with_suffix("")
        if folder.name.lower() in SPLIT_FOLDER_NAMES and folder.parent.name:
            folder = folder.parent
        if folder.name.lower() in SPLIT_FOLDER_NAMES and folder.parent.name:
            folder = folder.parent
        raw = folder.name
    elif config.tfds or config.text_tfds or config.audio_tfds:
        raw = (config.tfds or config.text_tfds or config.audio_tfds).split(":")[0].replace("/", "_")
    else:
        raw = config.dataset
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", raw).strip("._-") or "model"
    return name
