"""Convert an export to TFLite (float32, float16, dynamic-range, int8) and check each file against Keras.

  python experiments/export_tflite.py --run_dir=runs/digits_5_9
  python experiments/export_tflite.py --saved_model=saved_models/pets --image_dir=/data/pets_holdout \
      --representative_dir=/data/pets_train --int8_io=int8
  python experiments/export_tflite.py --run_dir=runs/reviews      # a text run: string-in and ids-in files
  python experiments/export_tflite.py --run_dir=runs/spoken_digits  # a sound run: waveform in, front end inside

A text export gets two forms (`--text_forms`): string in, with the tokenizer
inside (TensorFlow Text custom ops), and token ids in (builtin ops; vocab.txt
beside it), each float32, float16 and dynamic-range. A sound export gets one
form, float32 waveform at the model's rate in, the log-mel front end inside,
as float32, float16 and dynamic-range, and int8 (the network quantized, the
front end kept in float) when --variants names it. The export's modality
(its model card says which) converts it.

With --run_dir, the run's own test split (or validation) is the held-out set
and its training split calibrates int8. Fails when a variant's top-1
agreement with the Keras model is below --min_agreement (default 0.99 for
float16/dynamic-range, 0.97 for int8).
"""

import tempfile
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
flags.DEFINE_integer("max_images", 1000, "Held-out images (texts, clips) to check on, at most.")
flags.DEFINE_float("min_agreement", 0.0, "Minimum top-1 agreement with Keras for every variant; 0 uses each variant's default.")
flags.DEFINE_list("text_forms", ["string", "ids"], "Text exports: string (tokenizer inside) and/or ids (token ids in).")
flags.DEFINE_string("text_file", "", "Text exports: held-out labelled texts (CSV/TSV/JSON Lines) instead of the run's test split.")
flags.DEFINE_string("output_dir", "", "Where the .tflite files go (default: <run_dir>/tflite_v<N> or beside the export, N its version).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.config.modalities import modality_of_record
    from tl_keras.config.run_config import RunConfig
    from tl_keras.config.settings import ConfigError
    from tl_keras.export.saved_model import latest_version_dir, read_labels
    from tl_keras.export.tflite import format_report
    from tl_keras.io.run_folder import RunFolder

    from tl_keras.io import storage
    from tl_keras.io.mirror import local_copy, working_copy

    with working_copy(FLAGS.run_dir) as run_dir:  # a run on an object store: its TFLite folder lands there too
        config = None
        if run_dir:
            run = RunFolder(run_dir)
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
            remote_version = latest_version_dir(saved_model) if storage.is_remote(saved_model) else None
            version_dir = Path(local_copy(remote_version, refresh=True)) if remote_version else latest_version_dir(saved_model)
        except ValueError as error:
            cli.fail(f"--saved_model: {error}")
        class_names = read_labels(version_dir)
        # Named by version: converting version 2 must not overwrite version 1's files and parity report.
        beside = storage.parent_of(remote_version) if remote_version else str(version_dir.parent)
        out_dir = FLAGS.output_dir or (storage.join(run_dir, f"tflite_v{version_dir.name}") if run_dir
                                       else storage.join(beside, f"tflite_v{version_dir.name}"))
        written = out_dir if not storage.is_remote(out_dir) else tempfile.mkdtemp(prefix="tflite_")
        options = {"variants": FLAGS.variants, "variants_given": FLAGS["variants"].present, "image_dir": FLAGS.image_dir,
                   "representative_dir": FLAGS.representative_dir, "representative_count": FLAGS.representative_count,
                   "int8_io": FLAGS.int8_io, "max_examples": FLAGS.max_images, "min_agreement": FLAGS.min_agreement,
                   "text_forms": FLAGS.text_forms, "text_file": FLAGS.text_file}
        try:
            report = modality_of_record(_card(version_dir)).hook("tflite")(version_dir, written, class_names, config, run_dir, options)
        except (ConfigError, ValueError) as error:
            cli.fail(f"{error}")
        if written != out_dir:  # converters write local files; the folder is then copied to the store whole
            storage.remove_tree(out_dir)
            storage.publish_tree(written, out_dir)
    print(format_report(report))
    shown = FLAGS.output_dir or (storage.join(FLAGS.run_dir, f"tflite_v{version_dir.name}") if FLAGS.run_dir else out_dir)
    print(f"report: {shown}/tflite_report.json")
    if report["failures"]:
        cli.fail("below --min_agreement: " + "; ".join(report["failures"]))


def _card(version_dir) -> dict:
    """The export's model card (empty for an export without one)."""
    import json

    card = Path(version_dir) / "assets.extra" / "model_card.json"
    return json.loads(card.read_text()) if card.is_file() else {}


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
