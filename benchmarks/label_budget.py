"""Every label used: the defaults with and without the refit on training + validation, against a converged probe, by label budget.

For each data set, budget (labelled images per class) and seed: a fixed
test set is set apart, `budget` labelled images per class are drawn from
the rest and split as the defaults split a folder (validation 2/9 of the
labelled images, the defaults' 0.2 : 0.7), and one run of the defaults
(MobileNetV2 0.35 at 160 px from the ImageNet weights in
../shared/assets, `--refit=on`) gives two scores on the test images: the
model trained on the training images alone, and the model refitted on
training + validation with validation's choices fixed; the default
(`--refit=auto`) exports the second where the frozen phase was kept and the
first otherwise. The probe is scikit-learn's cross-validated logistic
regression (5 folds over the library's grid of strengths, picked by
log-loss, converged) on frozen features of the same training + validation
images. The split is written into the run folder's
split.json before the run, so all three arms see exactly the same images.

The frozen phase's refit alone is then measured over many more draws
(`--frozen_draws`, default 30), where it is cheap: features of every image
are computed once, and for each draw the logistic head at the strength
validation log-loss picks (the library's grid) is fitted on training alone
and on training + validation, both scored on the test images; a third arm
refits with the strength chosen again by 5-fold cross-validated log-loss over
every labelled row. Three full runs per budget cannot resolve a gain of a
point: the seed-to-seed spread of one run's test accuracy is about two points
on 150 test photos.

Each full run also records, per phase, what validation saw at the phase's
best epoch and the test accuracy of its best weights (`phases`), and the
same for the two phases' weights interpolated (`averaged`: a quarter, half
or three quarters of the way to the fine-tuned weights), so that
phase-choice and averaging rules can be compared on the same runs
(`phase_rules`). The cheap draws also refit the frozen head with each
image's mirror image as a second row (`mirrored_rows_gain`). Runs of other
budgets and seeds already in the results file are kept.

Data sets: `tf_flowers` (600 photos, 5 classes; 30 per class for test, so at
most 90 labelled per class) and `cats_vs_dogs` (labelled from train/, 250
per class of validation/ for test).

  python benchmarks/label_budget.py --datasets=tf_flowers --budgets=30,60,90 --seeds=0,1,2
  python benchmarks/label_budget.py --datasets=cats_vs_dogs --budgets=30,60,120 --seeds=0,1,2
  python benchmarks/label_budget.py --datasets=tf_flowers,cats_vs_dogs --budgets=30,60,90,120 --nofull_runs --frozen_draws=30

Prints a table per data set and writes benchmarks/results/label_budget.json
(rows of other data sets already in it are kept).
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
from tl_keras.vision.data import IMAGE_EXTENSIONS
from tl_keras.data.splits import split_settings
from tl_keras.run import run_experiment
from tl_keras.vision.run import build_model
from tl_keras.training import features as features_lib
from tl_keras.vision.pixels import to_uint8

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
WEIGHTS_0_35 = ASSETS / "weights" / "mobilenet_v2_0.35_224_no_top.weights.h5"
DATASETS = {
    "tf_flowers": {"pool": "tf_flowers", "test_from": None, "test_per_class": 30},
    "cats_vs_dogs": {"pool": "cats_and_dogs_filtered/train", "test_from": "cats_and_dogs_filtered/validation", "test_per_class": 250},
}
VALIDATION_SHARE = 2 / 9  # the defaults' validation_fraction 0.2 against 0.7 for training
flags.DEFINE_list("datasets", ["tf_flowers"], f"Data sets: {', '.join(DATASETS)}.")
flags.DEFINE_list("budgets", ["30", "60", "90"], "Labelled (training + validation) images per class.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds; each draws the test set, the labelled images, the split and the training.")
flags.DEFINE_bool("full_runs", True, "Run the defaults (slow: minutes per run); --nofull_runs keeps a data set's earlier rows.")
flags.DEFINE_integer("frozen_draws", 30, "Draws for the frozen head's refit alone (cheap); 0 skips it.")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "label_budget.json"), "JSON results file.")
FLAGS = flags.FLAGS


def images_by_class(folder: Path) -> dict[str, list[Path]]:
    return {d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            for d in sorted(folder.iterdir()) if d.is_dir()}


def draw(dataset: str, budget: int, seed: int) -> dict[str, dict[str, list[Path]]]:
    """{split: {class: files}}: the test set (the same for every budget of a seed) and `budget` labelled files per class."""
    spec = DATASETS[dataset]
    pool = images_by_class(ASSETS / spec["pool"])
    test_pool = images_by_class(ASSETS / spec["test_from"]) if spec["test_from"] else None
    rng = np.random.default_rng(seed)
    parts: dict[str, dict[str, list[Path]]] = {"train": {}, "validation": {}, "test": {}}
    for name, files in pool.items():
        order = [files[i] for i in rng.permutation(len(files))]
        if test_pool is None:
            test, order = order[: spec["test_per_class"]], order[spec["test_per_class"]:]
        else:
            held = test_pool[name]
            test = [held[i] for i in np.random.default_rng(seed + 1000).permutation(len(held))[: spec["test_per_class"]]]
        if budget > len(order):
            raise ValueError(f"{dataset}: {budget} labelled images per class asked, {len(order)} left after the test set")
        labelled = order[:budget]
        validation = max(1, round(budget * VALIDATION_SHARE))
        parts["validation"][name], parts["train"][name], parts["test"][name] = labelled[:validation], labelled[validation:], test
    return parts


def lay_out(parts: dict, folder: Path, run_dir: Path, seed: int, config: RunConfig) -> None:
    """Links the drawn files into one folder and records the split in the run folder, as a run would have."""
    record = {**split_settings(f"image_dir:{folder}", seed, config.validation_fraction, config.test_fraction, ""),
              "class_names": sorted(parts["train"])}
    for split, by_class in parts.items():
        record[split] = []
        for name, files in by_class.items():
            (folder / name).mkdir(parents=True, exist_ok=True)
            for file in files:
                link = folder / name / f"{split}_{file.name}"
                os.symlink(file, link)
                record[split].append(str(link))
    run_dir.mkdir(parents=True)
    (run_dir / "split.json").write_text(json.dumps(record))


def probe(features: dict[str, np.ndarray], parts: dict) -> float:
    """Test accuracy of a cross-validated, converged logistic regression on frozen features of training + validation."""
    from sklearn.linear_model import LogisticRegressionCV

    x, y = split_rows(features, parts, ["train", "validation"])
    test_x, test_y = split_rows(features, parts, ["test"])
    with warnings.catch_warnings():  # scikit-learn 1.8 announces new defaults; the arguments here are stated explicitly
        warnings.simplefilter("ignore", FutureWarning)
        fitted = LogisticRegressionCV(Cs=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0], cv=5, max_iter=2000,
                                      scoring="neg_log_loss").fit(x, y)
    return float(np.mean(fitted.predict(test_x) == test_y))


def phase_evidence(config: RunConfig, run_dir: Path, parts: dict, features: dict[str, np.ndarray]) -> dict:
    """Per phase: what validation saw at its best epoch, and the test accuracy of its best weights.

    Lets phase-choice rules be compared on the same runs: for the frozen
    phase also the test accuracy of its head refitted on training +
    validation at the strength validation picked (scikit-learn's logistic
    regression on the probe's features, which is what the refit does).
    """
    from sklearn.linear_model import LogisticRegression

    from tl_keras.config.settings import AugmentSettings, settings_from
    from tl_keras.models.builders import with_augmentation
    from tl_keras.training.phase import load_weights_quietly
    from tl_keras.vision.augment import build_augmentation

    history = json.loads((run_dir / "history.json").read_text())
    names = sorted(parts["train"])
    _, model = build_model(config, config.weights, len(names))
    trainer = with_augmentation(model, build_augmentation(settings_from(AugmentSettings, config)))
    pixels, labels = split_pixels(config, parts, "test")
    val_pixels, val_labels = split_pixels(config, parts, "validation")
    out, weights = {"validation_images": sum(len(v) for v in parts["validation"].values())}, {}
    for phase in history["phases"]:
        if not phase.get("weights_path") or phase.get("best_epoch") is None:
            continue
        at = phase["best_epoch"] - phase["first_epoch"]
        record = {key: phase["history"][key][at] for key in ("val_accuracy", "val_loss") if len(phase["history"].get(key, [])) > at}
        record["min_val_loss"] = min(phase["history"].get("val_loss", [float("nan")]))
        load_weights_quietly(trainer, phase["weights_path"])
        record["test"] = float(np.mean(np.argmax(model.predict(pixels, verbose=0), axis=-1) == labels))
        weights[phase["name"]] = model.get_weights()
        if phase.get("head_strength"):
            test = split_rows(features, parts, ["test"])
            for key, splits in (("alone_test", ["train"]), ("refit_test", ["train", "validation"])):  # alone_test checks the stand-in
                fitted = LogisticRegression(C=phase["head_strength"], max_iter=1000, tol=1e-4).fit(*split_rows(features, parts, splits))
                record[key] = float(fitted.score(*test))
        out[phase["name"]] = record
    if {"frozen", "fine_tune"} <= set(weights):
        out["averaged"] = averaged_evidence(model, weights, (pixels, labels), (val_pixels, val_labels))
    return out


def averaged_evidence(model, weights: dict, test: tuple, validation: tuple) -> dict:
    """The frozen and fine-tuned phases' weights interpolated (share `a` of the fine-tuned): validation's view and test accuracy.

    Weight-space averaging of a fine-tuned network with its starting point
    (the frozen phase: ImageNet backbone, fitted head) keeps one network's
    cost; the batch-norm statistics are the same in both (the backbone runs
    with training=False), so the blend is a valid network.
    """
    out = {}
    for share in (0.25, 0.5, 0.75):
        model.set_weights([(1 - share) * f + share * t for f, t in zip(weights["frozen"], weights["fine_tune"])])
        probabilities = model.predict(validation[0], verbose=0)
        picked = np.clip(probabilities[np.arange(len(validation[1])), validation[1]], 1e-7, 1.0)
        out[str(share)] = {"val_accuracy": float(np.mean(np.argmax(probabilities, axis=-1) == validation[1])),
                           "val_loss": float(-np.mean(np.log(picked))),
                           "test": float(np.mean(np.argmax(model.predict(test[0], verbose=0), axis=-1) == test[1]))}
    return out


def split_pixels(config: RunConfig, parts: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels, labels) of one split of a draw, classes in sorted order."""
    names = sorted(parts["train"])
    files = [(str(f), names.index(n)) for n in names for f in parts[split][n]]
    return test_pixels(config, [f for f, _ in files]), np.array([label for _, label in files])


def test_pixels(config: RunConfig, files: list[str]) -> np.ndarray:
    import tensorflow as tf

    size = (config.image_size,) * 2
    return np.asarray(to_uint8(tf.stack([tf.image.resize(tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False), size)
                                         for f in files])))


