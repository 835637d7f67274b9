"""Fine-tuning throughput: images/s of tl_keras's phase 2 against a bare `model.fit` on the same model, data and batch size.

MobileNetV2 1.0 at 224 px (the shared ImageNet weights), the default
recipe's fine-tuning (its unfreezing, layer-wise rates, callbacks: best-epoch
weights, the per-epoch resume state, early stopping, the NaN guard), on cats
vs dogs photos from ../shared/assets through the run's own input pipeline.
The bare arm is a fresh copy of the same model with the same layers
trainable, compiled with plain Adam, fitted on the same `tf.data` stream
with the same validation set. Each arm runs `--epochs` epochs; only the
last epoch's training time counts (the first traces the step), validation
excluded. Arms alternate over `--rounds` so that the machine's drift hits
both.

  python benchmarks/fine_tune_throughput.py --rounds=3

Prints a table and writes benchmarks/results/fine_tune_throughput.json.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
from absl import app, flags

from tl_keras.config.run_config import recipe_config
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.training.run_steps import train_settings
from tl_keras.vision.run import load_splits, prepare_batches
from tl_keras.training.two_phase import train_two_phase

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
flags.DEFINE_integer("images", 320, "Training images (half per class); one epoch is images / batch_size steps.")
flags.DEFINE_integer("epochs", 2, "Epochs per arm; the last one is timed.")
flags.DEFINE_integer("rounds", 3, "Alternating rounds of both arms.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "fine_tune_throughput.json"), "JSON results file.")
FLAGS = flags.FLAGS


class EpochTimer(keras.callbacks.Callback):
    """Training seconds of each epoch: from its start to its last batch, validation left out."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self._last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(self._last - self._start)


def config_for(run_dir: Path):
    root = ASSETS / "cats_and_dogs_filtered" / "train"
    if not root.is_dir():
        sys.exit(f"error: {root} not found; this benchmark needs ../shared/assets")
    return recipe_config(
        "default", image_dir=str(root), weights=str(ASSETS / "weights" / "mobilenet_v2_1.0_224_deq_no_top.weights.h5"),
        max_train_per_class=FLAGS.images // 2, validation_fraction=0.05, test_fraction=0.0, frozen_epochs=0,
        fine_tune_epochs=FLAGS.epochs, fine_tune_min_steps=0, early_stopping_patience=0, verbose=0, export=False,
        compare_scratch=False, run_dir=str(run_dir), overwrite=True, name="throughput",
    ).resolved()


def model_for(config):
    keras.utils.set_random_seed(0)
    backbone = load_backbone(config.backbone, config.weights, image_size=config.image_size, alpha=config.alpha)
    return backbone, build_classifier(backbone, 2, name="throughput")


def ours(config, splits, run_dir: Path) -> float:
    """Images/s of the last epoch of phase 2 as `train_two_phase` runs it."""
    backbone, model = model_for(config)
    batches = prepare_batches(config, splits, backbone.input_size, run_dir)
    timer = EpochTimer()
    train_two_phase(model, backbone.layer, batches.train, batches.validation, train_settings(config), run_dir,
                    train_examples=splits.size("train"), extra_callbacks=[timer])
    return batches.train.steps_per_epoch * config.batch_size / timer.seconds[-1]


def bare(config, splits, run_dir: Path) -> float:
    """Images/s of the last epoch of a plain `fit` of the same model, with the same layers trainable, on the same stream."""
    from tl_keras.training.freezing import unfreeze_backbone

    backbone, model = model_for(config)
    unfreeze_backbone(backbone.layer, config.unfreeze)
    batches = prepare_batches(config, splits, backbone.input_size, run_dir)
    model.compile(optimizer=keras.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(batches.train.stream(0), steps_per_epoch=batches.train.steps_per_epoch, epochs=FLAGS.epochs,
              validation_data=batches.validation, callbacks=[timer], verbose=0, shuffle=False)
    return batches.train.steps_per_epoch * config.batch_size / timer.seconds[-1]


def main(argv):
    del argv
    rows = {"tl_keras phase 2": [], "bare model.fit": []}
    with tempfile.TemporaryDirectory() as scratch:
        config = config_for(Path(scratch) / "run")
        splits = load_splits(config, Path(config.run_dir))
        for _ in range(FLAGS.rounds):
            rows["tl_keras phase 2"].append(ours(config, splits, Path(config.run_dir)))
            rows["bare model.fit"].append(bare(config, splits, Path(scratch) / "bare"))
    ratios = [a / b for a, b in zip(rows["tl_keras phase 2"], rows["bare model.fit"])]
    print(f"MobileNetV2 1.0 at 224 px, {splits.size('train')} cats-vs-dogs images, batch {config.batch_size}, "
          f"unfreeze {config.unfreeze}; last of {FLAGS.epochs} epochs timed, {FLAGS.rounds} alternating rounds")
    print(f"{'arm':<20}{'images/s':>20}")
    for name, values in rows.items():
        print(f"{name:<20}{statistics.mean(values):>12.1f} +- {statistics.pstdev(values):.1f}")
    print(f"ratio (ours / bare): {np.mean(ratios):.3f} +- {np.std(ratios):.3f} (per round: {', '.join(f'{r:.3f}' for r in ratios)})")
    Path(FLAGS.output).write_text(json.dumps({
        "model": "mobilenet_v2 alpha 1.0, 224 px", "images": splits.size("train"), "batch_size": config.batch_size,
        "unfreeze": config.unfreeze, "epochs": FLAGS.epochs, "rounds": FLAGS.rounds, "images_per_s": rows, "ratio_per_round": ratios,
        "ratio_mean": float(np.mean(ratios)), "ratio_std": float(np.std(ratios)), "machine": platform.platform(),
    }, indent=2))
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
