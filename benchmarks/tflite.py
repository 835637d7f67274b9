"""TFLite variants of MobileNetV2 (alpha 1.0 at 224 px, alpha 0.35 at 96 px): size, latency, parity.

Each backbone gets a cats-vs-dogs head trained on cached features (frozen
phase only), is exported, converted to every variant and checked against
the Keras model on held-out images. Prints one table per model and writes JSON.

  python benchmarks/tflite.py
"""

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import keras
import tensorflow as tf
from absl import app, flags, logging

from tl_keras.vision import data as data_lib
from tl_keras.vision import tflite
from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import DataSettings, settings_from
from tl_keras.run import run_experiment

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"

flags.DEFINE_string("image_dir", str(ASSETS / "cats_and_dogs_filtered" / "train"), "Class-per-folder images.")
flags.DEFINE_string("weights_dir", str(ASSETS / "weights"), "Folder with the MobileNetV2 no-top weights files.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "tflite.json"), "JSON results file.")
FLAGS = flags.FLAGS

MODELS = [
    ("mobilenet_v2 1.0 @224", 1.0, 224, "mobilenet_v2_1.0_224_deq_no_top.weights.h5"),
    ("mobilenet_v2 0.35 @96", 0.35, 96, "mobilenet_v2_0.35_224_no_top.weights.h5"),
]


def main(argv):
    del argv
    if not Path(FLAGS.image_dir).is_dir():
        sys.exit(f"skipped: {FLAGS.image_dir} not found (the shared assets are absent); pass --image_dir")
    logging.set_verbosity(logging.WARNING)
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__},
        "models": [],
    }
    for title, alpha, size, weights_file in MODELS:
        weights = Path(FLAGS.weights_dir) / weights_file
        if not weights.is_file():
            print(f"skipped {title}: {weights} not found")
            continue
        with tempfile.TemporaryDirectory() as work:
            config = RunConfig(
                image_dir=FLAGS.image_dir, backbone="mobilenet_v2", weights=str(weights), alpha=alpha, image_size=size,
                frozen_epochs=5, fine_tune_epochs=0, validation_fraction=0.1, test_fraction=0.1, compare_scratch=False,
                verbose=0, run_dir=f"{work}/run", export_dir=f"{work}/saved_models", name="cats_dogs",
            )
            summary = run_experiment(config)
            splits = data_lib.load_data(settings_from(DataSettings, config), config.run_dir)
            held = [(x.numpy(), y.numpy()) for x, y in data_lib.make_batches(splits.test, size, 64, cache="none")]
            images = tf.concat([h[0] for h in held], 0).numpy()
            labels = tf.concat([h[1] for h in held], 0).numpy()
            train = [(x.numpy(), y.numpy()) for x, y in data_lib.make_batches(splits.train, size, 64, cache="none")]
            representative = tflite.representative_sample(
                tf.concat([t[0] for t in train], 0).numpy(), tf.concat([t[1] for t in train], 0).numpy(), 200
            )
            report = tflite.export_tflite(
                summary["export"], f"{work}/tflite", images, labels, summary["classes"], representative=representative
            )
        print(
            f"\n{title}: head trained on cached features, test accuracy {summary['transfer_accuracy']:.3f}, {len(labels)} held-out images"
        )
        print(tflite.format_report(report))
        for row in report["variants"]:
            row.pop("file", None)
        results["models"].append({"model": title, "keras_test_accuracy": summary["transfer_accuracy"], "report": report})
    Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
    Path(FLAGS.output).write_text(json.dumps(results, indent=2))
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
