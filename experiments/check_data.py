"""Decode every image of a class-per-folder tree once and report what is wrong.

  python experiments/check_data.py --image_dir=/data/photos --report=data_report.json

Unreadable files (empty, not images, truncated, corrupt) are listed and
would be skipped by training; convertible ones (CMYK, 16-bit, grayscale,
alpha, palette, animated) are listed as converted. Exact duplicates are
grouped, and flagged when they straddle the train/validation/test split
training would make with the same --seed and fractions.
"""

import json

import sys

from absl import app, flags

from tl_keras.config import cli  # first of TensorFlow's importers: tl_keras quiets its C++ logs before it loads
from tl_keras.vision import data as data_lib

import keras  # noqa: E402 - after tl_keras (see above)

cli.define_config_flags(only=("image_dir", "validation_fraction", "test_fraction", "seed", "min_images_per_class"))
flags.DEFINE_string("report", "data_report.json", "Where to write the JSON report.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if not FLAGS.image_dir:
        cli.fail("--image_dir is required: a folder with one sub-folder of images per class")
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


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
