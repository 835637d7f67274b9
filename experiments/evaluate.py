"""Evaluate a trained classifier: metrics.json, per_class.csv, confusion_matrix.png.

  python experiments/evaluate.py --model=runs/digits_5_9                 # the run's own test split
  python experiments/evaluate.py --model=saved_models/pets --image_dir=/data/pets_holdout
"""

import sys
from pathlib import Path

from absl import app, flags

flags.DEFINE_string("model", None, "A run folder, a .keras file, or an export folder.")
flags.DEFINE_string("image_dir", "", "Images to evaluate on, one sub-folder per class (default: the run's test split).")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Which split of the run to evaluate when --image_dir is not given.")
flags.DEFINE_string("output_dir", "", "Where the files go (default: <run>/evaluation_<split> or ./evaluation).")
flags.DEFINE_integer("batch_size", 64, "Images per batch.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras import data as data_lib
    from tl_keras.classes import ClassMismatchError, absent_classes, align, classes_or_error
    from tl_keras.evaluation import classification_metrics, predict_dataset, write_metrics
    from tl_keras.reload import backbone_of, classifier_file, load_classifier

    if not FLAGS.model:
        sys.exit("error: --model is required: a run folder, a .keras file or an export folder")
    try:
        model = load_classifier(FLAGS.model, "--model")
        class_names = classes_or_error(FLAGS.model, "--model")
    except ValueError as error:
        sys.exit(f"error: {error}")
    if len(class_names) != int(model.output_shape[-1]):
        sys.exit(f"error: --model: {len(class_names)} recorded classes but the model has {model.output_shape[-1]} outputs")
    size = backbone_of(model).input_size or 224
    run_dir = Path(FLAGS.model) if (Path(FLAGS.model) / "config.json").is_file() else None
    try:
        dataset, split_name, splits = data_lib.load_evaluation_data(FLAGS.image_dir, run_dir, FLAGS.split)
        # Folder labels are positions in the folder's own class list; the model's are positions in its list.
        to_model = align(class_names, splits.class_names, data=f"--image_dir {FLAGS.image_dir}" if FLAGS.image_dir else f"the run's {split_name} split")
    except (ValueError, ClassMismatchError) as error:
        sys.exit(f"error: {error}")
    for name in absent_classes(class_names, splits.class_names):
        print(f"warning: no images of class {name!r} in the evaluation data; its recall is undefined (reported as 0)", file=sys.stderr)
    probabilities, folder_labels = predict_dataset(model, data_lib.make_batches(dataset, size, FLAGS.batch_size, cache="none"))
    labels = to_model[folder_labels]
    metrics = classification_metrics(probabilities, labels, class_names)
    metrics.update({"split": split_name, "model": str(classifier_file(FLAGS.model, "--model"))})
    out = FLAGS.output_dir or (str(run_dir / f"evaluation_{split_name}") if run_dir else "evaluation")
    paths = write_metrics(metrics, out)
    print(f"{split_name}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro']['f1']:.4f} on {metrics['examples']} images")
    for name, row in metrics["per_class"].items():
        print(f"  {name}: precision {row['precision']:.3f} recall {row['recall']:.3f} f1 {row['f1']:.3f} ({row['support']})")
    print(f"metrics: {paths['metrics']}  confusion matrix: {paths['confusion_matrix']}")


if __name__ == "__main__":
    app.run(main)
