"""Train a transfer-learning image classifier and export it for TF Serving.

With no flags it runs the offline embedded default: a small CNN pretrained on
digits 0-4 is transferred to digits 5-9 with 20 labels per class, compared
with the same network trained from scratch, and exported to saved_models/.

  python experiments/train.py
  python experiments/train.py --backbone=mobilenet_v2 --weights=imagenet --tfds=tf_flowers
  python experiments/train.py --image_dir=/data/photos --backbone=efficientnet_b0 --weights=imagenet
  python experiments/train.py --flagfile=runs/digits_5_9/flags.txt
  python experiments/train.py --flagfile=runs/digits_5_9/flags.txt --resume   # after a crash or kill
"""

import json
import sys

from absl import app, flags, logging

from tl_keras import cli
from tl_keras.config import ConfigError, check_run_dir_reuse
from tl_keras.run import run_experiment

cli.define_config_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag (see --helpfull)")
    try:
        config = cli.config_from_flags(FLAGS).resolved().validate()
        check_run_dir_reuse(config)
    except ConfigError as error:
        sys.exit(f"error: {error}")
    logging.info("run directory %s", config.run_dir)
    try:
        summary = run_experiment(config)
    except ConfigError as error:  # e.g. an unreadable resume state, named in the message
        sys.exit(f"error: {error}")
    print(json.dumps(summary, indent=2))
    print(f"kept weights from the {summary['kept_phase']} phase; {summary['evaluated_on']} accuracy {summary['transfer_accuracy']:.4f}", end="")
    if "scratch_accuracy" in summary:
        print(f" (same network from scratch: {summary['scratch_accuracy']:.4f})", end="")
    print()
    print(f"run folder: {summary['run_dir']} (metrics: {summary['metrics_json']}, confusion matrix: {summary['confusion_matrix_png']})")
    if "export" in summary:
        print(f"SavedModel: {summary['export']}")


if __name__ == "__main__":
    app.run(main)
