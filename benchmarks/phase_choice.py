"""Which rule should pick the kept phase? Each phase's best weights scored on validation and test, and the rules compared.

With a hundred validation photos, validation accuracy moves in steps of one
photo, so the frozen phase and the fine-tune often tie or differ by one
image, and the rule that breaks the tie decides the reported model. This
runs a recipe (`run_experiment`, the code path of experiments/train.py),
then loads every phase's saved best weights into the finished model and
scores them on the run's own validation and test splits. The rules:

  accuracy     best validation accuracy, the earlier phase wins ties (tl_keras's rule, `--monitor=val_accuracy`)
  acc+loss     best validation accuracy, ties broken by the lower validation loss
  loss         lowest validation loss
  fine_tune    always the last phase

  python benchmarks/phase_choice.py --recipes=embedded --datasets=flowers --seeds=0,1,2,3,4
  python benchmarks/phase_choice.py --recipes=default --datasets=flowers --seeds=0,1,2

Prints a table (test accuracy of each rule's pick, mean +- std over seeds)
and writes benchmarks/results/phase_choice.json. Measured: no rule is
better on both recipes (always fine-tuning gains 0.7 points with the
default's MobileNetV2 1.0 and loses 1.4 with the embedded 0.35), so the
rule stays.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import keras
import numpy as np
from absl import app, flags

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_runs import benchmark_config, replace_rows  # noqa: E402  (the recipes benchmark's settings, so the runs match its rows)

from tl_keras.vision import data as data_lib  # noqa: E402
from tl_keras.models.builders import with_augmentation  # noqa: E402
from tl_keras.vision.augment import build_augmentation  # noqa: E402
from tl_keras.evaluation.calibration import negative_log_likelihood  # noqa: E402
from tl_keras.export.reload import load_classifier  # noqa: E402
from tl_keras.run import run_experiment  # noqa: E402
from tl_keras.io.run_folder import RunFolder  # noqa: E402
from tl_keras.config.settings import AugmentSettings, DataSettings, settings_from  # noqa: E402
from tl_keras.training.phase import load_weights_quietly  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RULES = ("accuracy", "acc+loss", "loss", "fine_tune")

flags.DEFINE_list("recipes", ["embedded"], "Recipes to run.")
flags.DEFINE_list("datasets", ["flowers"], "flowers (bundled) and/or cats_vs_dogs (../shared/assets).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "phase_choice.json"), "JSON results file.")
FLAGS = flags.FLAGS


def _score(model: keras.Model, batches) -> tuple[float, float]:
    """Accuracy and mean negative log-likelihood of `model` over labelled batches."""
    probabilities, labels = [], []
    for images, batch_labels in batches:
        probabilities.append(model(images, training=False).numpy())
        labels.append(batch_labels.numpy())
    p, y = np.concatenate(probabilities), np.concatenate(labels).astype(int)
    return float((p.argmax(1) == y).mean()), negative_log_likelihood(p, y)


def pick(phases: list[dict], rule: str) -> dict:
    """The phase `rule` keeps; `phases` in training order."""
    if rule == "fine_tune":
        return phases[-1]
    best = phases[0]
    for phase in phases[1:]:
        if rule == "loss":
            better = phase["val_loss"] < best["val_loss"]
        else:
            better = phase["val_accuracy"] > best["val_accuracy"]
            if rule == "acc+loss" and phase["val_accuracy"] == best["val_accuracy"]:
                better = phase["val_loss"] < best["val_loss"]
        best = phase if better else best
    return best


def score_phases(config, image_size: int) -> list[dict]:
    """Every phase's best weights, in training order, scored on the run's validation and test splits."""
    folder = RunFolder(config.run_dir)
    model = load_classifier(folder.model)
    splits = data_lib.load_recorded(settings_from(DataSettings, config), config.run_dir)
    batches = {k: data_lib.make_batches(getattr(splits, k), image_size, 32) for k in ("validation", "test")}
    history = json.loads(folder.history.read_text())
    # The checkpoints hold the training model's variables: the augmentation in front of the classifier, weights shared.
    trainer = with_augmentation(model, build_augmentation(settings_from(AugmentSettings, config)))
    phases = []
    for phase in history["phases"]:
        path = phase.get("weights_path")
        if not path or not Path(path).is_file():
            continue
        load_weights_quietly(trainer, path)
        val_accuracy, val_loss = _score(model, batches["validation"])
        test_accuracy, test_loss = _score(model, batches["test"])
        phases.append({"name": phase["name"], "best_epoch": phase["best_epoch"], "val_accuracy": val_accuracy, "val_loss": val_loss,
                       "test_accuracy": test_accuracy, "test_loss": test_loss})
    return phases


def main(argv):
    del argv
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in FLAGS.datasets:
            for recipe in FLAGS.recipes:
                runs = []
                for seed in map(int, FLAGS.seeds):
                    config = benchmark_config(recipe, dataset, seed, Path(tmp))
                    summary = run_experiment(config)
                    phases = score_phases(config, summary["image_size"])
                    picks = {rule: pick(phases, rule)["name"] for rule in RULES}
                    test = {rule: next(p["test_accuracy"] for p in phases if p["name"] == picks[rule]) for rule in RULES}
                    runs.append({"seed": seed, "kept_phase": summary["kept_phase"], "phases": phases, "picks": picks,
                                 "test_accuracy": test})
                    print(json.dumps({"recipe": recipe, "dataset": dataset, **runs[-1]}), flush=True)
                row = {"recipe": recipe, "dataset": dataset, "runs": runs}
                for rule in RULES:
                    values = [r["test_accuracy"][rule] for r in runs]
                    row[rule] = [float(np.mean(values)), float(np.std(values))]
                rows.append(row)
    print(f"\n{'dataset':<10}{'recipe':<10}" + "".join(f"{rule:>17}" for rule in RULES))
    for r in rows:
        print(f"{r['dataset']:<10}{r['recipe']:<10}" + "".join(f"{r[rule][0]:>10.3f} +- {r[rule][1]:.3f}" for rule in RULES))
    out = Path(FLAGS.output)
    previous = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    machine = f"{platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores"
    out.write_text(json.dumps({"machine": machine, "rows": replace_rows(previous["rows"], rows)}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
