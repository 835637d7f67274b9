"""One folder, the defaults alone: does the exported model use every label the user gave?

The protocol a user lives: one folder of labelled photos (`--image_dir`), no
test folder, the default recipe with nothing else set (MobileNetV2 1.0 from
the ImageNet weights file in ../shared/assets, at its 224 px). The run
chooses what it chooses (its own validation and test splits, the kept
phase, the refit) and exports; the exported model is then scored on unseen
photos of the same classes. The reference is a converged logistic
regression (scikit-learn's LogisticRegressionCV, 5 folds over strengths
0.001-10, log-loss) on frozen features of every photo in the folder, the
same weights at the same size, scored on the same unseen photos.

For each data set, budget (photos per class in the folder) and seed, the
unseen photos are drawn first (the same for every budget of a seed), then
the folder. Arms (`--arms`): `default` (the defaults as they are) and
`refit_on` (`--refit=on`: the kept recipe replayed on training +
validation), each on the same folder. Rows of other data sets, budgets,
seeds and arms already in the results file are kept.

Data sets: `tf_flowers` (600 photos, 5 classes; 20 per class unseen, so at
most 100 per class in the folder) and `cats_vs_dogs` (the folder from
train/, 250 per class of validation/ unseen).

Where the frozen phase is kept, what the export is comes down to one
logistic fit on frozen features, so the refit's rules can be replayed over
many more draws than full runs afford (`--frozen_draws=N`: seeds 0 to N-1,
the same folders and unseen photos as the full runs; features of every
photo computed once). Each draw carves the run's validation and test
splits (the defaults' fractions), picks the head's strength on validation
with the library's own fit, and scores on the unseen photos: the head on
training alone; refitted at that strength on training + validation; on
every photo of the folder (what `--refit=auto` exports from a folder with
a carved test split); and the probe itself (the strength chosen again by
5-fold cross-validation over every photo).

  python benchmarks/one_folder.py --datasets=tf_flowers --budgets=40,60,100 --seeds=0,1,2,3,4
  python benchmarks/one_folder.py --datasets=cats_vs_dogs --budgets=40,60,100 --seeds=0,1,2,3,4 --arms=default,refit_on
  python benchmarks/one_folder.py --datasets=tf_flowers,cats_vs_dogs --budgets=40,60,100 --frozen_draws=40

Prints a table and writes benchmarks/results/one_folder.json.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from absl import app, flags

from tl_keras.config.run_config import RunConfig
from tl_keras.run import run_experiment
from tl_keras.vision.run import build_model
from tl_keras.training import features as features_lib
from tl_keras.vision.data import IMAGE_EXTENSIONS
from tl_keras.vision.pixels import to_uint8

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TL_KERAS_ASSETS", REPO.parent / "shared" / "assets"))
WEIGHTS = ASSETS / "weights" / "mobilenet_v2_1.0_224_deq_no_top.weights.h5"
DATASETS = {
    "tf_flowers": {"pool": "tf_flowers", "unseen_from": None, "unseen_per_class": 20},
    "cats_vs_dogs": {"pool": "cats_and_dogs_filtered/train", "unseen_from": "cats_and_dogs_filtered/validation", "unseen_per_class": 250},
}
ARMS = {"default": {}, "refit_on": {"refit": "on"}, "refit_all": {"refit": "all"}}
STRENGTHS = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0]

flags.DEFINE_list("datasets", ["tf_flowers"], f"Data sets: {', '.join(DATASETS)}.")
flags.DEFINE_list("budgets", ["40", "60", "100"], "Labelled photos per class in the folder.")
flags.DEFINE_list("seeds", ["0", "1", "2", "3", "4"], "Seeds; each draws the unseen photos, the folder and the run's own seed.")
flags.DEFINE_list("arms", ["default"], f"Arms: {', '.join(ARMS)}.")
flags.DEFINE_integer("frozen_draws", 0, "Replay the frozen refit's rules over this many draws (seeds 0 to N-1) per data set "
                     "and budget, on features computed once, instead of full runs.")
flags.DEFINE_string("out", str(REPO / "benchmarks" / "results" / "one_folder.json"), "Results file.")
FLAGS = flags.FLAGS


def photos_by_class(folder: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS) for d in sorted(folder.iterdir()) if d.is_dir()}


def draw(dataset: str, budget: int, seed: int) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """({class: photos in the folder}, {class: unseen photos}); the unseen ones depend on the seed alone, not the budget."""
    spec = DATASETS[dataset]
    pool = photos_by_class(ASSETS / spec["pool"])
    elsewhere = photos_by_class(ASSETS / spec["unseen_from"]) if spec["unseen_from"] else None
    folder, unseen = {}, {}
    for name, files in pool.items():
        order = [files[i] for i in np.random.default_rng(seed).permutation(len(files))]
        if elsewhere is None:
            unseen[name], order = order[: spec["unseen_per_class"]], order[spec["unseen_per_class"]:]
        else:
            held = elsewhere[name]
            unseen[name] = [held[i] for i in np.random.default_rng(seed + 1000).permutation(len(held))[: spec["unseen_per_class"]]]
        if budget > len(order):
            raise ValueError(f"{dataset}: {budget} photos per class asked, {len(order)} left after the unseen ones")
        folder[name] = order[:budget]
    return folder, unseen


def lay_out(folder_files: dict[str, list[Path]], folder: Path) -> None:
    """The user's folder: one sub-folder per class, the drawn photos linked in."""
    for name, files in folder_files.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for file in files:
            os.symlink(file, folder / name / file.name)


