"""Every named recipe on real photos, several seeds, against the converged linear probe on the same split.

Datasets: `flowers` (the 500 photos that ship in the package, 40 labels
per class, the embedded default's split) and `cats_vs_dogs` (the TF
tutorial's cats_and_dogs_filtered from ../shared/assets: train/ trains,
validation/ gives validation and a 20% test). Weights: real ImageNet
MobileNetV2 files (the bundled alpha 0.35; alpha 1.0 from ../shared/assets).
Each row runs `run_experiment`, the code path of experiments/train.py.
The probe row: frozen features of the recipe's backbone at its size, and
scikit-learn's LogisticRegression (L-BFGS to convergence, C picked on
validation), scored on the same test split.

  python benchmarks/recipes.py --recipes=embedded --datasets=flowers --seeds=0,1,2
  python benchmarks/recipes.py --recipes=default,mobile --datasets=cats_vs_dogs --seeds=0,1,2
  python benchmarks/recipes.py --recipes=tutorial,accurate --datasets=cats_vs_dogs --seeds=1   # 10 and 18 minutes a seed

Prints a table (mean +- std over seeds) and writes benchmarks/results/recipes.json;
a recipe's runs on seeds not given this time are kept from the file and
counted in its row, so slow recipes can be measured one seed per call.
"""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import app, flags

from tl_keras.vision import data as data_lib
from tl_keras.config.settings import DataSettings, settings_from
from tl_keras.training import features as features_lib
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.run import run_experiment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recipe_runs import benchmark_config, replace_rows  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

flags.DEFINE_list("recipes", ["embedded"], "Recipes to run: embedded, default, mobile, tutorial, accurate.")
flags.DEFINE_list("datasets", ["flowers"], "flowers (bundled) and/or cats_vs_dogs (../shared/assets).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each changes the split, the initialisation and the batch order.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "recipes.json"), "JSON results file.")
FLAGS = flags.FLAGS


def linear_probe(config, run_dir: Path) -> float:
    """Test accuracy of a converged logistic regression on the frozen features, split as the run split it."""
    from sklearn.linear_model import LogisticRegression

    splits = data_lib.load_data(settings_from(DataSettings, config), run_dir)
    backbone = load_backbone(config.backbone, config.weights, image_size=config.image_size, alpha=config.alpha)
    extractor = features_lib.feature_extractor(build_classifier(backbone, len(splits.class_names)))
    size = backbone.input_size
    cached = {
        k: features_lib.cache_features(extractor, data_lib.make_batches(getattr(splits, k), size, 32))
        for k in ("train", "validation", "test")
    }
    probes = [
        LogisticRegression(C=c, max_iter=5000).fit(cached["train"].features, cached["train"].labels)
        for c in (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 100.0)
    ]
    best = max(probes, key=lambda p: p.score(cached["validation"].features, cached["validation"].labels))
    return float(best.score(cached["test"].features, cached["test"].labels))


def _mean_std(values):
    values = [v for v in values if v is not None]
    return (float(np.mean(values)), float(np.std(values))) if values else (None, None)


def _with_earlier_seeds(runs: list[dict], earlier_rows: list[dict], recipe: str, dataset: str) -> list[dict]:
    """This call's runs plus the results file's runs of the same recipe and dataset on other seeds.

    The slow recipes (an 18-minute seed) are measured a seed per call; a
    rerun of a seed replaces its earlier result.
    """
    seeds = {r["seed"] for r in runs}
    earlier = [r for row in earlier_rows if (row["recipe"], row["dataset"]) == (recipe, dataset) for r in row["runs"]]
    return sorted([r for r in earlier if r["seed"] not in seeds] + runs, key=lambda r: r["seed"])


def _row(recipe: str, dataset: str, config, runs: list[dict]) -> dict:
    row = {"recipe": recipe, "dataset": dataset, "model": f"mobilenet_v2 {config.alpha or 1.0} @{config.image_size or 224}", "runs": runs}
    for key in ("test_accuracy", "probe_accuracy", "scratch_accuracy", "train_s", "job_s"):
        row[key] = _mean_std([r[key] for r in runs])
    # The exported model's: the refit on training + validation where --refit chose it (runs from before the refit exported the first).
    row["exported_accuracy"] = _mean_std([r.get("exported_accuracy", r["test_accuracy"]) for r in runs])
    return row


def main(argv):
    del argv
    out = Path(FLAGS.output)
    previous = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        run_root = Path(tmp)
        for dataset in FLAGS.datasets:
            for recipe in FLAGS.recipes:
                runs = []
                for seed in map(int, FLAGS.seeds):
                    config = benchmark_config(recipe, dataset, seed, run_root)
                    started = time.perf_counter()
                    summary = run_experiment(config)
                    total = time.perf_counter() - started
                    probe = linear_probe(config, Path(config.run_dir))
                    runs.append({"seed": seed, "test_accuracy": summary["transfer_accuracy"],
                                 "exported_accuracy": summary.get("exported_accuracy", summary["transfer_accuracy"]),
                                 "probe_accuracy": probe,
                                 "scratch_accuracy": summary.get("scratch_accuracy"), "kept_phase": summary["kept_phase"],
                                 "train_s": round(summary["timings"]["transfer_train_s"], 1), "job_s": round(total, 1)})
                    print(json.dumps({"recipe": recipe, "dataset": dataset, **runs[-1]}), flush=True)
                rows.append(_row(recipe, dataset, config, _with_earlier_seeds(runs, previous["rows"], recipe, dataset)))
    print(
        f"\n{'dataset':<13}{'recipe':<10}{'model':<22}{'test acc':>16}{'exported':>16}{'linear probe':>16}{'scratch':>16}"
        f"{'train s':>9}{'job s':>8}{'seeds':>7}"
    )
    for r in rows:
        def fmt(key):
            mean, std = r[key]
            return "-" if mean is None else f"{mean:.3f} +- {std:.3f}"
        print(
            f"{r['dataset']:<13}{r['recipe']:<10}{r['model']:<22}{fmt('test_accuracy'):>16}{fmt('exported_accuracy'):>16}"
            f"{fmt('probe_accuracy'):>16}{fmt('scratch_accuracy'):>16}"
            f"{r['train_s'][0]:>9.0f}{r['job_s'][0]:>8.0f}{len(r['runs']):>7}"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": f"{platform.machine()}, {tf.config.threading.get_inter_op_parallelism_threads() or 'auto'} threads",
                "tensorflow": tf.__version__,
                "rows": replace_rows(previous["rows"], rows),
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
