"""Tags and numbers on real data: the defaults against the frozen probe and the TF-IDF baseline, in each task's own measures.

Datasets (from ../shared/assets, see its README for sources and licences):

* goemotions: 3,000 training and 1,000 test Reddit comments, 28 emotion
  tags (multi-label), all-MiniLM-L6-v2. Target: the defaults beat TF-IDF +
  one-vs-rest logistic regression and the frozen probe on macro F1 and mAP.
* emobank: 8,062 training and 1,000 development sentences with a valence
  score 1-5 (regression), all-MiniLM-L6-v2. Target: the defaults beat
  TF-IDF + ridge and the frozen probe on Pearson correlation.

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

flags.DEFINE_list("datasets", ["goemotions", "emobank"], f"Any of {', '.join(TEXT_SETS)}.")
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


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    unknown = [d for d in FLAGS.datasets if d not in TEXT_SETS]
    if unknown or not MINILM.is_dir():
        sys.exit(f"--datasets: unknown {unknown}" if unknown else f"no encoder at {MINILM} (set TL_KERAS_ASSETS)")
    out = Path(FLAGS.out)
    results = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for name in FLAGS.datasets:
            for seed in map(int, FLAGS.seeds):
                for arm in FLAGS.arms:
                    row = run_text_row(name, seed, arm, Path(tmp))
                    row["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
                    key = (name, arm, seed)
                    results["rows"] = [r for r in results["rows"] if (r["dataset"], r["arm"], r["seed"]) != key] + [row]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(results, indent=1) + "\n")
                    print(json.dumps(row), flush=True)
    print_table(results["rows"])


def print_table(rows: list[dict]) -> None:
    print(f"{'dataset':<12}{'arm':<9}{'seeds':>6}  {'measure':<10}{'value':>18}{'TF-IDF':>9}{'train s':>9}")
    for name, (_, _, measures, _) in TEXT_SETS.items():
        for arm in ("tfidf", "probe", "default"):
            chosen = [r for r in rows if r["dataset"] == name and r["arm"] == (arm if arm != "tfidf" else "default")]
            if not chosen:
                continue
            for m in measures:
                key = f"tfidf_{m}" if arm == "tfidf" else m
                values = np.array([r[key] for r in chosen])
                print(f"{name:<12}{arm:<9}{len(chosen):>6}  {m:<10}{values.mean():>10.3f} +- {values.std():.3f}"
                      f"{np.mean([r[f'tfidf_{m}'] for r in chosen]):>9.3f}{np.mean([r['train_s'] for r in chosen]):>9.0f}")


if __name__ == "__main__":
    app.run(main)
