"""The TensorFlow transfer-learning tutorial's table, reproduced offline, against tl_keras's own recipe.

Data: the tutorial's `cats_and_dogs_filtered` (train/ trains; validation/
gives 800 validation and 200 test images, as the tutorial splits it).
Backbone: MobileNetV2 with real ImageNet weights loaded by `weights=PATH`.
Rows:

* tutorial: its recipe exactly: alpha 1.0 at 160 px, flip + rotation 0.2,
  dropout 0.2, 10 frozen epochs at Adam 1e-4 (plain fit on images), then
  layers from 100 up unfrozen for 10 epochs at RMSprop 1e-5. Its accuracy
  is the last epoch's, as the tutorial reports it.
* tl_keras: our recipe on the same network: frozen phase on cached
  features, a short cosine fine-tune, the better phase kept.
* mobile: the same recipe on alpha 0.35 at 96 px, the fast phone option.
* scratch: the alpha 1.0 network from random weights, given the tl_keras
  row's wall time.

Rows 1-3 go through `run_experiment`, the code path of experiments/train.py.
Prints one table and writes JSON.

  python benchmarks/reproduce_tutorial.py
  python benchmarks/reproduce_tutorial.py --rows=tl_keras,mobile   # skip the slow ones
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import keras
import tensorflow as tf
from absl import app, flags, logging

from tl_keras.training.run_steps import train_settings
from tl_keras.vision import data as data_lib
from tl_keras.vision.augment import build_augmentation
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.config.run_config import RunConfig
from tl_keras.config.run_config import recipe_config
from tl_keras.config.settings import AugmentSettings, settings_from
from tl_keras.run import run_experiment
from tl_keras.training.callbacks import TimeBudget
from tl_keras.training.two_phase import train_from_scratch

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
PUBLISHED = {"frozen": 0.96, "fine_tune": 0.98}
ROWS = ("tutorial", "tl_keras", "mobile", "scratch")

flags.DEFINE_string(
    "data_dir", str(ASSETS / "cats_and_dogs_filtered"), "The tutorial's dataset: train/ and validation/, one folder per class."
)
flags.DEFINE_string(
    "weights", str(ASSETS / "weights" / "mobilenet_v2_1.0_224_deq_no_top.weights.h5"), "MobileNetV2 alpha 1.0 ImageNet weights, no top."
)
flags.DEFINE_string(
    "mobile_weights",
    str(ASSETS / "weights" / "mobilenet_v2_0.35_224_no_top.weights.h5"),
    "MobileNetV2 alpha 0.35 ImageNet weights, no top.",
)
flags.DEFINE_list("rows", list(ROWS), f"Rows to run, from {', '.join(ROWS)}.")
flags.DEFINE_integer("frozen_epochs", 15, "tl_keras recipe: frozen epochs (on cached features, so cheap).")
flags.DEFINE_integer("fine_tune_epochs", 3, "tl_keras recipe: fine-tuning epochs.")
flags.DEFINE_float("fine_tune_learning_rate", 3e-5, "tl_keras recipe: peak fine-tuning rate (cosine to 0).")
flags.DEFINE_string("run_root", "", "Where the runs go; empty is a temporary folder removed at the end.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "reproduce_tutorial.json"), "JSON results file.")
FLAGS = flags.FLAGS


def tutorial_config(data_dir: Path, weights: str, **overrides) -> RunConfig:
    """The `tutorial` recipe on the tutorial's data; `overrides` are explicit, so the recipe never resets them."""
    settings = dict(
        image_dir=str(data_dir / "train"), validation_dir=str(data_dir / "validation"), test_fraction=0.2, weights=weights,
        compare_scratch=False, export=False, verbose=0, seed=0, name="tutorial",
    )
    return recipe_config("tutorial", **{**settings, **overrides})


def tl_keras_config(data_dir: Path, weights: str, alpha: float = 1.0, image_size: int = 160, name: str = "tl_keras") -> RunConfig:
    return tutorial_config(
        data_dir, weights,
        alpha=alpha, image_size=image_size, name=name,
        flip="horizontal", rotation_degrees=10.0,
        frozen_epochs=FLAGS.frozen_epochs, learning_rate=1e-3, feature_cache="auto", feature_cache_augment_passes=2,
        fine_tune_epochs=FLAGS.fine_tune_epochs, fine_tune_optimizer="adam", fine_tune_learning_rate=FLAGS.fine_tune_learning_rate,
        lr_schedule="cosine", early_stopping_patience=5,
    )