def pixels(files: list[Path], size: int):
    import tensorflow as tf

    return to_uint8(tf.stack([tf.image.resize(tf.io.decode_image(tf.io.read_file(str(f)), channels=3, expand_animations=False),
                                              (size, size)) for f in files]))


def labelled(by_class: dict[str, list[Path]]) -> tuple[list[Path], np.ndarray]:
    names = sorted(by_class)
    files = [(f, names.index(n)) for n in names for f in by_class[n]]
    return [f for f, _ in files], np.array([label for _, label in files])


def frozen_features(config: RunConfig):
    """files -> frozen backbone features (pooled), the weights and size of `config`."""
    backbone, model = build_model(config, config.weights, 2)  # the head is not used
    extractor = features_lib.feature_extractor(model)

    def features(files):
        return np.concatenate([np.asarray(extractor.predict(pixels(files[i:i + 64], backbone.input_size), verbose=0))
                               for i in range(0, len(files), 64)])

    return features


def cv_probe_accuracy(x, y, test_x, test_y) -> float:
    """Unseen accuracy of a converged logistic regression, its strength chosen by 5-fold cross-validated log-loss."""
    from sklearn.linear_model import LogisticRegressionCV

    with warnings.catch_warnings():  # scikit-learn announces new defaults; the arguments here are stated explicitly
        warnings.simplefilter("ignore", FutureWarning)
        fitted = LogisticRegressionCV(Cs=STRENGTHS, cv=5, max_iter=3000, scoring="neg_log_loss").fit(x, y)
    return float(np.mean(fitted.predict(test_x) == test_y))


def probe(config: RunConfig, folder_files: dict, unseen: dict) -> float:
    """Unseen accuracy of a converged, cross-validated logistic regression on frozen features of every photo in the folder."""
    features = frozen_features(config)
    (x, y), (test_x, test_y) = labelled(folder_files), labelled(unseen)
    return cv_probe_accuracy(features(x), y, features(test_x), test_y)


FROZEN_ARMS = ("train_only", "train_validation", "every_photo", "probe")


