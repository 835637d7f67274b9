"""Tags and numbers on real data: the defaults against the frozen probe and the TF-IDF baseline, in each task's own measures.

Datasets (from ../shared/assets, see its README for sources and licences):

* goemotions: 3,000 training and 1,000 test Reddit comments, 28 emotion
  tags (multi-label), all-MiniLM-L6-v2. Target: the defaults beat TF-IDF +
  one-vs-rest logistic regression and the frozen probe on macro F1 and mAP.
* emobank: 8,062 training and 1,000 development sentences with a valence
  score 1-5 (regression), all-MiniLM-L6-v2. Target: the defaults beat
  TF-IDF + ridge and the frozen probe on Pearson correlation.
* aquarium_tags: 637 aquarium photos, 7 animal tags (multi-label),
  MobileNetV2 1.0 (ImageNet weights from ../shared/assets/weights). Target:
  the defaults reach the converged one-vs-rest probe's mAP 0.914 (the
  assets' reference, random 70/30 split) and beat the network from scratch
  by a wide margin.
* aquarium_counts: the same photos, animals per photo (regression).
  Target: MAE below the frozen ridge probe's and the training mean's.

Image rows split the photos 70/20/10 by the task's rule (iterative
stratification of tag sets, quantile bins of counts) and score the 10%;
the photos include frames of one video, which a random split can put on
both sides (the assets' splits.csv groups them; a split by group is not
what a user's labels file gives a run, so it is not used here).

Each row is one `run_experiment` on the shipped training file (20% of it
becomes validation) scored on the shipped test file: `default` is the
recipe as is (both phases), `probe` the same run with no fine-tuning (the
convex fit on cached sentence vectors). The TF-IDF numbers come from the
baseline every text run fits. Prints a table and writes
benchmarks/results/tasks.json (rows kept across calls, keyed by dataset,
arm and seed).

  python benchmarks/tasks.py --datasets=goemotions,emobank --seeds=0
"""

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags, logging

from tl_keras.config.run_config import RunConfig
from tl_keras.run import run_experiment

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TL_KERAS_ASSETS", REPO.parent / "shared" / "assets"))
MINILM = ASSETS / "text_encoders" / "all-MiniLM-L6-v2"

# name -> (training file, test file, the measures reported, the one the target is on)
TEXT_SETS = {
    "goemotions": (ASSETS / "text" / "goemotions" / "train.tsv", ASSETS / "text" / "goemotions" / "test.tsv",
                   ("map", "macro_f1", "micro_f1"), "macro_f1"),
    "emobank": (ASSETS / "text" / "emobank" / "train.tsv", ASSETS / "text" / "emobank" / "dev.tsv",
                ("pearson", "mae", "spearman"), "pearson"),
}

AQUARIUM = ASSETS / "multilabel" / "aquarium"
MOBILENET = ASSETS / "weights" / "mobilenet_v2_1.0_224_deq_no_top.weights.h5"
# name -> (labels file, the measures reported)
IMAGE_SETS = {
    "aquarium_tags": (AQUARIUM / "labels.csv", ("map", "macro_f1", "micro_f1")),
    "aquarium_counts": (AQUARIUM / "counts.csv", ("mae", "rmse", "pearson")),
}

flags.DEFINE_list("datasets", ["goemotions", "emobank"], f"Any of {', '.join([*TEXT_SETS, *IMAGE_SETS])}.")
flags.DEFINE_list("seeds", ["0"], "Seeds.")
flags.DEFINE_list("arms", ["probe", "default"], "probe (frozen phase only) and/or default (both phases).")
flags.DEFINE_string("out", str(REPO / "benchmarks" / "results" / "tasks.json"), "Results file.")
FLAGS = flags.FLAGS