def frozen_features(config: RunConfig, files, flip: bool = False) -> dict[str, np.ndarray]:
    """The frozen backbone's pooled features of each file (decoded, resized to its input size, mirrored with `flip`), by path."""
    import tensorflow as tf

    backbone, model = build_model(config, config.weights, 2)  # the head is not used: any class count will do
    extractor = features_lib.feature_extractor(model)
    files, out = sorted({str(f) for f in files}), {}
    for start in range(0, len(files), 64):
        chunk = files[start:start + 64]
        images = [tf.image.resize(tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False), (backbone.input_size,) * 2)
                  for f in chunk]
        batch = tf.stack(images)
        out.update(zip(chunk, np.asarray(extractor.predict(to_uint8(tf.image.flip_left_right(batch) if flip else batch), verbose=0))))
    return out


def split_rows(features: dict[str, np.ndarray], parts: dict, splits: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) of the named splits of a draw, classes in sorted order."""
    names = sorted(parts["train"])
    files = [(str(f), names.index(n)) for s in splits for n in names for f in parts[s][n]]
    return np.stack([features[f] for f, _ in files]), np.array([label for _, label in files])


def one_run(dataset: str, budget: int, seed: int, root: Path) -> dict:
    started = time.perf_counter()
    parts = draw(dataset, budget, seed)
    folder, run_dir = root / f"{dataset}_{budget}_{seed}_images", root / f"{dataset}_{budget}_{seed}_run"
    config = RunConfig(image_dir=str(folder), run_dir=str(run_dir), weights=str(WEIGHTS_0_35), alpha=0.35, image_size=160, seed=seed,
                       verbose=0, export=False, refit="on", name="label_budget")
    lay_out(parts, folder, run_dir, seed, config)
    summary = run_experiment(config)
    row = {"dataset": dataset, "budget": budget, "seed": seed, "test_images": sum(len(v) for v in parts["test"].values()),
           "kept_phase": summary["kept_phase"], "without_refit": summary["transfer_accuracy"],
           "with_refit": summary["exported_accuracy"], "refit": summary.get("refit", {})}
    features = frozen_features(config.resolved(), [f for by_class in parts.values() for files in by_class.values() for f in files])
    row["probe"] = probe(features, parts)
    row["phases"] = phase_evidence(config.resolved(), run_dir, parts, features)
    row["seconds"] = round(time.perf_counter() - started, 1)
    print(f"  {dataset} budget {budget} seed {seed}: without {row['without_refit']:.3f}, with {row['with_refit']:.3f}, "
          f"probe {row['probe']:.3f} ({row['kept_phase']}, {row['seconds']:.0f}s)", flush=True)
    return row


def frozen_head_refit(dataset: str, budgets: list[int], draws: int) -> list[dict]:
    """The frozen phase's refit alone over `draws` draws per budget: test accuracy gain of the head refitted on training + validation."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.metrics import log_loss
    from sklearn.model_selection import StratifiedKFold

    from tl_keras.training.features import _LOGISTIC_STRENGTHS

    config = RunConfig(image_dir=str(ASSETS), weights=str(WEIGHTS_0_35), alpha=0.35, image_size=160).resolved()
    features = image_features(config, dataset, max(budgets), draws)
    mirrored = image_features(config, dataset, max(budgets), draws, flip=True)
    rows = []
    for budget in budgets:
        gains, cv_gains, flip_gains, skipped = [], [], [], 0
        for seed in range(draws):
            try:
                parts = draw(dataset, budget, seed)
            except ValueError:
                skipped += 1
                continue
            names = sorted(parts["train"])
            train, validation, test = (split_rows(features, parts, [split]) for split in ("train", "validation", "test"))

            def fit(x, y, strength):
                return LogisticRegression(C=strength, max_iter=1000, tol=1e-4).fit(x, y)

            strength = min(_LOGISTIC_STRENGTHS, key=lambda c: log_loss(
                validation[1], fit(*train, c).predict_proba(validation[0]), labels=range(len(names))))
            alone = fit(*train, strength).score(*test)
            pooled = np.concatenate([train[0], validation[0]]), np.concatenate([train[1], validation[1]])
            both = fit(*pooled, strength).score(*test)
            gains.append(both - alone)
            # The same refit with its strength chosen again by 5-fold cross-validated log-loss over every labelled row.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                cv = LogisticRegressionCV(Cs=list(_LOGISTIC_STRENGTHS), cv=StratifiedKFold(5, shuffle=True, random_state=seed),
                                          scoring="neg_log_loss", max_iter=1000, tol=1e-4).fit(*pooled)
            cv_gains.append(float(np.mean(cv.predict(test[0]) == test[1])) - both)  # score() would be the CV scoring (log-loss)
            # The refit with each labelled image's mirror image as a second row (strength chosen the same way, on doubled training).
            flipped = [split_rows(mirrored, parts, [split]) for split in ("train", "validation")]
            doubled = np.concatenate([train[0], flipped[0][0]]), np.concatenate([train[1], flipped[0][1]])
            flip_strength = min(_LOGISTIC_STRENGTHS, key=lambda c: log_loss(
                validation[1], fit(*doubled, c).predict_proba(validation[0]), labels=range(len(names))))
            flip_gains.append(fit(np.concatenate([pooled[0], flipped[0][0], flipped[1][0]]),
                                  np.concatenate([pooled[1], flipped[0][1], flipped[1][1]]), flip_strength).score(*test) - both)
        if not gains:
            continue
        g, c, m = np.array(gains), np.array(cv_gains), np.array(flip_gains)
        rows.append({"budget": budget, "draws": len(g), "gain_mean": float(g.mean()), "gain_std": float(g.std()),
                     "gain_standard_error": float(g.std() / np.sqrt(len(g))), "draws_better": int(np.sum(g > 0)),
                     "draws_worse": int(np.sum(g < 0)), "cv_strength_gain_mean": float(c.mean()), "cv_strength_gain_std": float(c.std()),
                     "cv_strength_gain_standard_error": float(c.std() / np.sqrt(len(c))), "cv_draws_better": int(np.sum(c > 0)),
                     "cv_draws_worse": int(np.sum(c < 0)),
                     "mirrored_rows_gain_mean": float(m.mean()), "mirrored_rows_gain_std": float(m.std()),
                     "mirrored_rows_gain_standard_error": float(m.std() / np.sqrt(len(m))), "mirrored_draws_better": int(np.sum(m > 0)),
                     "mirrored_draws_worse": int(np.sum(m < 0))})
    return rows