def frozen_draws(dataset: str, budgets: list[int], draws: int) -> list[dict]:
    """The frozen refit's rules replayed per draw (module docstring): unseen accuracy of each of `FROZEN_ARMS`."""
    import keras

    from tl_keras.data.splits import stratified_split
    from tl_keras.tasks.single_label import SingleLabel
    from tl_keras.tasks.base import dense_logits

    config = RunConfig(image_dir=str(ASSETS / DATASETS[dataset]["pool"]), weights=str(WEIGHTS)).resolved()
    everything = sorted({f for budget in budgets for seed in range(draws) for part in draw(dataset, budget, seed)
                         for files in part.values() for f in files})
    started = time.perf_counter()
    vectors = dict(zip(everything, frozen_features(config)(everything)))
    print(f"  {dataset}: features of {len(everything)} photos in {time.perf_counter() - started:.0f} s", flush=True)
    task, rows = SingleLabel(), []
    for budget in budgets:
        for seed in range(draws):
            (files, y), (test_files, test_y) = (labelled(part) for part in draw(dataset, budget, seed))
            x, test_x = np.stack([vectors[f] for f in files]), np.stack([vectors[f] for f in test_files])
            parts = stratified_split(y, config.validation_fraction, config.test_fraction, seed)
            head = keras.layers.Dense(int(y.max()) + 1)
            head.build((None, x.shape[1]))

            def unseen_accuracy(rows_of, strength=None):
                chosen = np.concatenate([parts[k] for k in rows_of])
                validation = None if strength is not None else (x[parts["validation"]], y[parts["validation"]])
                fitted = task.fit_head(head, (x[chosen], y[chosen]), validation, strength=strength)
                return float(np.mean(dense_logits(head, test_x).argmax(1) == test_y)), fitted["C"]

            accuracy, strength = unseen_accuracy(["train"])
            row = {"dataset": dataset, "budget": budget, "seed": seed, "strength": strength, "unseen": len(test_y), "train_only": accuracy,
                   "train_validation": unseen_accuracy(["train", "validation"], strength)[0],
                   "every_photo": unseen_accuracy(["train", "validation", "test"], strength)[0],
                   "probe": cv_probe_accuracy(x, y, test_x, test_y)}
            rows.append(row)
    return rows


def print_frozen_table(rows: list[dict]) -> None:
    heading = "".join(f"{arm + ' - probe':>26}" for arm in FROZEN_ARMS[:-1])
    print(f"{'data set':<14}{'per class':>10}{'draws':>7}{heading}{'probe':>16}")
    for key in sorted({(r["dataset"], r["budget"]) for r in rows}):
        group = [r for r in rows if (r["dataset"], r["budget"]) == key]
        probe_accuracy = np.array([r["probe"] for r in group])
        cells = []
        for arm in FROZEN_ARMS[:-1]:
            gap = np.array([r[arm] for r in group]) - probe_accuracy
            cells.append(f"{gap.mean():>+17.4f} ({gap.std(ddof=1) / np.sqrt(len(gap)):.4f})")
        print(f"{key[0]:<14}{key[1]:>10}{len(group):>7}" + "".join(f"{c:>26}" for c in cells)
              + f"{probe_accuracy.mean():>9.3f} +- {probe_accuracy.std():.3f}")


_PROBES: dict[tuple, float] = {}


