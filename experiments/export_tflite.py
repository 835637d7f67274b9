"""Convert an export to TFLite (float32, float16, dynamic-range, int8) and check each file against Keras.

  python experiments/export_tflite.py --run_dir=runs/digits_5_9
  python experiments/export_tflite.py --saved_model=saved_models/pets --image_dir=/data/pets_holdout \
      --representative_dir=/data/pets_train --int8_io=int8
  python experiments/export_tflite.py --run_dir=runs/reviews      # a text run: string-in and ids-in files

A text export gets two forms (`--text_forms`): string in, with the tokenizer
inside (TensorFlow Text custom ops), and token ids in (builtin ops; vocab.txt
beside it), each float32, float16 and dynamic-range.

With --run_dir, the run's own test split (or validation) is the held-out set
and its training split calibrates int8. Fails when a variant's top-1
agreement with the Keras model is below --min_agreement (default 0.99 for
float16/dynamic-range, 0.97 for int8).
"""

import sys
from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

flags.DEFINE_string("run_dir", "", "A training run folder (config.json, split.json, summary.json naming its export).")
flags.DEFINE_string("saved_model", "", "Export to convert: a model folder (latest version) or a version folder. Default: the run's export.")
flags.DEFINE_string("image_dir", "", "Held-out images, one sub-folder per class (instead of the run's test split).")
flags.DEFINE_string("representative_dir", "", "Images to calibrate int8 on (instead of the run's training split).")
flags.DEFINE_list("variants", ["float32", "float16", "dynamic_range", "int8"], "Variants to write.")
flags.DEFINE_enum("int8_io", "uint8", ["uint8", "int8"], "Input/output type of the int8 variant.")
flags.DEFINE_integer("representative_count", 200, "Calibration images, drawn evenly across classes (100-500 is typical).")
flags.DEFINE_integer("max_images", 1000, "Held-out images to check on, at most.")
flags.DEFINE_float("min_agreement", 0.0, "Minimum top-1 agreement with Keras for every variant; 0 uses each variant's default.")
flags.DEFINE_list("text_forms", ["string", "ids"], "Text exports: string (tokenizer inside) and/or ids (token ids in).")
flags.DEFINE_string("text_file", "", "Text exports: held-out labelled texts (CSV/TSV/JSON Lines) instead of the run's test split.")
flags.DEFINE_string("output_dir", "", "Where the .tflite files go (default: <run_dir>/tflite_v<N> or beside the export, N its version).")
FLAGS = flags.FLAGS