def run_text_row(name: str, seed: int, arm: str, work: Path) -> dict:
    train, test, measures, _ = TEXT_SETS[name]
    overrides = {"fine_tune_epochs": 0} if arm == "probe" else {}
    config = RunConfig(text_file=str(train), test_file=str(test), backbone=str(MINILM), seed=seed, export=False,
                       run_dir=str(work / f"{name}_{arm}_{seed}"), overwrite=True, verbose=0, **overrides)
    started = time.perf_counter()
    summary = run_experiment(config)
    return {
        "dataset": name, "arm": arm, "seed": seed, "task": summary["task"]["kind"], "kept_phase": summary["kept_phase"],
        **{m: summary["scores"][m] for m in measures}, **{f"tfidf_{m}": summary["tfidf"][m] for m in measures},
        "train_s": round(summary["timings"]["transfer_train_s"], 1), "job_s": round(time.perf_counter() - started, 1),
    }


def run_image_row(name: str, seed: int, arm: str, work: Path) -> dict:
    labels, measures = IMAGE_SETS[name]
    overrides = {"fine_tune_epochs": 0} if arm == "probe" else {"compare_scratch": True}
    run_dir = work / f"{name}_{arm}_{seed}"
    config = RunConfig(image_dir=str(AQUARIUM / "images"), labels_file=str(labels), weights=str(MOBILENET), alpha=1.0, seed=seed,
                       export=False, run_dir=str(run_dir), overwrite=True, verbose=0, **overrides)
    started = time.perf_counter()
    summary = run_experiment(config)
    row = {
        "dataset": name, "arm": arm, "seed": seed, "task": summary["task"]["kind"], "kept_phase": summary["kept_phase"],
        **{m: summary["scores"][m] for m in measures}, "train_s": round(summary["timings"]["transfer_train_s"], 1),
        "job_s": round(time.perf_counter() - started, 1),
    }
    if "scratch_train_s" in summary["timings"]:
        row.update({f"scratch_{m}": summary[f"scratch_{m}"] for m in measures},
                   scratch_train_s=round(summary["timings"]["scratch_train_s"], 1))
    if summary["task"]["kind"] == "regression":  # predicting the training split's mean for every test photo
        split = json.loads((run_dir / "split.json").read_text())
        value = {line.split(",")[0]: float(line.split(",")[1]) for line in labels.read_text().splitlines()[1:]}
        mean = np.mean([value[Path(p).name] for p in split["train"]])
        row["training_mean_mae"] = float(np.mean([abs(value[Path(p).name] - mean) for p in split["test"]]))
    return row


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    unknown = [d for d in FLAGS.datasets if d not in TEXT_SETS and d not in IMAGE_SETS]
    if unknown or not MINILM.is_dir():
        sys.exit(f"--datasets: unknown {unknown}" if unknown else f"no encoder at {MINILM} (set TL_KERAS_ASSETS)")
    out = Path(FLAGS.out)
    results = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in FLAGS.datasets:
            for seed in map(int, FLAGS.seeds):
                for arm in FLAGS.arms:
                    run_row = run_text_row if name in TEXT_SETS else run_image_row
                    row = run_row(name, seed, arm, Path(tmp))
                    row["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
                    key = (name, arm, seed)
                    results["rows"] = [r for r in results["rows"] if (r["dataset"], r["arm"], r["seed"]) != key] + [row]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(results, indent=1) + "\n")
                    print(json.dumps(row), flush=True)
    print_table(results["rows"])


def print_table(rows: list[dict]) -> None:
    """One line per (dataset, arm, measure): mean +- std over seeds; the baselines (TF-IDF, scratch, the training mean) as arms."""
    print(f"{'dataset':<16}{'arm':<14}{'seeds':>6}  {'measure':<10}{'value':>18}")
    measures_of = {**{n: v[2] for n, v in TEXT_SETS.items()}, **{n: v[1] for n, v in IMAGE_SETS.items()}}
    for name, measures in measures_of.items():
        for arm, source, prefix in (("tfidf", "default", "tfidf_"), ("training mean", "default", "training_mean_"),
                                    ("scratch", "default", "scratch_"), ("probe", "probe", ""), ("default", "default", "")):
            chosen = [r for r in rows if r["dataset"] == name and r["arm"] == source]
            for m in measures:
                values = np.array([r[prefix + m] for r in chosen if prefix + m in r])
                if len(values):
                    print(f"{name:<16}{arm:<14}{len(values):>6}  {m:<10}{values.mean():>10.3f} +- {values.std():.3f}")


if __name__ == "__main__":
    app.run(main)