def one_run(dataset: str, budget: int, seed: int, arm: str, root: Path) -> dict:
    import keras

    started = time.perf_counter()
    folder_files, unseen = draw(dataset, budget, seed)
    folder = root / f"{dataset}_{budget}_{seed}" / "photos"
    if not folder.is_dir():
        lay_out(folder_files, folder)
    config = RunConfig(image_dir=str(folder), weights=str(WEIGHTS), seed=seed, run_dir=str(folder.parent / f"run_{arm}"),
                       export_dir=str(folder.parent / f"exports_{arm}"), verbose=0, **ARMS[arm])
    summary = run_experiment(config)
    model = keras.saving.load_model(Path(summary["export"]) / "assets.extra" / "model.keras", compile=False)
    files, labels = labelled(unseen)
    size = config.resolved().image_size or 224
    predicted = np.concatenate([model.predict(pixels(files[i:i + 64], size), verbose=0).argmax(1) for i in range(0, len(files), 64)])
    row = {
        "dataset": dataset, "budget": budget, "seed": seed, "arm": arm, "unseen": len(files),
        "exported_unseen_accuracy": float(np.mean(predicted == labels)), "kept_phase": summary["kept_phase"],
        "reported": {"split": summary["evaluated_on"], "accuracy": summary["transfer_accuracy"],
                     "exported_accuracy": summary["exported_accuracy"]},
        "refit_examples": summary.get("refit", {}).get("examples"), "labelled": sum(len(v) for v in folder_files.values()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    if (dataset, budget, seed) not in _PROBES:  # the same folder and unseen photos for every arm
        _PROBES[dataset, budget, seed] = probe(config.resolved(), folder_files, unseen)
    row["probe_unseen_accuracy"] = _PROBES[dataset, budget, seed]
    row["seconds"] = round(time.perf_counter() - started, 1)
    print(f"  {dataset} {budget}/class seed {seed} {arm}: exported {row['exported_unseen_accuracy']:.3f}, probe "
          f"{row['probe_unseen_accuracy']:.3f} (kept {row['kept_phase']}, trained on {row['refit_examples'] or 'train'}; "
          f"{row['seconds']:.0f} s)", flush=True)
    return row


def print_table(rows: list[dict]) -> None:
    print(f"{'data set':<14}{'per class':>10}{'arm':>10}{'seeds':>6}{'exported (unseen)':>22}{'probe':>18}{'minus probe':>18}")
    for key in sorted({(r["dataset"], r["budget"], r["arm"]) for r in rows}):
        group = [r for r in rows if (r["dataset"], r["budget"], r["arm"]) == key]
        ours = np.array([r["exported_unseen_accuracy"] for r in group])
        ref = np.array([r["probe_unseen_accuracy"] for r in group])
        gap = ours - ref
        error = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else float("nan")
        print(f"{key[0]:<14}{key[1]:>10}{key[2]:>10}{len(group):>6}{ours.mean():>14.3f} +- {ours.std():.3f}"
              f"{ref.mean():>10.3f} +- {ref.std():.3f}{gap.mean():>+10.3f} ({error:.3f})")


def main(argv):
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)
    if not WEIGHTS.is_file():
        sys.exit(f"the MobileNetV2 1.0 weights are not at {WEIGHTS} (set TL_KERAS_ASSETS)")
    unknown = sorted(set(FLAGS.arms) - set(ARMS)) + sorted(set(FLAGS.datasets) - set(DATASETS))
    if unknown:
        sys.exit(f"unknown arms or data sets: {unknown}")
    out = Path(FLAGS.out)
    results = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    if FLAGS.frozen_draws:
        budgets = list(map(int, FLAGS.budgets))
        for dataset in FLAGS.datasets:
            fresh = frozen_draws(dataset, budgets, FLAGS.frozen_draws)
            done = {(r["dataset"], r["budget"], r["seed"]) for r in fresh}
            kept = [r for r in results.get("frozen_draws", []) if (r["dataset"], r["budget"], r["seed"]) not in done]
            results["frozen_draws"] = kept + fresh
            out.write_text(json.dumps(results, indent=1) + "\n")
        print_frozen_table(results["frozen_draws"])
        return
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in FLAGS.datasets:
            for budget in map(int, FLAGS.budgets):
                for seed in map(int, FLAGS.seeds):
                    for arm in FLAGS.arms:
                        row = one_run(dataset, budget, seed, arm, Path(tmp))
                        key = (dataset, budget, seed, arm)
                        results["rows"] = [r for r in results["rows"] if (r["dataset"], r["budget"], r["seed"], r["arm"]) != key] + [row]
                        out.parent.mkdir(parents=True, exist_ok=True)
                        out.write_text(json.dumps(results, indent=1) + "\n")  # after every run: a long benchmark keeps what it did
    print_table(results["rows"])


if __name__ == "__main__":
    app.run(main)
