"""The training input pipeline on a large class-per-folder tree: class mixing, throughput, memory, first batch.

Generates a folder of small JPEGs (default 100,000 in 100 classes, in a
temporary folder unless --root is given and already filled) and measures
`data.epoch_batches`, the path `experiments/train.py` trains on, with
`--cache=none` and with the default (`auto`) storage:

* class mixing: mean distinct classes in each of the first 500 batches,
  against the exact expectation for batches drawn at random without
  replacement (goal >= 0.95 of it), and the share of classes seen in the
  first 1% of an epoch (goal 100%);
* throughput: images/s over 500 batches against a bare tf.data read +
  decode + batch loop over the same files in a random order (goal >=
  0.9x): the median of 5 runs, alternating the two;
* peak RSS of a fresh process streaming 300 batches with `--cache=none`,
  at 25% and 100% of the tree (goal: no growth beyond noise);
* seconds to the first batch (the default storage fills RAM first).

  python benchmarks/data_scale.py                      # 100k images, 100 classes
  python benchmarks/data_scale.py --images=20000 --classes=40   # quicker

Prints a table and writes benchmarks/results/data_scale.json.
"""

from __future__ import annotations

import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]

flags.DEFINE_integer("images", 100_000, "Images in the generated tree.")
flags.DEFINE_integer("classes", 100, "Class folders.")
flags.DEFINE_integer("pixels", 48, "Side of each generated JPEG, and the training image size.")
flags.DEFINE_integer("batch_size", 32, "Training batch size.")
flags.DEFINE_integer("batches", 500, "Batches measured for mixing and throughput.")
flags.DEFINE_integer("seed", 0, "Shuffle seed.")
flags.DEFINE_string("root", "", "Folder for the tree (kept); empty uses a temporary folder (deleted).")
flags.DEFINE_string("output", str(REPO / "benchmarks" / "results" / "data_scale.json"), "JSON results file.")
flags.DEFINE_string("rss_probe", "", "Internal: measure peak RSS streaming this many images of --root, print it, exit.")
FLAGS = flags.FLAGS


def _write_class(args) -> int:
    from PIL import Image

    root, label, count, pixels = args
    rng = np.random.default_rng(label)
    folder = Path(root) / f"class_{label:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    base = rng.integers(0, 256, 3)
    for i in range(count):
        noise = rng.integers(-40, 40, (pixels, pixels, 3))
        Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(folder / f"{i:06d}.jpg", quality=85)
    return count


def make_tree(root: Path, images: int, classes: int, pixels: int) -> float:
    """Writes `images` JPEGs in `classes` folders (skipped when the tree is already there); returns seconds."""
    per_class = images // classes
    if root.is_dir() and sum(1 for _ in root.glob("class_*/*.jpg")) == per_class * classes:
        return 0.0
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_write_class, [(str(root), c, per_class, pixels) for c in range(classes)], chunksize=4))
    return time.perf_counter() - started


def iid_distinct(classes: int, per_class: int, batch: int) -> float:
    """Expected distinct classes in a batch drawn without replacement from equal classes."""
    total = classes * per_class
    log_none = sum(math.log(total - per_class - k) - math.log(total - k) for k in range(batch))
    return classes * (1.0 - math.exp(log_none))


def _rate(batches, count: int) -> float:
    """images/s over `count` batches of an iterator, after one batch of warm-up."""
    next(batches)
    started = time.perf_counter()
    for _ in range(count):
        next(batches)
    return count * FLAGS.batch_size / (time.perf_counter() - started)


def measure_pipeline(splits, cache: str, classes: int, bare_paths: np.ndarray) -> dict:
    """Mixing and time to first batch from a fresh stream; throughput as the median of 5 runs alternating with the bare loop."""
    from tl_keras.vision import data as data_lib

    started = time.perf_counter()
    stream = data_lib.epoch_batches(
        splits.train,
        FLAGS.pixels,
        FLAGS.batch_size,
        seed=FLAGS.seed,
        indexed=splits.indexed["train"],
        cache=cache,
        cache_path=Path(tempfile.gettempdir()) / "data_scale_cache",
    )
    batches = iter(stream.stream(0))  # what fit consumes (prefetched)
    first_labels = [next(batches)[1].numpy()]
    first_batch_s = time.perf_counter() - started
    for _ in range(FLAGS.batches - 1):
        first_labels.append(next(batches)[1].numpy())
    ours, bare = [], []
    for repeat in range(5):  # alternate, so drift in the machine's speed hits both alike
        ours.append(_rate(iter(stream.stream(1 + repeat)), FLAGS.batches))
        bare.append(bare_loop(bare_paths, np.random.default_rng(repeat).permutation(len(bare_paths))))
    per_class = len(splits.train_labels) // classes
    distinct = float(np.mean([len(set(y.tolist())) for y in first_labels]))
    one_percent = max(1, math.ceil(0.01 * stream.steps_per_epoch))
    seen = len(set(np.concatenate(first_labels[:one_percent]).tolist()))
    return {
        "cache": cache, "first_batch_s": round(first_batch_s, 2), "images_per_s": round(float(np.median(ours)), 1),
        "bare_images_per_s": round(float(np.median(bare)), 1), "vs_bare_read_decode": round(float(np.median(np.divide(ours, bare))), 3),
        "distinct_per_batch": round(distinct, 2), "iid_distinct_per_batch": round(iid_distinct(classes, per_class, FLAGS.batch_size), 2),
        "mixing_ratio": round(distinct / iid_distinct(classes, per_class, FLAGS.batch_size), 3),
        "classes_in_first_1pct": round(seen / classes, 3), "first_1pct_batches": one_percent,
    }


