"""What the evaluation extras measure on real photos: ECE before/after temperature scaling, TTA gain, Grad-CAM time.

Cats vs dogs (the TF tutorial's cats_and_dogs_filtered from ../shared/assets)
with the `default` recipe and the real ImageNet MobileNetV2 1.0 weights:
train/ trains, validation/ is split in half into validation (the temperature
is fitted there) and test (everything below is measured there, 500 images).
Each seed runs `run_experiment`, the code path of experiments/train.py, then
scores the calibrated model.keras with each TTA mode and times Grad-CAM.

  python benchmarks/inspection.py --seeds=0,1,2

Prints a table (mean +- std over seeds) and writes benchmarks/results/inspection.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import app, flags

from tl_keras.vision import data as data_lib
from tl_keras.evaluation.metrics import inference_function
from tl_keras.vision.explain import grad_cam
from tl_keras.config.run_config import recipe_config
from tl_keras.config.settings import DataSettings, settings_from
from tl_keras.export.reload import load_classifier
from tl_keras.run import run_experiment
from tl_keras.vision.tta import TTA_MODES, tta_views

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
WEIGHTS_1_0 = ASSETS / "weights" / "mobilenet_v2_1.0_224_deq_no_top.weights.h5"

flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each changes the split, the initialisation and the batch order.")
flags.DEFINE_string("recipe", "default", "Recipe to train with.")
flags.DEFINE_integer("cam_images", 32, "Test images Grad-CAM is timed on.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "inspection.json"), "JSON results file.")
FLAGS = flags.FLAGS


def _config(seed: int, run_dir: Path):
    root = ASSETS / "cats_and_dogs_filtered"
    if not root.is_dir():
        sys.exit(f"error: {root} not found; this benchmark needs ../shared/assets")
    return recipe_config(
        FLAGS.recipe, image_dir=str(root / "train"), validation_dir=str(root / "validation"), test_fraction=0.5, weights=str(WEIGHTS_1_0),
        seed=seed, verbose=0, export=False, run_dir=str(run_dir), overwrite=True, name="cats_vs_dogs", tta="flip",
    )


def _tta_accuracies(model, batches) -> dict[str, float]:
    """Accuracy of every TTA mode from one set of 10 views per batch (each mode's views are a subset of flip_crops')."""
    predict = inference_function(model)
    subsets = {"none": [0], "flip": [0, 5], "crops": [0, 1, 2, 3, 4], "flip_crops": list(range(10))}
    correct = {mode: 0 for mode in TTA_MODES}
    total = 0
    for images, labels in batches:
        labels = np.asarray(labels).reshape(-1)
        views = np.stack([np.asarray(predict(view)) for view in tta_views(images, "flip_crops")])
        for mode in TTA_MODES:
            correct[mode] += int(np.sum(views[subsets[mode]].mean(axis=0).argmax(1) == labels))
        total += len(labels)
    return {mode: correct[mode] / total for mode in TTA_MODES}


def _grad_cam_ms(model, images: np.ndarray) -> dict[str, float]:
    grad_cam(model, images[:2])  # trace once; a user's second call is what costs this
    grad_cam(model, images[:1])
    started = time.perf_counter()
    grad_cam(model, images)
    batched = (time.perf_counter() - started) * 1000 / len(images)
    started = time.perf_counter()
    for image in images[:8]:
        grad_cam(model, image)
    single = (time.perf_counter() - started) * 1000 / 8
    return {"batched_ms_per_image": batched, "one_at_a_time_ms": single}


def _mean_std(values):
    return [float(np.mean(values)), float(np.std(values))]


def main(argv):
    del argv
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in map(int, FLAGS.seeds):
            config = _config(seed, Path(tmp) / f"seed{seed}")
            summary = run_experiment(config)
            splits = data_lib.load_data(settings_from(DataSettings, config), Path(config.run_dir))
            model = load_classifier(config.run_dir)
            size = summary["image_size"]
            accuracies = _tta_accuracies(model, data_lib.make_batches(splits.test, size, 32))
            sample = np.concatenate(
                [np.asarray(x) for x, _ in data_lib.make_batches(splits.test, size, 32).take(1 + FLAGS.cam_images // 32)]
            )
            timing = _grad_cam_ms(model, sample[: FLAGS.cam_images])
            calibration = summary["calibration"]
            run = {
                "seed": seed, "test_images": splits.size("test"), "temperature": calibration["temperature"],
                "fitted_temperature": calibration.get("fitted_temperature", calibration["temperature"]),
                "temperature_adopted": float(calibration.get("adopted", True)),
                "likelihood_ratio": calibration.get("likelihood_ratio", float("nan")),
                "ece_before": calibration["ece_before"], "ece_after": calibration["ece_after"],
                **{f"accuracy_{mode}": value for mode, value in accuracies.items()},
                **{f"tta_gain_{mode}": accuracies[mode] - accuracies["none"] for mode in TTA_MODES if mode != "none"},
                **{f"grad_cam_{key}": value for key, value in timing.items()},
                "train_s": summary["timings"]["transfer_train_s"],
            }
            runs.append(run)
            print(json.dumps(run), flush=True)
    keys = [k for k in runs[0] if k not in ("seed", "test_images")]
    summary_row = {k: _mean_std([r[k] for r in runs]) for k in keys}
    print(f"\ncats_vs_dogs, recipe {FLAGS.recipe} (MobileNetV2 1.0 @224), {runs[0]['test_images']} test images, seeds {FLAGS.seeds}")
    print(f"{'measure':<34}{'mean +- std':>20}")
    for key in keys:
        mean, std = summary_row[key]
        print(f"{key:<34}{mean:>12.4f} +- {std:.4f}")
    out = Path(FLAGS.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "dataset": "cats_and_dogs_filtered (validation/ halved into validation and test)", "recipe": FLAGS.recipe,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "tensorflow": tf.__version__, "runs": runs, "mean_std": summary_row,
    }, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
