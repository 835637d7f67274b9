"""Which temperature rule helps on held-out photos, and whether the frozen phase's Keras epochs after the logistic fit help.

Trains the embedded recipe's settings (MobileNetV2 0.35 at 160 px; the
frozen phase on cached features, then 2 epochs of layers 100+) once per
seed and data set with calibration off, then scores on each run's test
photos:

- each rule for choosing the head's temperature from the validation
  probabilities (never, always the validation fit, the halves check, the
  likelihood-ratio test, both checks together): expected calibration error
  and negative log-likelihood, mean +- std, and on how many runs each rule
  made them worse than T = 1;
- the frozen head as the converged logistic regression left it, against
  the frozen head the phase kept after its Keras epochs (test accuracy and
  NLL), and how often the phase kept an epoch over the fit.

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
from tl_keras.training import features as features_lib
from tl_keras.vision.augment import build_augmentation, with_augmentation
from tl_keras.config.run_config import recipe_config
from tl_keras.evaluation.metrics import predict_dataset
from tl_keras.export.reload import load_classifier
from tl_keras.run import load_splits, prepare_batches, run_experiment
from tl_keras.io.run_folder import RunFolder
from tl_keras.config.settings import AugmentSettings, settings_from
from tl_keras.training.two_phase import FROZEN, load_weights_quietly

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
    _, decision = calibration.choose_temperature(*validation, seed=seed)
    fitted = decision["fitted_temperature"]
    passes_ratio = decision["likelihood_ratio"] > decision["critical_value"]
    halves = all(decision["halves_improved"])
    return {"never (T = 1)": 1.0, "always (validation fit)": fitted, "halves check": fitted if halves else 1.0,
            "likelihood ratio": fitted if passes_ratio else 1.0, "ratio and halves": fitted if passes_ratio and halves else 1.0}


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


def frozen_heads(model_path: str, run_dir: Path, config, test_batches) -> dict:
    """Test scores of the frozen phase's kept head and of the logistic fit it started from."""
    folder = RunFolder(run_dir)
    model = load_classifier(model_path)
    # The phase's checkpoint holds the weights of the model `fit` ran: the classifier behind the run's augmentation.
    trainer = with_augmentation(model, build_augmentation(settings_from(AugmentSettings, config)))
    load_weights_quietly(trainer, str(folder.checkpoint(FROZEN)))
    kept = scores(*predict_dataset(model, test_batches))
    load_weights_quietly(features_lib.head_on_features(model), str(folder.checkpoint("frozen_head.logistic")))
    return {"kept_frozen": kept, "logistic_fit": scores(*predict_dataset(model, test_batches))}


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
    frozen = summary["phases"].get("frozen", {})
    row = {"dataset": dataset, "seed": seed, "validation_images": int(len(validation[1])), "test_images": int(len(test[1])),
           "kept_phase": summary["kept_phase"], "frozen_kept_epoch_over_fit": int(frozen.get("best_epoch") or 0) > 0,
           **scores(*test), "seconds": round(time.perf_counter() - started, 1), "rules": {},
           "frozen_heads": frozen_heads(summary["model_keras"], run_dir, config.resolved(), batches.held_out)}
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


def frozen_table(rows: list[dict]) -> dict:
    out = {"runs_phase_kept_an_epoch_over_the_fit": int(sum(row["frozen_kept_epoch_over_fit"] for row in rows))}
    for head in ("logistic_fit", "kept_frozen"):
        for key in ("accuracy", "nll"):
            values = np.array([row["frozen_heads"][head][key] for row in rows])
            out[f"{head}_{key}_mean"], out[f"{head}_{key}_std"] = float(values.mean()), float(values.std())
    return out


def print_tables(dataset: str, rows: list[dict], table: dict, frozen: dict) -> None:
    accuracy = [r["accuracy"] for r in rows]
    print(f"\n{dataset}: {len(rows)} seeds, {rows[0]['validation_images']} validation / {rows[0]['test_images']} test images; "
          f"test accuracy {np.mean(accuracy):.3f} +- {np.std(accuracy):.3f}")
    print(f"{'rule':<26}{'T':>14}{'test ECE':>18}{'test NLL':>18}{'NLL worse':>11}{'ECE worse':>11}")
    for name, t in table.items():
        print(f"{name:<26}{t['temperature_mean']:>8.2f} +- {t['temperature_std']:.2f}{t['test_ece_mean']:>11.4f} +- {t['test_ece_std']:.4f}"
              f"{t['test_nll_mean']:>11.4f} +- {t['test_nll_std']:.4f}{t['runs_nll_worse_than_never']:>8}/{len(rows)}"
              f"{t['runs_ece_worse_than_never']:>8}/{len(rows)}")
    print(f"frozen head on test: logistic fit {frozen['logistic_fit_accuracy_mean']:.3f} +- {frozen['logistic_fit_accuracy_std']:.3f} "
          f"(NLL {frozen['logistic_fit_nll_mean']:.3f}), after the Keras epochs {frozen['kept_frozen_accuracy_mean']:.3f} +- "
          f"{frozen['kept_frozen_accuracy_std']:.3f} (NLL {frozen['kept_frozen_nll_mean']:.3f}); an epoch kept over the fit on "
          f"{frozen['runs_phase_kept_an_epoch_over_the_fit']}/{len(rows)} runs")


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
            table, frozen = rule_table(rows), frozen_table(rows)
            print_tables(dataset, rows, table, frozen)
            results[dataset] = {"seeds": [int(s) for s in FLAGS.seeds], "rules": table, "frozen_phase": frozen, "runs": rows}
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps({"recipe": "embedded", "datasets": results, "machine": platform.platform()}, indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)
