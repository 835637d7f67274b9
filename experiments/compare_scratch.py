"""Transfer learning against the same network from scratch, at several label budgets.

  python experiments/compare_scratch.py                                  # the embedded default: 5, 10, 20 labels/class
  python experiments/compare_scratch.py --image_dir=/data/pets --backbone=mobilenet_v2 --weights=imagenet \
      --labels_per_class=5,10,25,50,100

Takes every training flag of experiments/train.py; each budget runs in
<output_dir>/labels_<n>/.
"""


from absl import app, flags

from tl_keras.config import cli
from tl_keras.compare import compare_transfer_scratch, format_table
from tl_keras.config.run_config import ConfigError

cli.define_config_flags()
flags.DEFINE_list("labels_per_class", ["5", "10", "20"], "Label budgets to compare.")
flags.DEFINE_string("output_dir", "runs/compare_scratch", "Where runs, table and plots go.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    try:
        counts = [int(c) for c in FLAGS.labels_per_class]
        if not counts or min(counts) < 1:
            raise ValueError
    except ValueError:
        cli.fail("--labels_per_class must be positive whole numbers, e.g. 5,10,25")
    try:
        config = cli.config_from_flags(FLAGS).resolved().validate()
        result = compare_transfer_scratch(config, counts, FLAGS.output_dir)
    except (ConfigError, ValueError) as error:
        cli.fail(f"{error}")
    print(format_table(result["rows"]))
    for name, path in result["files"].items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
