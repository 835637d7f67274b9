"""Fuse several trained classifiers into one model that averages their probabilities, report, export.

  python experiments/ensemble.py --models=runs/digits_5_9,runs/digits_5_9_student
  python experiments/ensemble.py --models=runs/a,runs/b,runs/c --weights=2,1,1 --image_dir=/data/holdout --name=pets_ensemble

Members may differ in backbone and input size (each resizes inside). The
evaluation data is --image_dir, or the first member's run's test split. The
ensemble is one SavedModel with the usual signatures, in
<export_dir>/<name>/<version>/, with ensemble_report.json beside this run's files.
"""

from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

flags.DEFINE_list("models", None, "Two or more classifiers: run folders, .keras files or export folders.")
flags.DEFINE_list("weights", [], "One weight per model (normalised); empty averages uniformly.")
flags.DEFINE_string("image_dir", "", "Images to evaluate on, one sub-folder per class (default: the first run's test split).")
flags.DEFINE_string("name", "ensemble", "Model name: runs/<name>/ and <export_dir>/<name>/.")
flags.DEFINE_string("export_dir", "saved_models", "Root of the TF Serving layout.")
flags.DEFINE_bool("export", True, "Export the ensemble as a SavedModel.")
flags.DEFINE_integer("batch_size", 64, "Images per batch.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    import tensorflow as tf

    from tl_keras.io import atomic
    from tl_keras.vision import data as data_lib
    from tl_keras.export.classes import align, classes_or_error
    from tl_keras.models.ensemble import build_ensemble, member_report
    from tl_keras.vision.serving import export_saved_model
    from tl_keras.models.anatomy import input_size_of
    from tl_keras.export.reload import load_classifier
    from tl_keras.io.run_folder import RunFolder

    if not FLAGS.models or len(FLAGS.models) < 2:
        cli.fail("--models needs two or more classifiers, comma-separated")
    try:
        weights = [float(w) for w in FLAGS.weights] or None
        members = [load_classifier(path, "--models") for path in FLAGS.models]
        member_classes = [classes_or_error(path, "--models") for path in FLAGS.models]
        class_names = member_classes[0]
        for path, names in zip(FLAGS.models[1:], member_classes[1:]):
            if names != class_names:
                raise ValueError(
                    f"--models: {path} predicts {names} but {FLAGS.models[0]} predicts {class_names}; "
                    "members must share the class list, in order"
                )
        ensemble = build_ensemble(members, weights=weights, name=FLAGS.name)
        scored = data_lib.load_evaluation_data(FLAGS.image_dir, Path(FLAGS.models[0]), run_flag="the first of --models")
        dataset, split_name = scored.dataset, scored.name
        where = f"--image_dir {FLAGS.image_dir}" if FLAGS.image_dir else f"the first run's {split_name} split"
        to_model = tf.constant(align(class_names, scored.class_names, data=where))
    except ValueError as error:
        cli.fail(f"{error}")
    size = max(input_size_of(m) for m in members)
    batches = data_lib.make_batches(dataset, size, FLAGS.batch_size, cache="none").map(lambda x, y: (x, tf.gather(to_model, y)))
    report = member_report(members, ensemble, batches)
    for row, path in zip(report["members"], FLAGS.models):
        row["path"] = path
    report.update({"evaluated_on": split_name, "weights": weights})
    run = RunFolder(Path("runs") / FLAGS.name)
    run.root.mkdir(parents=True, exist_ok=True)
    ensemble.save(run.model)
    if FLAGS.export:
        report["export"] = str(export_saved_model(ensemble, FLAGS.export_dir, FLAGS.name, class_names,
                                                  metadata={"provenance": {"ensemble_of": FLAGS.models, "member_weights": weights}}))
    atomic.write_json(run.root / "ensemble_report.json", report)
    for row in report["members"]:
        print(f"{row['path']:<40} accuracy {row['accuracy']:.4f}")
    print(f"{'ensemble':<40} accuracy {report['ensemble_accuracy']:.4f}  ({report['images']} {split_name} images)")
    if "export" in report:
        print(f"SavedModel: {report['export']}")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