def image_features(config: RunConfig, dataset: str, budget: int, draws: int, flip: bool = False) -> dict[str, np.ndarray]:
    """Frozen backbone features of every image any draw uses, computed once."""
    needed = set()
    for seed in range(draws):
        try:
            parts = draw(dataset, budget, seed)
        except ValueError:
            parts = draw(dataset, min(budget, 90), seed)
        needed |= {str(f) for by_class in parts.values() for files in by_class.values() for f in files}
    return frozen_features(config, needed, flip)


def table(rows: list[dict]) -> list[dict]:
    out = []
    for budget in sorted({r["budget"] for r in rows}):
        at = [r for r in rows if r["budget"] == budget]
        arms = {arm: np.array([r[arm] for r in at]) for arm in ("without_refit", "with_refit", "probe")}
        # The default, --refit=auto: the refit model where the frozen phase was kept, else the model trained on training alone.
        arms["auto"] = np.array([r["with_refit"] if r["kept_phase"] == "frozen" else r["without_refit"] for r in at])
        gain = arms["with_refit"] - arms["without_refit"]
        out.append({"budget": budget, "seeds": len(at), **{f"{a}_mean": float(v.mean()) for a, v in arms.items()},
                    **{f"{a}_std": float(v.std()) for a, v in arms.items()}, "refit_gain_mean": float(gain.mean()),
                    "refit_gain_std": float(gain.std()), "auto_minus_probe_mean": float((arms["auto"] - arms["probe"]).mean()),
                    "fine_tune_kept": sum(r["kept_phase"] != "frozen" for r in at)})
    return out


