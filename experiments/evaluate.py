"""Evaluate a trained classifier and show why it decides: metrics, mistakes, Grad-CAM, calibration, TTA, one report page.

Writes metrics.json, per_class.csv, confusion_matrix.png, per_class.png,
errors.png (+ errors/<class>.png), grad_cam.png, reliability.png and
report.html (self-contained; open it in a browser).

  python experiments/evaluate.py --model=runs/flowers                    # the run's own test split
  python experiments/evaluate.py --model=saved_models/pets --image_dir=/data/pets_holdout --tta=flip
"""

import sys
from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

from tl_keras.config.run_config import RunConfig
from tl_keras.io.run_folder import RunFolder
from tl_keras.vision.tta import TTA_MODES

flags.DEFINE_string("model", None, "A run folder, a .keras file, or an export folder.")
flags.DEFINE_string("image_dir", "", "Images to evaluate on, one sub-folder per class (default: the run's test split).")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Which split of the run to evaluate when --image_dir is not given.")
flags.DEFINE_string("output_dir", "", "Where the files go (default: <run>/evaluation_<split> or ./evaluation).")
flags.DEFINE_integer("batch_size", 64, "Images per batch.")
flags.DEFINE_enum("tta", "none", list(TTA_MODES),
                  "Also measure test-time augmentation: flip (image + mirror), crops (full + 4 corner crops), flip_crops (10 views).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.vision import data as data_lib
    from tl_keras.export.classes import ClassMismatchError, absent_classes, align, classes_or_error
    from tl_keras.vision.inspection import inspect_split
    from tl_keras.models.anatomy import input_size_of
    from tl_keras.export.reload import classifier_file, load_classifier

    if not FLAGS.model:
        cli.fail("--model is required: a run folder, a .keras file or an export folder")
    try:
        model = load_classifier(FLAGS.model, "--model")
        class_names = classes_or_error(FLAGS.model, "--model")
    except ValueError as error:
        cli.fail(f"{error}")
    if len(class_names) != int(model.output_shape[-1]):
        cli.fail(f"--model: {len(class_names)} recorded classes but the model has {model.output_shape[-1]} outputs")
    run_dir = Path(FLAGS.model) if RunFolder(FLAGS.model).is_run() else None
    from tl_keras.evaluation.task_report import recorded_target

    target = recorded_target(run_dir) if run_dir is not None else None
    if target is not None:
        _evaluate_tags_or_values(model, target, run_dir)
        return
    if run_dir is not None and RunConfig.from_dict(RunFolder(run_dir).read_config()).is_text():
        _evaluate_text_run(model, class_names, run_dir)
        return
    size = input_size_of(model)  # fusion and ensembles included: their largest input
    try:
        dataset, split_name, splits = data_lib.load_evaluation_data(FLAGS.image_dir, run_dir, FLAGS.split)
        # Folder labels are positions in the folder's own class list; the model's are positions in its list.
        to_model = align(
            class_names, splits.class_names, data=f"--image_dir {FLAGS.image_dir}" if FLAGS.image_dir else f"the run's {split_name} split"
        )
    except (ValueError, ClassMismatchError) as error:
        cli.fail(f"{error}")
    for name in absent_classes(class_names, splits.class_names):
        print(f"warning: no images of class {name!r} in the evaluation data; its recall is undefined (reported as 0)", file=sys.stderr)
    out = FLAGS.output_dir or (str(run_dir / f"evaluation_{split_name}") if run_dir else "evaluation")
    curves = RunFolder(run_dir).curves if run_dir and RunFolder(run_dir).curves.is_file() else None
    metrics = inspect_split(
        model, data_lib.make_batches(dataset, size, FLAGS.batch_size, cache="none"), class_names, out, split=split_name, label_map=to_model,
        tta=FLAGS.tta, curves=curves, title=f"{Path(FLAGS.model).name} on {FLAGS.image_dir or 'the ' + split_name + ' split'}",
        extra={"model": str(classifier_file(FLAGS.model, "--model"))},
    )
    print(f"{split_name}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro']['f1']:.4f}, "
          f"ECE {metrics['calibration']['ece']:.4f} on {metrics['examples']} images")
    for name, row in metrics["per_class"].items():
        print(f"  {name}: precision {row['precision']:.3f} recall {row['recall']:.3f} f1 {row['f1']:.3f} ({row['support']})")
    if "tta" in metrics:
        tta = metrics["tta"]
        print(f"TTA {tta['mode']} ({tta['views']} views): accuracy {tta['accuracy']:.4f} ({tta['gain']:+.4f})")
    print(f"report: {metrics['report']} (metrics.json beside it)")

def _evaluate_tags_or_values(model, target, run_dir: Path) -> None:
    """A multi-label or regression run's split scored again in its task's measures, at the thresholds the run chose."""

    from tl_keras.config.settings import DataSettings, settings_from
    from tl_keras.evaluation.metrics import predict_dataset
    from tl_keras.evaluation.task_report import evaluate_task_split

    if FLAGS.image_dir or FLAGS.tta != "none":
        cli.fail(f"--model={FLAGS.model} is a {target.kind} run: it is scored on its own splits (--split); --image_dir and --tta do "
                 "not apply")
    config = RunConfig.from_dict(RunFolder(run_dir).read_config())
    if config.is_text():
        from tl_keras.text import batches as batches_lib
        from tl_keras.text.export import TOKENIZER_FOLDER
        from tl_keras.text.run import read_recorded_splits
        from tl_keras.text.tokenizer import TextTokenizer

        splits = read_recorded_splits(config, run_dir)
        if not splits.has(FLAGS.split):
            cli.fail(f"--split={FLAGS.split}: the run has no {FLAGS.split} texts")
        tokenizer = TextTokenizer.load(run_dir / TOKENIZER_FOLDER)
        examples, targets = list(splits.texts[FLAGS.split]), splits.labels[FLAGS.split]
        outputs = batches_lib.predict_texts(model, tokenizer, examples, FLAGS.batch_size)
    else:
        from tl_keras.models.anatomy import input_size_of
        from tl_keras.vision import data as data_lib

        splits = data_lib.load_recorded(settings_from(DataSettings, config), run_dir)
        dataset = getattr(splits, FLAGS.split)
        if dataset is None:
            cli.fail(f"--split={FLAGS.split}: the run has no {FLAGS.split} images")
        outputs, trained = predict_dataset(model, data_lib.make_batches(dataset, input_size_of(model), FLAGS.batch_size, cache="none"))
        targets, examples = target.user_targets(trained), list(splits.split_record[FLAGS.split])
    out = FLAGS.output_dir or str(run_dir / f"evaluation_{FLAGS.split}")
    from tl_keras.vision.gallery import thumbnail_html

    metrics = evaluate_task_split(outputs, targets, target, examples, out, split=FLAGS.split,
                                  title=f"{run_dir.name} on the {FLAGS.split} split", noun="texts" if config.is_text() else "images",
                                  show=None if config.is_text() else thumbnail_html)
    print(f"{FLAGS.split}: " + ", ".join(f"{k} {v:.4f}" for k, v in target.task.scores(metrics).items()) + f" on {metrics['examples']}")
    print(f"report: {metrics['report']} (metrics.json beside it)")


def _evaluate_text_run(model, class_names, run_dir: Path) -> None:
    """A text run's split scored again: the run's own texts and tokenizer, the text evaluation files."""
    import numpy as np

    from tl_keras.export.classes import align
    from tl_keras.text import batches as batches_lib
    from tl_keras.text.evaluate import evaluate_text_split
    from tl_keras.text.export import TOKENIZER_FOLDER
    from tl_keras.text.run import read_recorded_splits
    from tl_keras.text.tokenizer import TextTokenizer

    if FLAGS.image_dir or FLAGS.tta != "none":
        cli.fail(f"--model={FLAGS.model} is a text run: --image_dir and --tta do not apply")
    splits = read_recorded_splits(RunConfig.from_dict(RunFolder(run_dir).read_config()), run_dir)
    if not splits.has(FLAGS.split):
        cli.fail(f"--split={FLAGS.split}: the run has no {FLAGS.split} texts")
    tokenizer = TextTokenizer.load(run_dir / TOKENIZER_FOLDER)
    # The data's labels are positions in its own class list; the model's columns are positions in the run's.
    to_model = align(class_names, splits.class_names, data=f"the run's {FLAGS.split} split")
    texts, labels = list(splits.texts[FLAGS.split]), to_model[np.asarray(splits.labels[FLAGS.split])]
    probabilities = batches_lib.predict_texts(model, tokenizer, texts, FLAGS.batch_size)
    out = FLAGS.output_dir or str(run_dir / f"evaluation_{FLAGS.split}")
    metrics = evaluate_text_split(probabilities, labels, texts, class_names, out, split=FLAGS.split,
                                  title=f"{run_dir.name} on the {FLAGS.split} split")
    print(f"{FLAGS.split}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro']['f1']:.4f} on {len(texts)} texts")
    print(f"report: {Path(out) / 'report.html'} (metrics.json beside it)")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
