"""Evaluate a trained classifier: metrics.json, per_class.csv, confusion_matrix.png.

  python experiments/evaluate.py --model=runs/digits_5_9                 # the run's own test split
  python experiments/evaluate.py --model=saved_models/pets --image_dir=/data/pets_holdout
"""

import json
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
    from tl_keras.evaluation import classification_metrics, predict_dataset, write_metrics
    from tl_keras.reload import backbone_of, classifier_file, load_classifier

    if not FLAGS.model:
        sys.exit("error: --model is required: a run folder, a .keras file or an export folder")
    try:
        model = load_classifier(FLAGS.model, "--model")
    except ValueError as error:
        sys.exit(f"error: {error}")
    size = backbone_of(model).input_size or 224
    run_dir = Path(FLAGS.model) if (Path(FLAGS.model) / "config.json").is_file() else None
    try:
        dataset, split_name, splits = data_lib.load_evaluation_data(FLAGS.image_dir, run_dir, FLAGS.split)
    except ValueError as error:
        sys.exit(f"error: {error}")
    summary = json.loads((run_dir / "summary.json").read_text()) if run_dir and (run_dir / "summary.json").is_file() else {}
    class_names = summary.get("classes") or splits.class_names
    if FLAGS.image_dir and class_names != splits.class_names:
        sys.exit(f"error: --image_dir classes {splits.class_names} differ from the model's {class_names}")
    probabilities, labels = predict_dataset(model, data_lib.make_batches(dataset, size, FLAGS.batch_size, cache="none"))
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
