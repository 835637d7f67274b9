"""Memory and throughput of the data path at scale: texts by the hundred thousand and million, images from shards.

Each case runs in its own process, so its peak resident memory (ru_maxrss)
is its own. Cases:

  text:N         the run's text path on N sentences with the real
                 all-MiniLM-L6-v2 tokenizer (no encoder weights loaded: the
                 model's memory is left out): each text's length in pieces
                 (the sequence length and the batch plan need nothing
                 else), then one full training epoch of bucketed batches
                 tokenized, framed and padded inside tf.data.
  text_lists:N   the same with the representation the text path used
                 before: one NumPy array per text and a Python generator
                 padding each batch (kept here as the reference).
  images:MODE    one epoch of decoded, resized (160 px) training batches of
                 the cats-vs-dogs training photos, --cache=none, from the
                 class folders (`folder`) or from 8 TFRecord shards written
                 by make_records (`records`); the second of two epochs is
                 timed.

The N sentences are synthesised from the shared movie-review sentences by
joining the first half of one to the second half of another (seeded), so
their lengths and vocabulary are those of real sentences. 10M is projected
from the slope between 100k and 1M, not run. Prints a table and writes
benchmarks/results/scale.json.

  python benchmarks/scale.py --sentences=100000,1000000 --rounds=2
"""

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TL_KERAS_ASSETS", REPO.parent / "shared" / "assets"))

