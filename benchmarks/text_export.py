"""A text export in production form: the raw-string SavedModel and every TFLite file, against the Keras model.

On the sentence-polarity test split (or --text_file): for the SavedModel's
string signature, its size, median latency per sentence (batch 1) and
sentences/s (batch 32); for each TFLite form (string in, ids in) and
variant, the parity report of experiments/export_tflite.py (agreement with
Keras, max and mean probability difference, size, median latency per
sentence). Prints a table; writes benchmarks/results/text_export.json.

  python experiments/train.py --text_file=$MR/train.tsv --test_file=$MR/test.tsv --backbone=$MINILM --export_dir=saved_models
  python benchmarks/text_export.py --saved_model=saved_models/train
"""

import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from tl_keras.config import cli  # noqa: F401 - quiets TensorFlow's C++ logs before TensorFlow loads

REPO = Path(__file__).resolve().parents[1]
ASSETS = Path(os.environ.get("TL_KERAS_ASSETS", REPO.parent / "shared" / "assets"))

flags.DEFINE_string("saved_model", "", "A text export: model folder (latest version) or version folder.")
flags.DEFINE_string("text_file", str(ASSETS / "text" / "sentence_polarity" / "split" / "test.tsv"), "Held-out labelled sentences.")
flags.DEFINE_integer("max_texts", 1000, "Sentences checked, at most (evenly spread over the file).")
flags.DEFINE_list("variants", ["float32", "float16", "dynamic_range"], "TFLite variants.")
flags.DEFINE_string("out", str(REPO / "benchmarks" / "results" / "text_export.json"), "Results file.")
FLAGS = flags.FLAGS


def saved_model_row(version_dir: Path, texts: list[str], keras_probabilities: np.ndarray) -> dict:
    import tensorflow as tf
    import tensorflow_text  # noqa: F401 - the tokenizer ops

    served = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    probabilities = np.concatenate([served(text=tf.constant(texts[i : i + 32]))["probabilities"].numpy() for i in range(0, len(texts), 32)])
    single = []
    for text in texts[:31]:
        started = time.perf_counter()
        served(text=tf.constant([text]))
        single.append((time.perf_counter() - started) * 1000)
    batches = [texts[i : i + 32] for i in range(0, min(len(texts), 320), 32)]
    started = time.perf_counter()
    for batch in batches:
        served(text=tf.constant(batch))
    rate = sum(len(b) for b in batches) / (time.perf_counter() - started)
    files = [p for p in version_dir.rglob("*") if p.is_file()]
    difference = np.abs(probabilities - keras_probabilities)
    return {
        "variant": "saved_model/string", "size_bytes": sum(p.stat().st_size for p in files if "assets.extra" not in p.parts),
        "size_with_extras_bytes": sum(p.stat().st_size for p in files), "median_latency_ms": statistics.median(single[1:]),
        "sentences_per_s_batch32": rate, "agreement": float(np.mean(probabilities.argmax(1) == keras_probabilities.argmax(1))),
        "max_abs_diff": float(difference.max()), "mean_abs_diff": float(difference.mean()),
    }


def main(argv):
    del argv
    from tl_keras.export.saved_model import latest_version_dir, read_labels
    from tl_keras.text import tflite as text_tflite
    from tl_keras.text.sources import read_text_file

    version_dir = latest_version_dir(FLAGS.saved_model)
    class_names = read_labels(version_dir)
    rows = read_text_file(FLAGS.text_file)
    keep = np.linspace(0, len(rows.texts) - 1, min(FLAGS.max_texts, len(rows.texts))).astype(int)
    texts = [rows.texts[i] for i in keep]
    labels = np.array([class_names.index(rows.labels[i]) for i in keep])
    with tempfile.TemporaryDirectory() as tmp:
        report = text_tflite.export_text_tflite(version_dir, tmp, texts, labels, class_names, variants=FLAGS.variants)
        keras_probabilities = text_tflite.keras_probabilities_of(version_dir, texts)
    results = [saved_model_row(version_dir, texts, keras_probabilities)] + [
        {k: r[k] for k in ("variant", "size_bytes", "median_latency_ms", "agreement", "max_abs_diff", "mean_abs_diff", "accuracy",
                           "interpreter")}
        for r in report["variants"]
    ]
    keras_accuracy = report["variants"][0]["keras_accuracy"]
    print(f"{len(texts)} sentences, sequence length {report['sequence_length']}; Keras accuracy {keras_accuracy:.3f}")
    print(f"{'form':<26}{'size MB':>9}{'ms/sent':>9}{'sent/s@32':>11}{'agree':>8}{'max|dp|':>10}")
    for r in results:
        rate = f"{r['sentences_per_s_batch32']:.0f}" if "sentences_per_s_batch32" in r else "-"
        print(f"{r['variant']:<26}{r['size_bytes'] / 1e6:>9.1f}{r['median_latency_ms']:>9.2f}{rate:>11}{r['agreement']:>8.4f}"
              f"{r['max_abs_diff']:>10.5f}")
    out = Path(FLAGS.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "saved_model": str(version_dir), "texts": len(texts), "sequence_length": report["sequence_length"], "rows": results,
        "failures": report["failures"], "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }, indent=1) + "\n")


if __name__ == "__main__":
    app.run(main)
