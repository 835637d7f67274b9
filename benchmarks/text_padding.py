"""Fine-tuning throughput of a text encoder by how batches are padded: to the sequence length, per batch, per sorted batch.

The same classifier (all-MiniLM-L6-v2, mean pooling) fine-tunes for one
epoch on the first N movie-review sentences three ways, rounds interleaved
so load on the machine hits each alike:
  global    every batch padded to the recorded sequence length (99% cover);
  per_batch every batch padded to its own longest sentence, shuffled order;
  bucketed  per batch, sorted by length within windows of 50 batches (the run's way).
Each mode first runs one untimed epoch (so every batch width it produces is
traced). Prints sentences/s per mode (mean +- std over rounds) and the
padded tokens per real token; writes benchmarks/results/text_padding.json.

  python benchmarks/text_padding.py --sentences=640 --rounds=2
"""

import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from tl_keras.config import cli  # noqa: F401 - quiets TensorFlow's C++ logs before TensorFlow loads

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TL_KERAS_ASSETS", REPO.parent / "shared" / "assets"))

flags.DEFINE_string("train_file", str(ASSETS / "text" / "sentence_polarity" / "split" / "train.tsv"), "Labelled sentences (TSV).")
flags.DEFINE_string("backbone", str(ASSETS / "text_encoders" / "all-MiniLM-L6-v2"), "Text encoder.")
flags.DEFINE_integer("sentences", 640, "Sentences per epoch.")
flags.DEFINE_integer("batch_size", 32, "Batch size.")
flags.DEFINE_integer("rounds", 2, "Epochs timed per mode (interleaved).")
flags.DEFINE_string("out", str(REPO / "benchmarks" / "results" / "text_padding.json"), "Results file.")
FLAGS = flags.FLAGS
MODES = ("global", "per_batch", "bucketed")


def main(argv):
    del argv
    import keras

    from tl_keras.text import batches as batches_lib
    from tl_keras.text.data import covering_length
    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.model import build_text_classifier
    from tl_keras.text.sources import read_text_file

    rows = read_text_file(FLAGS.train_file)
    texts, names = rows.texts[: FLAGS.sentences], rows.labels[: FLAGS.sentences]
    labels = np.array([sorted(set(names)).index(n) for n in names], np.int32)
    encoder = load_text_encoder(FLAGS.backbone, sequence_length=512)
    lengths = [len(r) + 2 for r in encoder.tokenizer.word_pieces(texts)]
    length = covering_length(lengths, 512)
    encoder = load_text_encoder(FLAGS.backbone, sequence_length=length)
    ids = encoder.tokenizer.encode(texts)
    pad = encoder.tokenizer.pad_id
    full = [np.concatenate([r, np.full(length - len(r), pad, np.int32)]) for r in ids]
    keras.utils.set_random_seed(0)
    model = build_text_classifier(encoder, 2)
    model.compile(keras.optimizers.AdamW(1e-5), "sparse_categorical_crossentropy")
    streams = {
        "global": batches_lib.training_batches(full, labels, FLAGS.batch_size, pad_id=pad, seed=0, bucket=False),
        "per_batch": batches_lib.training_batches(ids, labels, FLAGS.batch_size, pad_id=pad, seed=0, bucket=False),
        "bucketed": batches_lib.training_batches(ids, labels, FLAGS.batch_size, pad_id=pad, seed=0, bucket=True),
    }
    padded_tokens = {}
    for mode, stream in streams.items():
        widths = [x.shape[1] * x.shape[0] for x, _ in stream.epoch(0).as_numpy_iterator()]
        padded_tokens[mode] = sum(widths) / sum(len(r) for r in ids)
        # One untimed epoch per mode first: every batch width this mode produces is traced before the clock runs.
        model.fit(stream.epoch(0).repeat(), epochs=1, steps_per_epoch=stream.steps_per_epoch, verbose=0, shuffle=False)
    speeds = {mode: [] for mode in MODES}
    for round_index in range(FLAGS.rounds):
        for mode in MODES:
            started = time.perf_counter()
            epoch = streams[mode].epoch(round_index + 1).repeat()  # stated steps: no "ran out of data" at the epoch's end
            model.fit(epoch, epochs=1, steps_per_epoch=streams[mode].steps_per_epoch, verbose=0, shuffle=False)
            speeds[mode].append(len(texts) / (time.perf_counter() - started))
    rows_out = [
        {"mode": m, "sentences_per_s": float(np.mean(speeds[m])), "std": float(np.std(speeds[m])), "runs": speeds[m],
         "padded_tokens_per_real_token": padded_tokens[m], "speedup_vs_global": float(np.mean(speeds[m]) / np.mean(speeds["global"]))}
        for m in MODES
    ]
    print(f"sequence length {length} (covers 99% of {len(texts)} sentences), batch {FLAGS.batch_size}, {FLAGS.rounds} rounds")
    print(f"{'mode':<11}{'sentences/s':>14}{'x global':>10}{'tokens/real':>13}")
    for r in rows_out:
        print(f"{r['mode']:<11}{r['sentences_per_s']:>8.1f} +- {r['std']:<4.1f}{r['speedup_vs_global']:>9.2f}"
              f"{r['padded_tokens_per_real_token']:>13.2f}")
    out = Path(FLAGS.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "rows": rows_out, "sequence_length": length, "sentences": len(texts), "batch_size": FLAGS.batch_size,
        "backbone": Path(FLAGS.backbone).name, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }, indent=1) + "\n")


if __name__ == "__main__":
    app.run(main)
