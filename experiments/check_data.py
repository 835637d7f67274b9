"""Read every image or text of a data set once and report what is wrong, before any training.

  python experiments/check_data.py --image_dir=/data/photos --report=data_report.json
  python experiments/check_data.py --image_dir=/data/photos --labels_file=labels.csv   # tags or values per image
  python experiments/check_data.py --text_file=reviews.csv [--test_file=test.csv] [--backbone=ENCODER]

Unreadable files (empty, not images, truncated, corrupt) are listed and
would be skipped by training; convertible ones (CMYK, 16-bit, grayscale,
alpha, palette, animated) are listed as converted. Exact duplicates are
grouped, and flagged when they straddle the train/validation/test split
training would make with the same --seed and fractions.

Texts: the rows skipped (by file and line, and why), the classes per split
as training would split them, texts shared between splits, and the length of
the texts in words, or in the encoder's tokens with a text `--backbone`
(what `--max_sequence_length` would cut).
"""

import json

import sys

from absl import app, flags, logging

from tl_keras.config import cli  # first of TensorFlow's importers: tl_keras quiets its C++ logs before it loads
from tl_keras.vision import data as data_lib

import keras  # noqa: E402 - after tl_keras (see above)

cli.define_config_flags(only=(
    "image_dir", "labels_file", "task", "text_file", "text_dir", "validation_file", "test_file", "text_column", "label_column", "backbone",
    "max_sequence_length", "validation_fraction", "test_fraction", "seed", "min_images_per_class",
))
flags.DEFINE_string("report", "data_report.json", "Where to write the JSON report.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if FLAGS.text_file or FLAGS.text_dir:
        return check_texts()
    if not FLAGS.image_dir:
        cli.fail("--image_dir (a folder with one sub-folder of images per class), --text_file or --text_dir is required")
    if FLAGS.labels_file:
        return check_labels_file()
    bar = None

    def progress(done, total):
        nonlocal bar
        if not sys.stdout.isatty():  # a bar's control codes would garble a log file
            return
        if bar is None:
            bar = keras.utils.Progbar(total, unit_name="file")
        bar.update(done)

    try:
        data_lib.load_image_folder(
            FLAGS.image_dir, FLAGS.validation_fraction, FLAGS.test_fraction, FLAGS.seed,
            min_images_per_class=FLAGS.min_images_per_class, report_file=FLAGS.report, progress=progress,
        )
    except ValueError as error:
        cli.fail(f"{error}")
    report = json.loads(open(FLAGS.report).read())
    print(f"\n{report['files_usable']} of {report['files_checked']} files usable")
    width = max(len(name) for name in report["class_counts"])
    for name, count in report["class_counts"].items():
        print(f"  {name:<{width}}  {count}")
    for reason, paths in report["skipped"].items():
        print(f"skipped, {reason}: {len(paths)}  e.g. {paths[0]}")
    for note, paths in report["converted_or_noted"].items():
        print(f"kept, {note}: {len(paths)}")
    leaks = [g for g in report["duplicates"] if g["across_splits"]]
    print(f"duplicate groups: {len(report['duplicates'])} ({len(leaks)} across splits)")
    if report["empty_class_folders"]:
        print(f"empty class folders left out: {', '.join(report['empty_class_folders'])}")
    print(f"report: {FLAGS.report}")


def check_labels_file() -> None:
    """Images a labels file names: which task its labels make, the rows left out and why, and what each split would hold."""
    from tl_keras.config.settings import ConfigError
    from tl_keras.io import atomic
    from tl_keras.vision.labels_file import load_labelled_images, read_labels_file

    logging.set_verbosity(logging.ERROR)  # the problems are printed below, once
    try:
        found = read_labels_file(FLAGS.labels_file, FLAGS.image_dir)
        splits, spec = load_labelled_images(FLAGS.image_dir, FLAGS.labels_file, task=FLAGS.task, seed=FLAGS.seed,
                                            validation_fraction=FLAGS.validation_fraction, test_fraction=FLAGS.test_fraction)
    except (ConfigError, ValueError) as error:
        cli.fail(f"{error}")
    atomic.write_json(FLAGS.report, {"task": spec.to_dict(), "counts": splits.counts, "problems": found.problems})
    print(f"\n{spec.describe()}: {spec.decided}")
    print(f"{_count(len(found.paths), 'image')} labelled; {_count(len(found.problems), 'problem')}")
    for problem in found.problems[:5]:
        print(f"  {problem}")
    width = max(len(name) for name in spec.names)
    print(f"  {'':<{width}}" + "".join(f"{split:>12}" for split in splits.counts))
    for name in spec.names:
        print(f"  {name:<{width}}" + "".join(f"{splits.counts[split][name]:>12}" for split in splits.counts))
    print(f"report: {FLAGS.report}")


def check_texts() -> None:
    """The text half: what training would read, split and cut, without training."""
    from tl_keras.config.settings import ConfigError
    from tl_keras.io import atomic
    from tl_keras.text.data import duplicates_across_splits, length_report
    from tl_keras.text.run import read_splits

    config = cli.config_from_flags()
    logging.set_verbosity(logging.ERROR)  # the skipped rows are printed below, once
    try:
        splits = read_splits(config)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        cli.fail(f"{error}")
    lengths, unit = _text_lengths(config, splits)
    counts = splits.counts
    report = {
        "skipped": splits.problems, "class_names": splits.class_names, "counts": counts,
        "duplicates_in_train": duplicates_across_splits(splits),
        "lengths": {split: length_report(values, config.max_sequence_length or 0) for split, values in lengths.items() if values},
        "length_unit": unit,
    }
    atomic.write_json(FLAGS.report, report)
    usable = sum(len(t) for t in splits.texts.values())
    if splits.target.decided:
        print(f"\n{splits.target.describe()}: {splits.target.decided}")
    print(f"\n{_count(usable, 'text')} usable, {_count(len(splits.problems), 'line')} skipped")
    for problem in splits.problems[:5]:
        print(f"  {problem}")
    width = max(len(name) for name in splits.class_names)
    print(f"  {'class':<{width}}" + "".join(f"{split:>12}" for split in counts))
    for name in splits.class_names:
        print(f"  {name:<{width}}" + "".join(f"{counts[split][name]:>12}" for split in counts))
    for split, shared in report["duplicates_in_train"].items():
        print(f"{split}: {_count(shared, 'text')} also in train" if shared else f"{split}: no text also in train")
    train = report["lengths"].get("train", {})
    if train:
        cut = f"; {train['truncated']} longer than --max_sequence_length={config.max_sequence_length}" if config.max_sequence_length else ""
        print(f"train lengths in {unit}: median {train['percentiles']['50']}, 99% {train['percentiles']['99']}, "
              f"longest {train['percentiles']['100']}{cut}")
    print(f"report: {FLAGS.report}")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _text_lengths(config, splits) -> tuple[dict[str, list[int]], str]:
    """Per split, each text's length: in the encoder's tokens ([CLS] and [SEP] included) with a text --backbone, else in words."""
    from tl_keras.text.encoders import is_text_backbone, load_text_encoder

    if config.backbone and is_text_backbone(config.backbone):
        tokenizer = load_text_encoder(config.backbone).tokenizer
        return {split: [len(p) + 2 for p in tokenizer.word_pieces(texts)] for split, texts in splits.texts.items()}, "tokens"
    return {split: [len(t.split()) for t in texts] for split, texts in splits.texts.items()}, "words"


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
