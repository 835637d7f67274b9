"""Which temperature rule helps on held-out photos: never, always, the checks alone and together, and the library's rule.

Trains the embedded recipe's settings (MobileNetV2 0.35 at 160 px; the
frozen phase on cached features, then 2 epochs of layers 100+) once per
seed and data set with calibration off, then scores each rule for choosing
the head's temperature from the validation probabilities on the run's test
photos: expected calibration error and negative log-likelihood, mean +-
std, and on how many runs each rule made them worse than T = 1. The rule
`RunConfig(calibrate=True)` applies is `calibration.choose_temperature`
("default" below).

(At commit dae7f72 this script also compared the frozen phase's logistic
fit with the head its Keras epochs kept after it; those epochs are gone
since, and that run's results are in
benchmarks/results/calibration_before_fit_only.json.)

Data sets (`DATASETS`): `embedded` (the bundled flowers: 40 labels per class
train, 20 validate, 40 test), `cats_vs_dogs` (../shared/assets: 100 photos
per class from train/, the 1,000 of validation/ half validation, half test)
and `tf_flowers` (../shared/assets: 600 photos, 5 classes, 40% train, 20%
validation, 40% test).

  python benchmarks/calibration.py --datasets=embedded --seeds=0,1,2,3,4,5,6,7,42
  python benchmarks/calibration.py --datasets=cats_vs_dogs,tf_flowers --seeds=0,1,2,3,4

Prints a table per data set and writes benchmarks/results/calibration.json
(rows of the other data sets already in it are kept).
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from tl_keras.evaluation import calibration
from tl_keras.config.run_config import recipe_config
from tl_keras.evaluation.metrics import predict_dataset
from tl_keras.export.reload import load_classifier
from tl_keras.run import run_experiment
from tl_keras.vision.run import load_splits, prepare_batches

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
WEIGHTS_0_35 = ASSETS / "weights" / "mobilenet_v2_0.35_224_no_top.weights.h5"
DATASETS = {
    "embedded": {},
    "cats_vs_dogs": {"image_dir": "cats_and_dogs_filtered/train", "validation_dir": "cats_and_dogs_filtered/validation",
                     "test_fraction": 0.5, "max_train_per_class": 100},
    "tf_flowers": {"image_dir": "tf_flowers", "validation_fraction": 0.2, "test_fraction": 0.4},
}
flags.DEFINE_list("datasets", ["embedded"], f"Data sets: {', '.join(DATASETS)}.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4", "5", "6", "7", "42"],
                  "Seeds; each changes the split, the initialisation and the batch order (42: the default job's).")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "calibration.json"), "JSON results file.")
FLAGS = flags.FLAGS


def rules(validation: tuple[np.ndarray, np.ndarray], seed: int) -> dict[str, float]:
    """The temperature each rule picks from the validation probabilities."""
    chosen, decision = calibration.choose_temperature(*validation, seed=seed)
    fitted = decision["fitted_temperature"]
    passes_ratio = decision["likelihood_ratio"] > decision["critical_value"]
    halves = all(decision["halves_improved"])
    return {"never (T = 1)": 1.0, "always (validation fit)": fitted, "halves check": fitted if halves else 1.0,
            "likelihood ratio": fitted if passes_ratio else 1.0, "ratio and halves": fitted if passes_ratio and halves else 1.0,
            f"default (>= {calibration.MIN_CALIBRATION_EXAMPLES}, both)": chosen}


def dataset_settings(dataset: str) -> dict:
    settings = dict(DATASETS[dataset])
    if not settings:
        return settings
    if not ASSETS.is_dir():
        sys.exit(f"error: {ASSETS} not found; the {dataset} rows need ../shared/assets")
    for key in ("image_dir", "validation_dir"):
        if key in settings:
            settings[key] = str(ASSETS / settings[key])
    return {**settings, "weights": str(WEIGHTS_0_35)}


def scores(probabilities: np.ndarray, labels: np.ndarray) -> dict:
    return {"accuracy": float(np.mean(probabilities.argmax(1) == labels)),
            "nll": calibration.negative_log_likelihood(probabilities, labels),
            "ece": calibration.expected_calibration_error(probabilities, labels)}


def one_run(dataset: str, seed: int, root: Path) -> dict:
    config = recipe_config("embedded", **dataset_settings(dataset), seed=seed, verbose=0, export=False, compare_scratch=False,
                           calibrate=False, run_dir=str(root / f"{dataset}_{seed}"), overwrite=True, name=f"calibration_{dataset}")
    started = time.perf_counter()
    summary = run_experiment(config)
    run_dir = Path(summary["run_dir"])
    model = load_classifier(summary["model_keras"])
    splits = load_splits(config.resolved(), run_dir)
    batches = prepare_batches(config.resolved(), splits, int(summary["image_size"]), run_dir)
    validation = predict_dataset(model, batches.validation)
    test = predict_dataset(model, batches.held_out)
    row = {"dataset": dataset, "seed": seed, "validation_images": int(len(validation[1])), "test_images": int(len(test[1])),
           "kept_phase": summary["kept_phase"], **scores(*test), "seconds": round(time.perf_counter() - started, 1), "rules": {}}
    for name, temperature in rules(validation, seed).items():
        scaled = calibration.apply_temperature(test[0], temperature)
        row["rules"][name] = {"temperature": float(temperature), "test_ece": calibration.expected_calibration_error(scaled, test[1]),
                              "test_nll": calibration.negative_log_likelihood(scaled, test[1])}
    return row


def rule_table(rows: list[dict]) -> dict:
    names = list(rows[0]["rules"])
    never = {key: np.array([row["rules"][names[0]][key] for row in rows]) for key in ("test_ece", "test_nll")}
    table = {}
    for name in names:
        values = {key: np.array([row["rules"][name][key] for row in rows]) for key in ("temperature", "test_ece", "test_nll")}
        table[name] = {
            **{f"{key}_mean": float(v.mean()) for key, v in values.items()},
            **{f"{key}_std": float(v.std()) for key, v in values.items()},
            "runs_nll_worse_than_never": int(np.sum(values["test_nll"] > never["test_nll"] + 1e-9)),
            "runs_ece_worse_than_never": int(np.sum(values["test_ece"] > never["test_ece"] + 1e-9)),
        }
    return table


def print_tables(dataset: str, rows: list[dict], table: dict) -> None:
    accuracy = [r["accuracy"] for r in rows]
    print(f"\n{dataset}: {len(rows)} seeds, {rows[0]['validation_images']} validation / {rows[0]['test_images']} test images; "
          f"test accuracy {np.mean(accuracy):.3f} +- {np.std(accuracy):.3f}")
    print(f"{'rule':<30}{'T':>14}{'test ECE':>18}{'test NLL':>18}{'NLL worse':>11}{'ECE worse':>11}")
    for name, t in table.items():
        print(f"{name:<30}{t['temperature_mean']:>8.2f} +- {t['temperature_std']:.2f}{t['test_ece_mean']:>11.4f} +- {t['test_ece_std']:.4f}"
              f"{t['test_nll_mean']:>11.4f} +- {t['test_nll_std']:.4f}{t['runs_nll_worse_than_never']:>8}/{len(rows)}"
              f"{t['runs_ece_worse_than_never']:>8}/{len(rows)}")


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.datasets) - set(DATASETS))
    if unknown:
        sys.exit(f"error: --datasets: unknown {unknown}; known: {sorted(DATASETS)}")
    output = Path(FLAGS.output)
    earlier = json.loads(output.read_text()) if output.exists() else {}
    results = {key: value for key, value in earlier.get("datasets", {}).items() if key not in FLAGS.datasets}
    with tempfile.TemporaryDirectory() as scratch:
        for dataset in FLAGS.datasets:
            rows = [one_run(dataset, int(seed), Path(scratch)) for seed in FLAGS.seeds]
            table = rule_table(rows)
            print_tables(dataset, rows, table)
            results[dataset] = {"seeds": [int(s) for s in FLAGS.seeds], "rules": table, "runs": rows}
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps({"recipe": "embedded", "datasets": results, "machine": platform.platform()}, indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)