def _phase_row(history: dict, name: str, train_images: int) -> dict:
    phase = next((p for p in history["phases"] if p["name"] == name), None)
    if phase is None:
        return {}
    val = phase["history"].get("val_accuracy", [])
    return {
        "epochs": phase["epochs_run"],
        "last_val_accuracy": val[-1] if val else None,
        "best_val_accuracy": max(val) if val else None,
        "seconds": round(phase["seconds"], 1),
        "train_images_per_s": round(phase["epochs_run"] * train_images / phase["seconds"], 1) if phase["seconds"] else None,
    }


def run_recipe(config: RunConfig, run_root: Path, report_last: bool) -> dict:
    config = dataclasses.replace(config, run_dir=str(run_root / config.name), overwrite=True)
    started = time.perf_counter()
    summary = run_experiment(config)
    total = time.perf_counter() - started
    history = json.loads((Path(summary["run_dir"]) / "history.json").read_text())
    train_images = sum(summary["counts"]["train"].values())
    row = {
        "recipe": config.name,
        "model": f"mobilenet_v2 {config.alpha} @{config.image_size}",
        "frozen": _phase_row(history, "frozen", train_images),
        "fine_tune": _phase_row(history, "fine_tune", train_images),
        "kept_phase": summary["kept_phase"],
        "test_accuracy": summary["transfer_accuracy"],
        "train_seconds": round(summary["timings"]["transfer_train_s"], 1),
        "total_seconds": round(total, 1),
        "counts": {k: sum(v.values()) for k, v in summary["counts"].items()},
    }
    # The tutorial reports the last epoch; tl_keras keeps the best epoch of the better phase.
    key = "last_val_accuracy" if report_last else "best_val_accuracy"
    row["reported_val_accuracy"] = {p: row[p].get(key) for p in ("frozen", "fine_tune")}
    return row


def run_scratch(data_dir: Path, seconds: float, run_root: Path) -> dict:
    """The alpha 1.0 network from random weights, trained end to end for `seconds`."""
    config = dataclasses.replace(tutorial_config(data_dir, "none"), weights="none", learning_rate=1e-3, name="scratch").validate()
    keras.utils.set_random_seed(config.seed)
    splits = data_lib.load_image_folder(
        config.image_dir, test_fraction=config.test_fraction, seed=config.seed, validation_dir=config.validation_dir
    )
    size = config.image_size
    train = data_lib.epoch_batches(
        splits.train, size, config.batch_size, seed=config.seed, num_examples=splits.size("train"), indexed=splits.indexed.get("train")
    )
    validation = data_lib.make_batches(splits.validation, size, config.batch_size, num_examples=splits.size("validation"))
    test = data_lib.make_batches(splits.test, size, config.batch_size, num_examples=splits.size("test"))
    backbone = load_backbone("mobilenet_v2", None, image_size=size, alpha=1.0)
    model = build_classifier(backbone, len(splits.class_names), dropout=config.dropout, freeze_batch_norm=False, name="scratch")
    started = time.perf_counter()
    result = train_from_scratch(
        model, train, validation, train_settings(config), run_root / "scratch", epochs=1000,
        augmentation=build_augmentation(settings_from(AugmentSettings, config)), extra_callbacks=[TimeBudget(seconds)],
    )
    spent = time.perf_counter() - started
    _, test_accuracy = model.evaluate(test, verbose=0)
    phase = result.phases[0]
    val = phase.history.get("val_accuracy", [])
    return {
        "recipe": "scratch",
        "model": f"mobilenet_v2 1.0 @{size}, random init",
        "scratch": {"epochs": phase.epochs_run, "best_val_accuracy": max(val) if val else None, "seconds": round(spent, 1),
                    "train_images_per_s": round(phase.epochs_run * splits.size("train") / spent, 1)},
        "reported_val_accuracy": {"frozen": None, "fine_tune": max(val) if val else None},
        "test_accuracy": float(test_accuracy),
        "train_seconds": round(spent, 1),
        "total_seconds": round(spent, 1),
    }