flags.DEFINE_string("sentences", "100000,1000000", "Sentence counts of the text cases.")
flags.DEFINE_integer("rounds", 2, "Repeats of each case (throughput reported as mean +- std).")
flags.DEFINE_string("cases", "text,text_lists,images", "Which case families to run.")
flags.DEFINE_string("case", "", "Internal: run one case in this process and print its JSON.")
flags.DEFINE_string("records_dir", "", "Internal: the image shards of the images:records case.")
flags.DEFINE_string("out", str(REPO / "benchmarks" / "results" / "scale.json"), "Results file.")
FLAGS = flags.FLAGS
BATCH = 32
IMAGE_SIZE = 160
ENCODER = ASSETS / "text_encoders" / "all-MiniLM-L6-v2"
SENTENCES = ASSETS / "text" / "sentence_polarity" / "split" / "train.tsv"
PHOTOS = ASSETS / "cats_and_dogs_filtered" / "train"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_sentences(count: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rows = [line.split("\t") for line in SENTENCES.read_text(encoding="utf-8").splitlines()[1:] if "\t" in line]
    words = [text.split() for text, _ in rows]
    labels = np.array([label.strip() == "pos" for _, label in rows], np.int32)
    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(words), count), rng.integers(0, len(words), count)
    texts = [" ".join(words[a][: len(words[a]) // 2] + words[b][len(words[b]) // 2:]) for a, b in zip(first, second)]
    return texts, labels[first]


def text_case(count: int, lists: bool) -> dict:
    from tl_keras.text import batches as batches_lib
    from tl_keras.text.tokenizer import TextTokenizer

    tokenizer = TextTokenizer.from_folder(ENCODER, sequence_length=128)
    tokenizer.word_pieces(["warm up the lookup table"])
    before = peak_mb()
    texts, labels = synthetic_sentences(count)
    after_texts = peak_mb()
    started = time.perf_counter()
    if lists:  # one array per text, as the text path kept them before
        ids = [np.concatenate([[tokenizer.cls_id], p[:126], [tokenizer.sep_id]]).astype(np.int32) for p in tokenizer.word_pieces(texts)]
    else:  # what the run does: lengths only, for the sequence length and the batch plan
        lengths = np.minimum(tokenizer.piece_lengths(texts), 126) + 2
    tokenize_s = time.perf_counter() - started
    after_ids = peak_mb()
    if lists:
        epoch = _generator_epoch(ids, labels, tokenizer.pad_id)
        steps = -(-count // BATCH)
    else:
        stream = batches_lib.text_training_batches(texts, lengths, labels, BATCH, tokenizer=tokenizer, seed=0)
        epoch, steps = stream.epoch(0), stream.steps_per_epoch
    started = time.perf_counter()
    seen = sum(int(x.shape[0]) for x, _ in epoch.as_numpy_iterator())
    epoch_s = time.perf_counter() - started
    assert seen == count, (seen, count)
    return {"sentences": count, "representation": "arrays per text + generator" if lists else "texts tokenized inside tf.data",
            "tokenize_us_per_sentence": 1e6 * tokenize_s / count, "epoch_tokenize": not lists,
            "epoch_s": epoch_s, "batches_per_s": steps / epoch_s,
            "sentences_per_s": count / epoch_s, "rss_before_mb": before, "texts_mb": after_texts - before,
            "ids_mb": after_ids - after_texts, "peak_rss_mb": peak_mb(), "data_path_mb": peak_mb() - before}


def _generator_epoch(ids, labels, pad_id):
    """The previous training batches: the same planned index lists, padded in a Python generator."""
    import tensorflow as tf

    from tl_keras.text import batches as batches_lib

    lengths = np.array([len(r) for r in ids])

    def generate():
        for index in batches_lib.epoch_order(lengths, BATCH, 0, 0):
            yield batches_lib.pad_batch([ids[i] for i in index], pad_id), labels[index]

    signature = (tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.int32))
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


def image_case(mode: str) -> dict:
    from tl_keras.config.settings import DataSettings
    from tl_keras.vision.data import epoch_batches, load_data

    before = peak_mb()
    data = DataSettings(records=FLAGS.records_dir) if mode == "records" else DataSettings(image_dir=str(PHOTOS))
    splits = load_data(data)
    stream = epoch_batches(splits.train, IMAGE_SIZE, BATCH, seed=0, indexed=splits.indexed.get("train"), cache="none",
                           num_examples=splits.size("train"), per_epoch=splits.epoch_sources.get("train"))
    times = []
    for epoch in (0, 1):
        started = time.perf_counter()
        count = sum(int(x.shape[0]) for x, _ in stream.epoch(epoch).as_numpy_iterator())
        times.append(time.perf_counter() - started)
    return {"mode": mode, "images": count, "epoch_s": times[1], "images_per_s": count / times[1], "first_epoch_s": times[0],
            "peak_rss_mb": peak_mb(), "data_path_mb": peak_mb() - before}


def run_case(case: str, records_dir: str = "") -> dict:
    command = [sys.executable, __file__, f"--case={case}", f"--records_dir={records_dir}"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_records() -> str:
    from tl_keras.config.settings import DataSettings
    from tl_keras.vision.data import load_data
    from tl_keras.vision.records import write_image_records

    folder = tempfile.mkdtemp(prefix="scale_records_")
    data = DataSettings(image_dir=str(PHOTOS))
    write_image_records(load_data(data), data, folder, 8)
    return folder


def mean_std(values) -> str:
    return f"{np.mean(values):.1f} +- {np.std(values):.1f}" if len(values) > 1 else f"{values[0]:.1f}"


def main(argv):
    del argv
    if FLAGS.case:
        kind, _, value = FLAGS.case.partition(":")
        result = image_case(value) if kind == "images" else text_case(int(value), lists=kind == "text_lists")
        print(json.dumps(result))
        return
    families = FLAGS.cases.split(",")
    results: dict = {"machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()}, "cases": {}}
    for count in [int(n) for n in FLAGS.sentences.split(",")]:
        for kind in ("text", "text_lists"):
            if kind in families:
                results["cases"][f"{kind}:{count}"] = [run_case(f"{kind}:{count}") for _ in range(FLAGS.rounds)]
    if "images" in families:
        records = write_records()
        for _ in range(FLAGS.rounds):  # rounds interleaved, so a change in the machine's load hits both alike
            for mode in ("folder", "records"):
                results["cases"].setdefault(f"images:{mode}", []).append(run_case(f"images:{mode}", records))
    _projection(results)
    print(_table(results))
    Path(FLAGS.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {FLAGS.out}")


def _projection(results: dict) -> None:
    """Peak memory at 10M sentences from the slope between the two largest counts run (linear: texts and ids are kept)."""
    for kind in ("text", "text_lists"):
        runs = sorted((int(k.split(":")[1]), np.mean([r["peak_rss_mb"] for r in v])) for k, v in results["cases"].items()
                      if k.startswith(kind + ":"))
        if len(runs) >= 2:
            (n1, m1), (n2, m2) = runs[-2], runs[-1]
            slope = (m2 - m1) / (n2 - n1)
            results.setdefault("projected_10m_peak_rss_mb", {})[kind] = m2 + slope * (10_000_000 - n2)
            results.setdefault("peak_rss_ratio", {})[kind] = {f"{n2}/{n1}": m2 / m1}


def _table(results: dict) -> str:
    lines = [f"{'case':<22}{'tokenize us/sent':>17}{'batches/s or img/s':>20}{'peak RSS MB':>13}{'data path MB':>14}"]
    for name, runs in results["cases"].items():
        rate = [r.get("batches_per_s", r.get("images_per_s")) for r in runs]
        tokenize = [r["tokenize_us_per_sentence"] for r in runs] if "tokenize_us_per_sentence" in runs[0] else None
        lines.append(f"{name:<22}{mean_std(tokenize) if tokenize else '-':>17}{mean_std(rate):>20}"
                     f"{np.mean([r['peak_rss_mb'] for r in runs]):>13.0f}{np.mean([r['data_path_mb'] for r in runs]):>14.0f}")
    for kind, value in results.get("projected_10m_peak_rss_mb", {}).items():
        ratio = next(iter(results["peak_rss_ratio"][kind].items()))
        lines.append(f"{kind}: peak RSS ratio {ratio[0]} = {ratio[1]:.2f}; projected at 10M sentences: {value:.0f} MB")
    return "\n".join(lines)


if __name__ == "__main__":
    app.run(main)