def bare_loop(paths: np.ndarray, order: np.ndarray) -> float:
    """images/s of read + decode + batch with nothing else, in the same random order."""
    import tensorflow as tf

    def decode(path):
        return tf.io.decode_jpeg(tf.io.read_file(path), channels=3)

    ds = (
        tf.data.Dataset.from_tensor_slices(paths[order])
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE)
        .batch(FLAGS.batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    return _rate(iter(ds), FLAGS.batches)


def rss_probe(root: str, images: int) -> int:
    """Peak RSS (KiB) of streaming 300 batches from the first `images` files of `root` with --cache=none."""
    from tl_keras.vision import data as data_lib
    from tl_keras.vision.pipeline import IndexedSplit

    scan = data_lib.scan_image_folder(Path(root) / "tree")
    keep = np.linspace(0, len(scan.paths) - 1, images).astype(np.int64)  # every class, the tree thinned evenly
    indexed = IndexedSplit.from_files(np.array(scan.paths)[keep], scan.labels[keep], checked=True)  # as after the data check
    stream = data_lib.epoch_batches(indexed.dataset(), FLAGS.pixels, FLAGS.batch_size, seed=0, indexed=indexed, cache="none")
    for _ in stream.epoch(0).take(300):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv):
    if FLAGS.rss_probe:
        print(rss_probe(FLAGS.root, int(FLAGS.rss_probe)))
        return
    from tl_keras.vision import data as data_lib

    temporary = None if FLAGS.root else tempfile.TemporaryDirectory()
    root = Path(FLAGS.root or temporary.name) / "tree"
    try:
        made_s = make_tree(root, FLAGS.images, FLAGS.classes, FLAGS.pixels)
        scanned = time.perf_counter()
        splits = data_lib.load_image_folder(root, 0.0, 0.0, seed=FLAGS.seed)  # as a run loads it: scanned and checked
        scan_s = time.perf_counter() - scanned
        count = len(splits.train_labels)
        paths = np.array(splits.split_record["train"])
        rows = [measure_pipeline(splits, cache, FLAGS.classes, paths) for cache in ("none", "auto")]
        bare = float(np.median([r["bare_images_per_s"] for r in rows]))
        rss = {}
        for share in (0.25, 1.0):
            n = int(count * share)
            probe = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    f"--root={root.parent}",
                    f"--rss_probe={n}",
                    f"--pixels={FLAGS.pixels}",
                    f"--batch_size={FLAGS.batch_size}",
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)},
                check=True,
            )
            rss[n] = int(probe.stdout.strip().splitlines()[-1]) // 1024
    finally:
        if temporary is not None:
            temporary.cleanup()
    result = {
        "images": count, "classes": FLAGS.classes, "pixels": FLAGS.pixels, "batch_size": FLAGS.batch_size, "batches": FLAGS.batches,
        "seed": FLAGS.seed, "tree_written_s": round(made_s, 1), "scan_and_check_s": round(scan_s, 1), "bare_images_per_s": round(bare, 1),
        "pipelines": rows, "peak_rss_mib_cache_none": rss, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    print(f"\n{count} images, {FLAGS.classes} classes, {FLAGS.pixels} px, batch {FLAGS.batch_size}; bare read+decode {bare:.0f} images/s")
    print(f"{'cache':<7}{'distinct/batch (iid)':>22}{'ratio':>7}{'classes in 1st 1%':>19}{'images/s':>10}{'vs bare':>9}{'1st batch s':>13}")
    for r in rows:
        print(f"{r['cache']:<7}{r['distinct_per_batch']:>12.2f} ({r['iid_distinct_per_batch']:.2f}){r['mixing_ratio']:>8.3f}"
              f"{r['classes_in_first_1pct']:>18.0%}{r['images_per_s']:>10.0f}{r['vs_bare_read_decode']:>9.2f}{r['first_batch_s']:>13.1f}")
    print("peak RSS with --cache=none: " + ", ".join(f"{n} images {mib} MiB" for n, mib in rss.items()))
    out = Path(FLAGS.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
