"""Frozen phase: plain `model.fit` on images vs training the head on cached features.

Same model, same data, same epochs. Also times the input pipeline alone
against the model's step rate, to show whether the pipeline is the
bottleneck. Prints a table and writes JSON.

  python benchmarks/frozen_phase.py                      # cats vs dogs from ../shared/assets
  python benchmarks/frozen_phase.py --image_dir=/data/x --weights=imagenet
"""

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
from tl_keras.training import features as features_lib
from tl_keras.vision.backbones import load_backbone
from tl_keras.models.builders import compile_classifier
from tl_keras.vision.classifier import build_classifier
from tl_keras.config.run_config import RunConfig
from tl_keras.training.two_phase import train_two_phase

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"

flags.DEFINE_string(
    "image_dir", str(ASSETS / "cats_and_dogs_filtered" / "train"), "Class-per-folder images (the validation split is carved from them)."
)
flags.DEFINE_string("backbone", "mobilenet_v2", "Backbone name.")
flags.DEFINE_string("weights", str(ASSETS / "weights" / "mobilenet_v2_1.0_224_deq_no_top.weights.h5"), "Backbone weights.")
flags.DEFINE_float("alpha", 1.0, "MobileNet width.")
flags.DEFINE_integer("image_size", 160, "Input side.")
flags.DEFINE_integer("epochs", 10, "Frozen epochs for both arms.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_bool("plain", True, "Also time plain fit (the slow arm); off to iterate on the cached path.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "frozen_phase.json"), "JSON results file.")
FLAGS = flags.FLAGS


def _images_per_second(dataset, count):
    started = time.perf_counter()
    for _ in dataset:
        pass
    return count / (time.perf_counter() - started)


def main(argv):
    del argv
    if not Path(FLAGS.image_dir).is_dir():
        sys.exit(f"skipped: {FLAGS.image_dir} not found (the shared assets are absent); pass --image_dir")
    if FLAGS.weights not in ("imagenet", "none") and not Path(FLAGS.weights).is_file():
        sys.exit(f"skipped: weights file {FLAGS.weights} not found; pass --weights")
    logging.set_verbosity(logging.WARNING)
    keras.utils.set_random_seed(0)
    splits = data_lib.load_image_folder(FLAGS.image_dir, validation_fraction=0.25, test_fraction=0.0, seed=0)
    n_train, n_val = splits.size("train"), splits.size("validation")
    size, batch = FLAGS.image_size, FLAGS.batch_size
    train = data_lib.make_batches(splits.train, size, batch, shuffle=True, seed=0, num_examples=n_train)
    validation = data_lib.make_batches(splits.validation, size, batch, num_examples=n_val)
    pipeline_cold = _images_per_second(train, n_train)  # decode + resize, filling the cache
    pipeline_warm = _images_per_second(train, n_train)  # from the in-memory cache
    _images_per_second(validation, n_val)

    def fresh_model():
        keras.utils.set_random_seed(0)
        weights = None if FLAGS.weights == "none" else FLAGS.weights
        backbone = load_backbone(FLAGS.backbone, weights, image_size=size, alpha=FLAGS.alpha)
        return backbone, build_classifier(backbone, len(splits.class_names))

    # One forward pass of the frozen model over train + validation.
    backbone, model = fresh_model()
    extractor = features_lib.feature_extractor(model)
    extractor.predict(train.take(1), verbose=0)  # build and trace outside the timing
    started = time.perf_counter()
    extractor.predict(train, verbose=0)
    extractor.predict(validation, verbose=0)
    forward_pass = time.perf_counter() - started

    config = RunConfig(frozen_epochs=FLAGS.epochs, fine_tune_epochs=0, batch_size=batch, early_stopping_patience=0, verbose=0, seed=0)

    # Plain fit on images.
    plain_seconds, plain_accuracy, model_step_rate = float("nan"), float("nan"), float("nan")
    if FLAGS.plain:
        backbone, model = fresh_model()
        backbone.layer.trainable = False
        compile_classifier(model, config.optimizer, config.learning_rate)
        started = time.perf_counter()
        history = model.fit(train, validation_data=validation, epochs=FLAGS.epochs, verbose=0)
        plain_seconds = time.perf_counter() - started
        plain_accuracy = max(history.history["val_accuracy"])
        model_step_rate = FLAGS.epochs * (n_train + n_val) / plain_seconds

    # Cached features (the tl_keras path).
    backbone, model = fresh_model()
    with tempfile.TemporaryDirectory() as run_dir:
        result = train_two_phase(model, backbone.layer, train, validation, train_settings(config), run_dir, train_examples=n_train)
    cached_seconds = result.phases[0].seconds
    caching_seconds = result.phases[0].caching_seconds
    cached_accuracy = result.kept_value

    rows = {
        "images": {"train": n_train, "validation": n_val},
        "model": f"{FLAGS.backbone} alpha {FLAGS.alpha} at {size}px, weights {Path(FLAGS.weights).name}",
        "epochs": FLAGS.epochs,
        "one_forward_pass_s": round(forward_pass, 2),
        "plain_fit_s": round(plain_seconds, 2),
        "cached_features_s": round(cached_seconds, 2),
        "of_which_caching_s": round(caching_seconds, 2),
        "cached_over_forward_pass": round(cached_seconds / forward_pass, 3),
        "speedup_plain_over_cached": round(plain_seconds / cached_seconds, 2),
        "best_val_accuracy": {"plain_fit": round(plain_accuracy, 4), "cached_features": round(cached_accuracy, 4)},
        "pipeline_images_per_s": {"decode_and_resize": round(pipeline_cold, 1), "from_cache": round(pipeline_warm, 1)},
        "model_images_per_s_in_plain_fit": round(model_step_rate, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
    }
    print(f"\nFrozen phase, {rows['model']}, {n_train} train / {n_val} validation images, {FLAGS.epochs} epochs")
    print(f"{'path':<34}{'seconds':>10}{'best val acc':>14}")
    print(f"{'one forward pass (train+val)':<34}{forward_pass:>10.1f}{'':>14}")
    print(f"{'plain model.fit on images':<34}{plain_seconds:>10.1f}{plain_accuracy:>14.4f}")
    print(f"{'tl_keras cached features':<34}{cached_seconds:>10.1f}{cached_accuracy:>14.4f}")
    print(f"{'  of which caching the features':<34}{caching_seconds:>10.1f}")
    print(f"cached / one forward pass = {rows['cached_over_forward_pass']:.2f}x (target <= 1.3x); "
          f"plain / cached = {rows['speedup_plain_over_cached']:.1f}x (target >= 5x)")
    print(f"input pipeline: {pipeline_cold:.0f} images/s decoding, {pipeline_warm:.0f} images/s from cache; "
          f"model in plain fit: {model_step_rate:.0f} images/s")
    Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
    Path(FLAGS.output).write_text(json.dumps(rows, indent=2))
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