def _standard_error(p: float, n: int) -> float:
    return float(np.sqrt(max(p * (1 - p), 1 / n) / n))


# Phase-choice rules compared offline on the same runs: each says whether fine-tuning is kept over the frozen phase,
# from what validation saw at each phase's best epoch (e: the run's phase evidence).
PHASE_RULES = {
    "accuracy (best val accuracy)": lambda f, t, n: t["val_accuracy"] > f["val_accuracy"],
    "accuracy, then loss on ties": lambda f, t, n: (t["val_accuracy"], -t["val_loss"]) > (f["val_accuracy"], -f["val_loss"]),
    "val loss at the kept epoch": lambda f, t, n: t["val_loss"] < f["val_loss"],
    "accuracy and loss both better": lambda f, t, n: t["val_accuracy"] > f["val_accuracy"] and t["val_loss"] < f["val_loss"],
    "accuracy by > 1 standard error": lambda f, t, n: t["val_accuracy"] - f["val_accuracy"] > _standard_error(f["val_accuracy"], n),
    "always frozen": lambda f, t, n: False,
    "always fine-tuning": lambda f, t, n: True,
}


def _averaged_choice(f: dict, t: dict, a: dict, n: int, pick: str) -> float:
    """Fine-tuning kept by the accuracy rule, then exported as the interpolation (or the fine-tuned end) `pick` prefers on validation."""
    if not PHASE_RULES["accuracy (best val accuracy)"](f, t, n):
        return f["refit_test"]
    options = [(share, a[share]) for share in a] + [("1.0", t)]
    key = (lambda o: (-o[1]["val_accuracy"], o[1]["val_loss"])) if pick == "accuracy" else (lambda o: o[1]["val_loss"])
    return min(options, key=key)[1]["test"]


