"""Text classification on the sentence-polarity split: TF-IDF, the frozen linear probe and the text recipe, by training size.

Each row is one run of `run_experiment` on the first N sentences of
`split/train.tsv` (the file is already shuffled; 20% of them become the
validation split), scored on all 2,133 sentences of `split/test.tsv`:
the text recipe as is (both phases), the same run with no fine-tuning (the
converged logistic-regression probe on cached sentence vectors), and the
TF-IDF + logistic regression baseline every run also fits. Prints a table
and writes benchmarks/results/text.json (rows are kept across calls, keyed
by size, seed and arm, so slow rows can be run a seed per call).

  python benchmarks/text.py --sizes=2000 --seeds=0
  python benchmarks/text.py --sizes=2000,8529 --seeds=0,1,2
  python benchmarks/text.py --sizes=2000 --arms=text --set=fine_tune_learning_rate=1e-4,fine_tune_epochs=3 --label=text_lr1e-4_e3
  python benchmarks/text.py --sizes=2000 --arms=text --set=compare_scratch=true --label=text+scratch   # scratch, same wall time
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

from tl_keras.config.run_config import recipe_config
from tl_keras.run import run_experiment

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TL_KERAS_ASSETS", REPO.parent / "shared" / "assets"))

flags.DEFINE_string("split_dir", str(ASSETS / "text" / "sentence_polarity" / "split"), "Folder with train.tsv and test.tsv.")
flags.DEFINE_string("backbone", str(ASSETS / "text_encoders" / "all-MiniLM-L6-v2"), "Text encoder (--backbone of a run).")
flags.DEFINE_list("sizes", ["2000"], "Training-file sentences per row (the first N lines); 'all' or 8529 for the whole file.")
flags.DEFINE_list("seeds", ["0"], "Seeds.")
flags.DEFINE_list("arms", ["probe", "text"], "probe (frozen phase only) and/or text (the text recipe).")
flags.DEFINE_string("recipe", "text", "Recipe of the 'text' arm.")
flags.DEFINE_list("set", [], "Settings the 'text' arm overrides (name=value), to try a recipe change.")
flags.DEFINE_string("label", "", "The arm's name in the results for a --set row (default: 'text').")
flags.DEFINE_string("out", str(REPO / "benchmarks" / "results" / "text.json"), "Results file.")
FLAGS = flags.FLAGS


def run_row(train_file: Path, test_file: Path, size: int, seed: int, arm: str, work: Path) -> dict:
    overrides = {"fine_tune_epochs": 0} if arm == "probe" else parse_settings(FLAGS.set)
    config = recipe_config(
        FLAGS.recipe, text_file=str(train_file), test_file=str(test_file), backbone=FLAGS.backbone, seed=seed, export=False,
        run_dir=str(work / f"{arm}_{size}_{seed}"), overwrite=True, verbose=0, **overrides,
    )
    started = time.perf_counter()
    summary = run_experiment(config)
    fine = summary["phases"].get("fine_tune", {})
    return {
        "arm": arm, "size": size, "seed": seed, "test_accuracy": summary["transfer_accuracy"], "kept_phase": summary["kept_phase"],
        "tfidf_accuracy": summary["tfidf"]["accuracy"], "train_s": round(summary["timings"]["transfer_train_s"], 1),
        "fine_tune_s": fine.get("seconds"), "sequence_length": summary["sequence_length"],
        "ece": summary["calibration"].get("ece"), "job_s": round(time.perf_counter() - started, 1),
        **({"scratch_accuracy": summary["scratch_accuracy"], "scratch_epochs": summary["scratch_epochs"],
            "scratch_train_s": round(summary["timings"]["scratch_train_s"], 1)} if "scratch_accuracy" in summary else {}),
    }


def parse_settings(pairs: list[str]) -> dict:
    """`name=value` pairs to RunConfig overrides, numbers as numbers."""
    out = {}
    for pair in pairs:
        name, _, value = pair.partition("=")
        if value.lower() in ("true", "false"):
            out[name] = value.lower() == "true"
            continue
        try:
            out[name] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            out[name] = value
    return out


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    split = Path(FLAGS.split_dir)
    if not (split / "train.tsv").is_file():
        sys.exit(f"--split_dir: no train.tsv in {split}")
    lines = (split / "train.tsv").read_text(encoding="utf-8").splitlines()
    out = Path(FLAGS.out)
    results = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size_text in FLAGS.sizes:
            size = len(lines) if size_text == "all" else min(int(size_text), len(lines))
            train_file = work / f"train_{size}.tsv"
            train_file.write_text("\n".join(lines[:size]) + "\n", encoding="utf-8")
            for seed in map(int, FLAGS.seeds):
                for arm in FLAGS.arms:
                    row = run_row(train_file, split / "test.tsv", size, seed, arm, work)
                    if arm == "text" and FLAGS.set:
                        row.update(arm=FLAGS.label or "text", settings=parse_settings(FLAGS.set))
                        arm = row["arm"]
                    row["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
                    results["rows"] = [r for r in results["rows"] if (r["arm"], r["size"], r["seed"]) != (arm, size, seed)] + [row]
                    print(json.dumps(row), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"{'arm':<16}{'size':>6}{'seeds':>7}{'test accuracy':>22}{'TF-IDF':>10}{'train s':>9}")
    keys = sorted({(r["arm"], r["size"]) for r in results["rows"]}, key=lambda k: (k[1], k[0]))
    for arm, size in keys:
        rows = [r for r in results["rows"] if (r["arm"], r["size"]) == (arm, size)]
        acc = np.array([r["test_accuracy"] for r in rows])
        print(f"{arm:<16}{size:>6}{len(rows):>7}{acc.mean():>14.3f} +- {acc.std():.3f}"
              f"{np.mean([r['tfidf_accuracy'] for r in rows]):>10.3f}{np.mean([r['train_s'] for r in rows]):>9.0f}")


if __name__ == "__main__":
    app.run(main)
