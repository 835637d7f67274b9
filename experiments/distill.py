"""Distil a trained teacher into a smaller student; report teacher, student from labels and distilled student.

  python experiments/train.py && python experiments/distill.py      # the embedded default: MobileNetV2 0.35 at 160 px -> at 128 px
  python experiments/distill.py --teacher=runs/flowers --image_dir=/data/flowers \
      --backbone=mobilenet_v3_small --weights=imagenet --temperature=4

Takes every training flag of experiments/train.py for the student and the
data; the teacher is any classifier of ours (.keras file, run folder or
export). The distilled student lands in <run_dir>/model.keras and, unless
--noexport, in saved_models/<name>/<version>/ like any model.
"""

import dataclasses
from pathlib import Path

from absl import app, flags

from tl_keras.config import cli
from tl_keras.config.run_config import ConfigError
from tl_keras.distill import format_distillation, run_distillation

cli.define_config_flags()
flags.DEFINE_string("teacher", "runs/flowers", "The trained teacher: a .keras file, a run folder or an export.")
flags.DEFINE_float("temperature", 4.0, "Softmax temperature of the soft targets; higher spreads the teacher's probabilities.")
flags.DEFINE_float("distill_alpha", 0.1, "Weight of the hard-label loss; the teacher's soft targets get 1 - alpha.")
FLAGS = flags.FLAGS
FLAGS.set_default("compare_scratch", False)
# With no data or network named, the student of the embedded default: its network at 128 px (the mobile recipe's size,
# 0.64x the multiply-adds), whose ImageNet weights ship with the package, so the pair runs offline.
EMBEDDED_STUDENT_SIZE = 128
_NAMES_THE_STUDENT = ("image_size", "image_dir", "tfds", "backbone", "recipe", "alpha")


def student_config(flag_values):
    """The run config of the student: named `<data>_student` unless --name is given; 128 px only for the embedded pair."""
    config = cli.config_from_flags(flag_values)
    changes = {}
    if not flag_values["name"].present:
        changes["name"] = f"{config.resolved().name}_student"  # beside the teacher's run, never in it
    if not any(flag_values[flag].present for flag in _NAMES_THE_STUDENT):
        changes["image_size"] = EMBEDDED_STUDENT_SIZE
    return dataclasses.replace(config, **changes)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if not Path(FLAGS.teacher).exists():
        cli.fail(f"--teacher: {FLAGS.teacher} not found; train one first (python experiments/train.py) or pass a model")
    try:
        report = run_distillation(student_config(FLAGS), FLAGS.teacher, temperature=FLAGS.temperature, alpha=FLAGS.distill_alpha)
    except (ConfigError, ValueError) as error:
        cli.fail(f"{error}")
    print(format_distillation(report))
    if "export" in report:
        print(f"SavedModel of the distilled student: {report['export']}")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