def _scored_arrays(splits, split, size, limit, class_names, where):
    """Up to `limit` images of a split (evenly across classes), labels mapped onto the model's classes by name; a run of tags or
    values keeps its targets, in the user's units."""
    from tl_keras.vision import data as data_lib
    from tl_keras.export.classes import align

    images, labels = data_lib.sample_arrays(splits, split, size, limit)
    if splits.target is not None:
        return images, splits.target.user_targets(labels)
    to_model = align(class_names, splits.class_names, data=where)
    return images, to_model[labels]


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.vision import data as data_lib
    from tl_keras.vision import tflite
    from tl_keras.config.run_config import RunConfig
    from tl_keras.config.settings import DataSettings, settings_from
    from tl_keras.export.saved_model import latest_version_dir, read_labels
    from tl_keras.models.anatomy import input_size_of
    from tl_keras.export.reload import load_classifier
    from tl_keras.io.run_folder import RunFolder

    unknown = [v for v in FLAGS.variants if v not in tflite.VARIANTS]
    if unknown:
        cli.fail(f"--variants: unknown {unknown}; known: {', '.join(tflite.VARIANTS)}")
    config = None
    if FLAGS.run_dir:
        run = RunFolder(FLAGS.run_dir)
        if not run.is_run():
            cli.fail(f"--run_dir: no config.json in {FLAGS.run_dir}")
        config = RunConfig.from_dict(run.read_config())
    saved_model = FLAGS.saved_model
    if not saved_model and config is not None:
        if not run.is_finished():
            cli.fail(f"--run_dir {FLAGS.run_dir} has no summary.json (unfinished run?); pass --saved_model")
        saved_model = run.read_summary().get("export", "")
    if not saved_model:
        cli.fail("pass --saved_model (or a --run_dir that exported one)")
    try:
        version_dir = latest_version_dir(saved_model)
    except ValueError as error:
        cli.fail(f"--saved_model: {error}")
    class_names = read_labels(version_dir)
    # Named by version: converting version 2 must not overwrite version 1's files and parity report.
    out_dir = FLAGS.output_dir or str((Path(FLAGS.run_dir) if FLAGS.run_dir else version_dir.parent) / f"tflite_v{version_dir.name}")
    if _is_text_export(version_dir):
        _export_text(version_dir, out_dir, class_names, config)
        return
    size = input_size_of(load_classifier(version_dir))  # fusion and ensembles: their largest input
    try:
        run_splits = data_lib.load_recorded(settings_from(DataSettings, config), FLAGS.run_dir) if config is not None else None
        if FLAGS.image_dir:
            held = data_lib.load_image_folder(FLAGS.image_dir, 0.0, 0.0)
            images, labels = _scored_arrays(held, "train", size, FLAGS.max_images, class_names, f"--image_dir {FLAGS.image_dir}")
        elif run_splits is not None:
            split = "test" if run_splits.test is not None else "validation"
            images, labels = _scored_arrays(run_splits, split, size, FLAGS.max_images, class_names, f"the run's {split} split")
        else:
            cli.fail("pass --image_dir (held-out images) or --run_dir")
        if FLAGS.representative_dir:
            calibration = data_lib.load_image_folder(FLAGS.representative_dir, 0.0, 0.0)
            representative, _ = data_lib.sample_arrays(calibration, "train", size, FLAGS.representative_count)
        elif run_splits is not None:
            representative, _ = data_lib.sample_arrays(run_splits, "train", size, FLAGS.representative_count)
        else:
            representative = tflite.representative_sample(images, labels, FLAGS.representative_count)
            print("warning: calibrating int8 on the held-out images; pass --representative_dir to keep them apart", file=sys.stderr)
    except ValueError as error:
        cli.fail(f"{error}")
    minimum = {v: FLAGS.min_agreement for v in tflite.VARIANTS} if FLAGS.min_agreement else None
    report = tflite.export_tflite(
        version_dir, out_dir, images, labels, class_names, representative=representative,
        variants=FLAGS.variants, int8_io=FLAGS.int8_io, min_agreement=minimum,
    )
    print(tflite.format_report(report))
    print(f"report: {out_dir}/tflite_report.json")
    if report["failures"]:
        cli.fail("below --min_agreement: " + "; ".join(report["failures"]))


def _is_text_export(version_dir) -> bool:
    import json

    card = Path(version_dir) / "assets.extra" / "model_card.json"
    return card.is_file() and json.loads(card.read_text()).get("model_kind") == "text"


def _export_text(version_dir, out_dir, class_names, config):
    """A text export's two TFLite forms, checked on the run's held-out texts or --text_file."""
    import numpy as np

    from tl_keras.export.classes import align
    from tl_keras.text import tflite as text_tflite
    from tl_keras.text.data import load_text_splits
    from tl_keras.text.run import read_recorded_splits
    from tl_keras.export.tflite import format_report

    unknown = [f for f in FLAGS.text_forms if f not in text_tflite.FORMS]
    if unknown:
        cli.fail(f"--text_forms: unknown {unknown}; known: {', '.join(text_tflite.FORMS)}")
    variants = [v for v in FLAGS.variants if v in text_tflite.TEXT_VARIANTS]
    if FLAGS.text_file:
        splits, split, where = load_text_splits(FLAGS.text_file, validation_fraction=0.0, test_fraction=0.0), "train", "--text_file"
    elif config is not None:
        splits = read_recorded_splits(config, FLAGS.run_dir)
        split = "test" if splits.has("test") else "validation"
        where = f"the run's {split} split"
    else:
        cli.fail("pass --text_file (held-out labelled texts) or --run_dir")
    texts, labels = list(splits.texts[split]), np.asarray(splits.labels[split])
    if splits.target.kind == "single_label":  # tags and values are read in the model's own order and units
        labels = align(class_names, splits.class_names, data=where)[labels]
    keep = np.linspace(0, len(texts) - 1, min(FLAGS.max_images, len(texts))).astype(int)
    minimum = {v: FLAGS.min_agreement for v in variants} if FLAGS.min_agreement else None
    report = text_tflite.export_text_tflite(
        version_dir, out_dir, [texts[i] for i in keep], labels[keep], class_names, forms=FLAGS.text_forms, variants=variants,
        min_agreement=minimum,
    )
    print(format_report(report))
    print(f"report: {out_dir}/tflite_report.json")
    if report["failures"]:
        cli.fail("below --min_agreement: " + "; ".join(report["failures"]))


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