# Rules that may export the frozen and fine-tuned weights interpolated (a: the run's `averaged` evidence by share).
AVERAGING_RULES = {
    "fine-tuning kept -> average 0.5": lambda f, t, a, n: a["0.5"]["test"] if PHASE_RULES["accuracy (best val accuracy)"](f, t, n)
    else f["refit_test"],
    "fine-tuning kept -> share by val accuracy": lambda f, t, a, n: _averaged_choice(f, t, a, n, "accuracy"),
    "fine-tuning kept -> share by val loss": lambda f, t, a, n: _averaged_choice(f, t, a, n, "loss"),
    "always average 0.5": lambda f, t, a, n: a["0.5"]["test"],
}


def rule_outcomes(rows: list[dict]) -> list[dict]:
    """Test accuracy of the default (refit where the frozen phase is kept) under each phase rule, by budget."""
    out = []
    usable = [r for r in rows if "frozen" in r.get("phases", {}) and "fine_tune" in r.get("phases", {})]
    def exported(keeps):  # a phase rule's score: the fine-tuned weights where it keeps them, else the refitted frozen head
        return lambda f, t, a, n: t["test"] if keeps(f, t, n) else f["refit_test"]

    rules = {**{name: exported(keeps) for name, keeps in PHASE_RULES.items()}, **AVERAGING_RULES}
    for rule, score in rules.items():
        for budget in sorted({r["budget"] for r in usable}):
            at = [r for r in usable if r["budget"] == budget and (rule in PHASE_RULES or "averaged" in r["phases"])]
            if not at:
                continue
            scores = np.array([score(r["phases"]["frozen"], r["phases"]["fine_tune"], r["phases"].get("averaged"),
                                     r["phases"]["validation_images"]) for r in at])
            keeps = PHASE_RULES.get(rule, PHASE_RULES["accuracy (best val accuracy)"])  # the averaging rules keep fine-tuning by accuracy
            tuned = sum(keeps(r["phases"]["frozen"], r["phases"]["fine_tune"], r["phases"]["validation_images"]) for r in at)
            probes = np.array([r["probe"] for r in at])
            out.append({"rule": rule, "budget": budget, "runs": len(at), "mean": float(scores.mean()), "std": float(scores.std()),
                        "minus_probe": float((scores - probes).mean()),
                        "minus_probe_standard_error": float((scores - probes).std(ddof=1) / np.sqrt(len(at))) if len(at) > 1 else None,
                        "fine_tune_kept": int(tuned)})
    return out


