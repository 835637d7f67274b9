"""Which temperature rule helps on held-out data: never, always, the validation-halves check, or the likelihood-ratio test.

Trains the embedded recipe (bundled flowers, MobileNetV2 0.35, 40 labels per
class, 20 validation and 40 test photos per class) once per seed with
calibration off, takes the kept model's probabilities on validation and
test, and scores each rule for choosing the head's temperature on the test
photos: expected calibration error and negative log-likelihood, mean +- std
over seeds. A rule earns its place by lowering test NLL and ECE on average;
a validation split of a hundred images is small, so the rule must also not
make them worse on many seeds.

  python benchmarks/calibration.py --seeds=0,1,2,3,4,5,6,7,42

Prints a table and writes benchmarks/results/calibration.json.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from tl_keras import calibration
from tl_keras.config import recipe_config
from tl_keras.evaluation import predict_dataset
from tl_keras.reload import load_classifier
from tl_keras.run import load_splits, prepare_batches, run_experiment

REPO = Path(__file__).resolve().parents[1]
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4", "5", "6", "7", "42"],
                  "Seeds; each changes the split, the initialisation and the batch order (42: the default job's).")
flags.DEFINE_string("recipe", "embedded", "Recipe to train with (its data source).")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "calibration.json"), "JSON results file.")
FLAGS = flags.FLAGS


def rules(validation: tuple[np.ndarray, np.ndarray], seed: int) -> dict[str, float]:
    """The temperature each rule picks from the validation probabilities."""
    chosen, decision = calibration.choose_temperature(*validation, seed=seed)
    fitted = decision["fitted_temperature"]
    return {"never (T = 1)": 1.0, "always (validation fit)": fitted, "halves check": fitted if all(decision["halves_improved"]) else 1.0,
            "likelihood ratio (default)": chosen}


def one_seed(seed: int, root: Path) -> dict:
    config = recipe_config(FLAGS.recipe, seed=seed, verbose=0, export=False, compare_scratch=False, calibrate=False,
                           run_dir=str(root / f"seed_{seed}"), overwrite=True, name="calibration")
    started = time.perf_counter()
    summary = run_experiment(config)
    model = load_classifier(summary["model_keras"])
    splits = load_splits(config.resolved(), Path(summary["run_dir"]))
    batches = prepare_batches(config.resolved(), splits, int(summary["image_size"]), Path(summary["run_dir"]))
    validation = predict_dataset(model, batches.validation)
    test = predict_dataset(model, batches.held_out)
    row = {"seed": seed, "validation_images": int(len(validation[1])), "test_images": int(len(test[1])),
           "accuracy": float(np.mean(test[0].argmax(1) == test[1])), "seconds": round(time.perf_counter() - started, 1), "rules": {}}
    for name, temperature in rules(validation, seed).items():
        scaled = calibration.apply_temperature(test[0], temperature)
        row["rules"][name] = {
            "temperature": float(temperature),
            "test_ece": calibration.expected_calibration_error(scaled, test[1]),
            "test_nll": calibration.negative_log_likelihood(scaled, test[1]),
        }
    return row


def main(argv):
    del argv
    with tempfile.TemporaryDirectory() as scratch:
        rows = [one_seed(int(seed), Path(scratch)) for seed in FLAGS.seeds]
    names = list(rows[0]["rules"])
    table = {}
    for name in names:
        values = {key: np.array([row["rules"][name][key] for row in rows]) for key in ("temperature", "test_ece", "test_nll")}
        never = {key: np.array([row["rules"][names[0]][key] for row in rows]) for key in ("test_ece", "test_nll")}
        table[name] = {
            **{f"{key}_mean": float(v.mean()) for key, v in values.items()},
            **{f"{key}_std": float(v.std()) for key, v in values.items()},
            "seeds_nll_worse_than_never": int(np.sum(values["test_nll"] > never["test_nll"] + 1e-9)),
            "seeds_ece_worse_than_never": int(np.sum(values["test_ece"] > never["test_ece"] + 1e-9)),
        }
    print(f"{FLAGS.recipe} recipe, {len(rows)} seeds, {rows[0]['validation_images']} validation / {rows[0]['test_images']} test images; "
          f"test accuracy {np.mean([r['accuracy'] for r in rows]):.3f} +- {np.std([r['accuracy'] for r in rows]):.3f}")
    print(f"{'rule':<26}{'T':>14}{'test ECE':>18}{'test NLL':>18}{'NLL worse':>11}{'ECE worse':>11}")
    for name, t in table.items():
        print(f"{name:<26}{t['temperature_mean']:>8.2f} +- {t['temperature_std']:.2f}{t['test_ece_mean']:>11.4f} +- {t['test_ece_std']:.4f}"
              f"{t['test_nll_mean']:>11.4f} +- {t['test_nll_std']:.4f}{t['seeds_nll_worse_than_never']:>8}/{len(rows)}"
              f"{t['seeds_ece_worse_than_never']:>8}/{len(rows)}")
    Path(FLAGS.output).parent.mkdir(parents=True, exist_ok=True)
    Path(FLAGS.output).write_text(json.dumps({"recipe": FLAGS.recipe, "seeds": [int(s) for s in FLAGS.seeds], "rules": table, "runs": rows,
                                              "machine": platform.platform()}, indent=2))
    print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
