"""Spoken digits, speaker-independent: the sound recipes against their frozen probes, MFCC + logistic regression and scratch.

Data: `../shared/assets/audio/fsdd/` (Free Spoken Digit Dataset, 3,000
clips, 6 speakers, 8 kHz; CC BY-SA 4.0, read in place, never copied into the
package). Leave one speaker out: for each held-out speaker, the other five
speakers' clips train (80%, stratified by digit) and validate (20%), and
every clip of the held-out speaker is the test split, so each score is on a
voice the model never heard. Each row is one `run_experiment` on a table
with a `split` column (what a user passes as `--audio_file`).

Arms:
* `speech`: the `audio` recipe (Google's speech_embedding, rebuilt from
  `../shared/assets/audio_encoders/speech_embedding/`), all training clips;
* `speech_30`: the same with 30 clips per digit (`--max_train_per_class`);
* `speech_noise`: the same as `speech` with noise mixing on (`--noise_snr_db=10`);
* `image`: the `audio_image` recipe (ImageNet MobileNetV2 over log-mel
  images) with noise mixing on, and the same network from scratch for the
  same wall time (`--compare_scratch`);
* `image_30`: `image` with 30 clips per digit (no scratch arm);
* `image_30_long`: `image_30` with at least 400 fine-tuning steps (`--fine_tune_min_steps`);
* `export`: the `speech` recipe on the first fold, exported; per-clip
  latency of the SavedModel (WAV bytes in) and size, latency and agreement
  of each TFLite file, int8 (network quantized, front end float,
  calibrated on 200 training clips) included;
* `export_image`: the same for the `image` arm's recipe (no scratch arm);
* `mfcc`, `mfcc_30`: the MFCC baseline alone on the same splits (all
  training clips, 30 per digit), clean and at 10 dB SNR.

Every run also reports its frozen probe (the frozen phase's converged
logistic regression) and the MFCC baseline on the same split; the noise
numbers are the held-out clips with white noise at 10 dB SNR.

  python benchmarks/audio.py --arms=speech,speech_30 --folds=all --seeds=0
  python benchmarks/audio.py --arms=image --folds=george,nicolas,theo

Prints a table and writes benchmarks/results/audio.json (rows kept across
calls, keyed by arm, held-out speaker and seed).
"""

import csv
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
FSDD = ASSETS / "audio" / "fsdd"
SPEECH_ENCODER = ASSETS / "audio_encoders" / "speech_embedding"
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")

ARMS = {
    "speech": {"backbone": str(SPEECH_ENCODER)},
    "speech_30": {"backbone": str(SPEECH_ENCODER), "max_train_per_class": 30},
    "speech_noise": {"backbone": str(SPEECH_ENCODER), "noise_snr_db": 10.0},
    "image": {"backbone": "mobilenet_v2", "noise_snr_db": 10.0, "compare_scratch": True},
    "image_30": {"backbone": "mobilenet_v2", "noise_snr_db": 10.0, "max_train_per_class": 30},
    "image_30_long": {"backbone": "mobilenet_v2", "noise_snr_db": 10.0, "max_train_per_class": 30, "fine_tune_min_steps": 400},
    "export": {"backbone": str(SPEECH_ENCODER), "export": True},
    "export_image": {"backbone": "mobilenet_v2", "noise_snr_db": 10.0, "export": True},
    "mfcc": {},  # the baseline alone, on the same splits (no network)
    "mfcc_30": {"max_train_per_class": 30},
}

flags.DEFINE_list("arms", ["speech", "speech_30"], f"Any of {', '.join(ARMS)}.")
flags.DEFINE_list("folds", ["all"], f"Held-out speakers ({', '.join(SPEAKERS)}) or all.")
flags.DEFINE_list("seeds", ["0"], "Seeds.")
flags.DEFINE_string("out", str(REPO / "benchmarks" / "results" / "audio.json"), "Results file.")
FLAGS = flags.FLAGS