def print_rules(dataset: str, rows: list[dict]) -> None:
    print(f"\n{dataset}: the default's test accuracy under each phase-choice rule (frozen kept -> refit head), minus the CV probe")
    budgets = sorted({r["budget"] for r in rows})
    print(f"{'rule':<44}" + "".join(f"{b:>26}" for b in budgets))
    for rule in dict.fromkeys(r["rule"] for r in rows):
        cells = {r["budget"]: r for r in rows if r["rule"] == rule}
        print(f"{rule:<44}" + "".join(
            f"{cells[b]['mean']:>8.3f} ({cells[b]['minus_probe']:+.3f}) {cells[b]['fine_tune_kept']:>2}/{cells[b]['runs']:<2}"
            if b in cells else f"{'-':>26}" for b in budgets))


def print_table(dataset: str, rows: list[dict]) -> None:
    print(f"\n{dataset}: test accuracy, mean +- std over seeds ({rows[0]['seeds']} seeds)")
    print(f"{'labels/class':>12}{'no refit':>16}{'refit=on':>16}{'on: gain':>18}{'default (auto)':>18}{'CV probe':>16}"
          f"{'fine-tune kept':>16}")
    for r in rows:
        print(f"{r['budget']:>12}{r['without_refit_mean']:>8.3f} +- {r['without_refit_std']:.3f}"
              f"{r['with_refit_mean']:>8.3f} +- {r['with_refit_std']:.3f}{r['refit_gain_mean']:>+10.3f} +- {r['refit_gain_std']:.3f}"
              f"{r['auto_mean']:>10.3f} +- {r['auto_std']:.3f}{r['probe_mean']:>8.3f} +- {r['probe_std']:.3f}"
              f"{r['fine_tune_kept']:>12}/{r['seeds']}")


