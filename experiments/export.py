"""Export a trained classifier as a new TF Serving version: saved_models/<name>/<version>/.

  python experiments/export.py --model=runs/digits_5_9
  python experiments/export.py --model=my.keras --labels=labels.txt --name=pets --version=7
"""

from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

from tl_keras.io.run_folder import RunFolder
from tl_keras.vision.tta import TTA_MODES

flags.DEFINE_string("model", None, "A run folder (model.keras + summary.json), a .keras file, or an export to re-export.")
flags.DEFINE_string("labels", "", "Class names, one per line (taken from the run folder when empty).")
flags.DEFINE_string("name", "", "Model name (the run's name when empty).")
flags.DEFINE_string("export_dir", "saved_models", "Root of the TF Serving layout.")
flags.DEFINE_integer("version", 0, "Version number to write; 0 takes the next one. An existing version is refused.")
flags.DEFINE_integer("top_k", 5, "Classes listed in the 'classes' and 'scores' outputs.")
flags.DEFINE_bool("allow_new_classes", False, "Export even when the latest version of --name predicts other classes.")
flags.DEFINE_enum("tta", "none", list(TTA_MODES), "Add a serving_tta signature averaging these test-time views (none adds nothing).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.export.saved_model import read_labels_file
    from tl_keras.vision.serving import export_saved_model
    from tl_keras.export.reload import classifier_file, load_classifier

    if not FLAGS.model:
        cli.fail("--model is required: a run folder, a .keras file or an export folder")
    try:
        source = classifier_file(FLAGS.model, "--model")
    except ValueError as error:
        cli.fail(f"{error}")
    run = RunFolder(FLAGS.model) if Path(FLAGS.model).is_dir() else None
    summary = run.read_summary() if run and run.is_finished() else {}
    config = run.read_config() if run and run.is_run() else {}
    if FLAGS.labels:
        labels = read_labels_file(FLAGS.labels)
    elif summary.get("classes"):
        labels = summary["classes"]
    elif (source.parent / "labels.txt").is_file():
        labels = read_labels_file(source.parent / "labels.txt")
    else:
        cli.fail(f"no class names found beside {source}; pass --labels")
    name = FLAGS.name or summary.get("name") or source.stem
    metadata = {
        "source": str(source),
        "metrics": {f"{summary.get('evaluated_on', 'test')}_accuracy": summary.get("transfer_accuracy")},
        "config": config,
        "calibration": summary.get("calibration", {}),
    }
    try:
        path = export_saved_model(
            load_classifier(source),
            FLAGS.export_dir,
            name,
            labels,
            version=FLAGS.version or None,
            metadata=metadata,
            top_k=FLAGS.top_k,
            tta=FLAGS.tta,
            allow_new_classes=FLAGS.allow_new_classes,
        )
    except (ValueError, FileExistsError) as error:
        cli.fail(f"{error}")
    print(f"SavedModel: {path}")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