def fold_table(held_out: str, seed: int, folder: Path) -> Path:
    """A path,label,split table: the held-out speaker's clips test; the others' split 80/20 into train and validation by digit."""
    rng = np.random.default_rng(seed)
    rows = []
    for digit in sorted(p.name for p in FSDD.iterdir() if p.is_dir()):
        clips = sorted((FSDD / digit).glob("*.wav"))
        others = [c for c in clips if c.stem.split("_")[1] != held_out]
        validation = set(rng.choice(len(others), size=len(others) // 5, replace=False).tolist())
        rows += [(str(c), digit, "test") for c in clips if c.stem.split("_")[1] == held_out]
        rows += [(str(c), digit, "validation" if i in validation else "train") for i, c in enumerate(others)]
    path = folder / f"fsdd_without_{held_out}_{seed}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)
    return path


def mfcc_row(arm: str, held_out: str, seed: int, work: Path) -> dict:
    """The MFCC baseline every run reports, alone: fitted on the fold's training clips, scored on the held-out speaker clean and noisy."""
    from tl_keras.audio.augment import with_noise
    from tl_keras.audio.baselines import mfcc_baseline
    from tl_keras.audio.data import load_audio_splits

    started = time.perf_counter()
    splits = load_audio_splits(str(fold_table(held_out, seed, work)), table=True, seed=seed, clip_seconds=1.2,
                               max_train_per_class=ARMS[arm].get("max_train_per_class", 0))
    clean = mfcc_baseline(splits.waves, splits.targets, splits.target, "test")
    noisy = mfcc_baseline({**splits.waves, "test": with_noise(splits.waves["test"], 10.0, seed)}, splits.targets, splits.target, "test")
    return {"arm": arm, "held_out": held_out, "seed": seed, "accuracy": clean["accuracy"], "noise_10db": noisy["accuracy"],
            "train_clips": len(splits.waves["train"]), "job_s": round(time.perf_counter() - started, 1)}


def run_row(arm: str, held_out: str, seed: int, work: Path) -> dict:
    if arm.startswith("mfcc"):
        return mfcc_row(arm, held_out, seed, work)
    settings = dict(ARMS[arm])
    export = settings.pop("export", False)
    run_dir = work / f"{arm}_{held_out}_{seed}"
    config = RunConfig(audio_file=str(fold_table(held_out, seed, work)), seed=seed, export=export, export_dir=str(work / "exports"),
                       name=f"{arm}_{held_out}", run_dir=str(run_dir), overwrite=True, verbose=0, **settings)
    started = time.perf_counter()
    summary = run_experiment(config)
    row = {
        "arm": arm, "held_out": held_out, "seed": seed, "backbone": summary["backbone"], "kept_phase": summary["kept_phase"],
        "accuracy": summary["transfer_accuracy"], "probe_accuracy": summary["probe"].get("accuracy"),
        "mfcc_accuracy": summary["mfcc"]["accuracy"], "noise_10db": summary["noise"]["10 dB"], "noise": summary["noise"],
        "clip_seconds": summary["clip_seconds"], "train_clips": sum(summary["counts"]["train"].values()),
        "train_s": round(summary["timings"]["transfer_train_s"], 1), "job_s": round(time.perf_counter() - started, 1),
    }
    if "scratch_accuracy" in summary:
        row.update(scratch_accuracy=summary["scratch_accuracy"], scratch_train_s=round(summary["timings"]["scratch_train_s"], 1),
                   scratch_epochs=summary["scratch_epochs"])
    if export:
        row["latency"] = latencies(Path(summary["export"]), run_dir, work / "tflite")
    return row


def latencies(version_dir: Path, run_dir: Path, tflite_dir: Path) -> dict:
    """Median milliseconds per clip: the SavedModel's serving_default on one WAV file's bytes, and each TFLite file on one waveform."""
    import tensorflow as tf

    from tl_keras.audio.export import wav_bytes
    from tl_keras.audio.run import read_recorded_audio_splits
    from tl_keras.audio.tflite import AUDIO_VARIANTS, export_audio_tflite
    from tl_keras.io.run_folder import RunFolder

    splits = read_recorded_audio_splits(RunConfig.from_dict(RunFolder(run_dir).read_config()), run_dir)
    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    request = tf.constant([wav_bytes(splits.waves["test"][0], splits.sample_rate)])
    served(audio_bytes=request)
    times = []
    for _ in range(30):
        started = time.perf_counter()
        served(audio_bytes=request)
        times.append((time.perf_counter() - started) * 1000)
    keep = np.linspace(0, len(splits.waves["test"]) - 1, 200).astype(int)
    train = splits.waves["train"]
    report = export_audio_tflite(version_dir, tflite_dir, splits.waves["test"][keep], splits.targets["test"][keep], splits.class_names,
                                 sample_rate=splits.sample_rate, variants=AUDIO_VARIANTS,
                                 calibration=train[np.linspace(0, len(train) - 1, 200).astype(int)])
    return {"saved_model_ms": float(np.median(times)),
            **{f"{r['variant']}_accuracy": r["accuracy"] for r in report["variants"]},
            **{f"{r['variant']}_ms": r["median_latency_ms"] for r in report["variants"]},
            **{f"{r['variant']}_agreement": r["agreement"] for r in report["variants"]},
            **{f"{r['variant']}_kb": r["size_bytes"] // 1024 for r in report["variants"]}}


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    unknown = [a for a in FLAGS.arms if a not in ARMS]
    folds = list(SPEAKERS) if FLAGS.folds == ["all"] else FLAGS.folds
    if unknown or [f for f in folds if f not in SPEAKERS] or not FSDD.is_dir() or not SPEECH_ENCODER.is_dir():
        sys.exit(f"--arms: unknown {unknown}" if unknown else f"--folds: one of {SPEAKERS}" if FSDD.is_dir() and SPEECH_ENCODER.is_dir()
                 else f"no spoken digits or speech encoder under {ASSETS} (set TL_KERAS_ASSETS)")
    out = Path(FLAGS.out)
    results = json.loads(out.read_text()) if out.is_file() else {"rows": []}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in FLAGS.arms:
            for seed in map(int, FLAGS.seeds):
                for held_out in folds[:1] if arm.startswith("export") else folds:
                    row = run_row(arm, held_out, seed, Path(tmp))
                    row["machine"] = f"{platform.machine()}, {os.cpu_count()} CPUs"
                    key = (arm, held_out, seed)
                    results["rows"] = [r for r in results["rows"] if (r["arm"], r["held_out"], r["seed"]) != key] + [row]
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_text(json.dumps(results, indent=1) + "\n")
                    print(json.dumps({k: v for k, v in row.items() if k != "noise"}), flush=True)
    print_table(results["rows"])


def print_table(rows: list[dict]) -> None:
    """Per arm: mean over held-out speakers (and its worst speaker) of each measure, with the seeds and folds behind it."""
    print(f"{'arm':<14}{'folds':>6}{'seeds':>6}  {'measure':<16}{'mean':>8}{'worst':>8}{'std':>8}")
    for arm in ARMS:
        chosen = [r for r in rows if r["arm"] == arm]
        if not chosen:
            continue
        for measure in ("accuracy", "probe_accuracy", "mfcc_accuracy", "scratch_accuracy", "noise_10db", "train_s"):
            by_fold: dict[str, list[float]] = {}
            for r in chosen:
                if r.get(measure) is not None:
                    by_fold.setdefault(r["held_out"], []).append(r[measure])
            if not by_fold:
                continue
            means = np.array([np.mean(v) for v in by_fold.values()])
            seeds = max(len(v) for v in by_fold.values())
            worst = means.max() if measure == "train_s" else means.min()
            print(f"{arm:<14}{len(means):>6}{seeds:>6}  {measure:<16}{means.mean():>8.3f}{worst:>8.3f}{means.std():>8.3f}")
        for r in chosen:
            if "latency" in r:
                shown = ", ".join(f"{k} {v:.2f}" for k, v in r["latency"].items() if k.endswith("_ms"))
                print(f"{arm:<14}  latency per clip (ms): {shown}")


if __name__ == "__main__":
    app.run(main)