def main(argv):
    del argv
    if not ASSETS.is_dir():
        sys.exit(f"error: {ASSETS} not found; this benchmark needs ../shared/assets")
    unknown = sorted(set(FLAGS.datasets) - set(DATASETS))
    if unknown:
        sys.exit(f"error: --datasets: unknown {unknown}; known: {sorted(DATASETS)}")
    output = Path(FLAGS.output)
    earlier = json.loads(output.read_text()) if output.exists() else {}
    results = {key: dict(value) for key, value in earlier.get("datasets", {}).items()}  # other data sets and arms are kept
    with tempfile.TemporaryDirectory() as scratch:
        for dataset in FLAGS.datasets:
            results.setdefault(dataset, {})
            if FLAGS.full_runs:
                runs = [one_run(dataset, int(b), int(s), Path(scratch)) for b in FLAGS.budgets for s in FLAGS.seeds]
                fresh = {(r["budget"], r["seed"]) for r in runs}  # earlier rows of other budgets and seeds are kept
                runs = sorted([r for r in results[dataset].get("runs", []) if (r["budget"], r["seed"]) not in fresh] + runs,
                              key=lambda r: (r["budget"], r["seed"]))
                results[dataset]["runs"] = runs
            if results[dataset].get("runs"):  # tabulated again from the runs, so an earlier file gets every column
                results[dataset]["budgets"] = table(results[dataset]["runs"])
                print_table(dataset, results[dataset]["budgets"])
                rules = rule_outcomes(results[dataset]["runs"])
                if rules:
                    results[dataset]["phase_rules"] = rules
                    print_rules(dataset, rules)
            if FLAGS.frozen_draws:
                frozen = frozen_head_refit(dataset, [int(b) for b in FLAGS.budgets], FLAGS.frozen_draws)
                results[dataset]["frozen_head_refit"] = frozen
                print(f"\n{dataset}: the frozen head refitted on training + validation, test accuracy gain over {FLAGS.frozen_draws} draws")
                print(f"{'labels/class':>12}{'gain':>20}{'standard error':>16}{'better / worse':>16}"
                      f"{'C by 5-fold CV: further gain':>32}{'standard error':>16}{'better / worse':>16}"
                      f"{'mirror rows: further gain':>30}{'standard error':>16}{'better / worse':>16}")
                for r in frozen:
                    print(f"{r['budget']:>12}{r['gain_mean']:>+11.4f} +- {r['gain_std']:.4f}{r['gain_standard_error']:>13.4f}"
                          f"{r['draws_better']:>10} / {r['draws_worse']}{r['cv_strength_gain_mean']:>+23.4f} +- "
                          f"{r['cv_strength_gain_std']:.4f}{r['cv_strength_gain_standard_error']:>13.4f}"
                          f"{r['cv_draws_better']:>10} / {r['cv_draws_worse']}{r['mirrored_rows_gain_mean']:>+21.4f} +- "
                          f"{r['mirrored_rows_gain_std']:.4f}{r['mirrored_rows_gain_standard_error']:>13.4f}"
                          f"{r['mirrored_draws_better']:>10} / {r['mirrored_draws_worse']}")
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(json.dumps({"settings": "defaults, MobileNetV2 0.35 at 160 px, --refit=on", "datasets": results,
                                          "machine": platform.platform()}, indent=2))
    print(f"wrote {output}")


if __name__ == "__main__":
    app.run(main)