def format_table(rows: list[dict]) -> str:
    lines = [
        f"{'recipe':<10}{'model':<30}{'val frozen':>11}{'s':>7}{'val tuned':>11}{'s':>7}{'img/s':>8}{'train s':>9}{'test':>7}",
        f"{'published':<10}{'tutorial, TF docs':<30}{PUBLISHED['frozen']:>11.3f}{'':>7}{PUBLISHED['fine_tune']:>11.3f}",
    ]
    for row in rows:
        frozen, tuned = row.get("frozen", {}), row.get("fine_tune", row.get("scratch", {}))
        acc = row["reported_val_accuracy"]

        def cell(value, width=11, fmt=".3f"):
            return f"{value:>{width}{fmt}}" if value is not None else f"{'-':>{width}}"

        lines.append(
            f"{row['recipe']:<10}{row['model']:<30}{cell(acc['frozen'])}{cell(frozen.get('seconds'), 7, '.0f')}"
            f"{cell(acc['fine_tune'])}{cell(tuned.get('seconds'), 7, '.0f')}{cell(tuned.get('train_images_per_s'), 8, '.0f')}"
            f"{row['train_seconds']:>9.0f}{row['test_accuracy']:>7.3f}"
        )
    return "\n".join(lines)


def main(argv):
    del argv
    data_dir = Path(FLAGS.data_dir)
    unknown = sorted(set(FLAGS.rows) - set(ROWS))
    if unknown:
        sys.exit(f"error: --rows: unknown {unknown}; known: {', '.join(ROWS)}")
    if not (data_dir / "train").is_dir() or not (data_dir / "validation").is_dir():
        sys.exit(f"skipped: {data_dir}/train and /validation not found (the shared assets are absent); pass --data_dir")
    for flag in ("weights", "mobile_weights"):
        if not Path(getattr(FLAGS, flag)).is_file():
            sys.exit(f"skipped: --{flag} {getattr(FLAGS, flag)} not found (the shared assets are absent)")
    logging.set_verbosity(logging.WARNING)
    temporary = tempfile.TemporaryDirectory() if not FLAGS.run_root else None
    run_root = Path(FLAGS.run_root or temporary.name)
    rows = []
    if "tutorial" in FLAGS.rows:
        rows.append(run_recipe(tutorial_config(data_dir, FLAGS.weights), run_root, report_last=True))
        print(format_table(rows), flush=True)
    ours = None
    if "tl_keras" in FLAGS.rows:
        ours = run_recipe(tl_keras_config(data_dir, FLAGS.weights), run_root, report_last=False)
        rows.append(ours)
        print(format_table(rows), flush=True)
    if "mobile" in FLAGS.rows:
        rows.append(
            run_recipe(
                tl_keras_config(data_dir, FLAGS.mobile_weights, alpha=0.35, image_size=96, name="mobile"), run_root, report_last=False
            )
        )
        print(format_table(rows), flush=True)
    if "scratch" in FLAGS.rows:
        budget = ours["train_seconds"] if ours else 300.0
        rows.append(run_scratch(data_dir, budget, run_root))

    result = {
        "published": PUBLISHED,
        "rows": rows,
        "flags": {
            "frozen_epochs": FLAGS.frozen_epochs,
            "fine_tune_epochs": FLAGS.fine_tune_epochs,
            "fine_tune_learning_rate": FLAGS.fine_tune_learning_rate,
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    tutorial = next((r for r in rows if r["recipe"] == "tutorial"), None)
    if tutorial and ours:
        result["tl_keras_over_tutorial_train_time"] = round(ours["train_seconds"] / tutorial["train_seconds"], 3)
    print()
    print(format_table(rows))
    if "tl_keras_over_tutorial_train_time" in result:
        print(f"tl_keras recipe train time / tutorial recipe: {result['tl_keras_over_tutorial_train_time']:.2f} (target <= 0.5); "
              f"tl_keras fine-tuned val accuracy {ours['reported_val_accuracy']['fine_tune']:.4f} (target >= 0.975)")
    Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
    Path(FLAGS.output).write_text(json.dumps(result, indent=2))
    print(f"wrote {FLAGS.output}")
    if temporary:
        temporary.cleanup()


if __name__ == "__main__":
    app.run(main)
