"""Write an image folder or a text table as sharded TFRecords with a manifest, split as a training run would split it.

  python experiments/make_records.py --image_dir=/data/photos --output_dir=/data/photos_records --shards=64
  python experiments/make_records.py --image_dir=/data/photos --labels_file=labels.csv --output_dir=gs://bucket/records
  python experiments/make_records.py --text_file=reviews.csv [--test_file=test.csv] --output_dir=/data/reviews_records

Then `python experiments/train.py --records=OUTPUT_DIR` trains on the same
classes, splits and counts as a run on the source with the same --seed and
fractions. Images are checked first (the files a run would skip are left
out) and stored as their files' bytes; texts as UTF-8. The output folder
may be on any filesystem TensorFlow reads (gs://, s3://, ...). The data
source's modality (`tl_keras.config.modalities`) writes them.
"""

from absl import app, flags

from tl_keras.config import cli  # first of TensorFlow's importers: tl_keras quiets its C++ logs before it loads
from tl_keras.config.modalities import modality_for
from tl_keras.config.settings import ConfigError

cli.define_config_flags(only=(
    "image_dir", "labels_file", "task", "text_file", "text_dir", "validation_file", "test_file", "text_column", "label_column",
    "validation_fraction", "test_fraction", "seed", "min_images_per_class", "max_train_per_class", "data_check",
))
flags.DEFINE_string("output_dir", None, "Where the shards and manifest.json go (a new or empty folder; any tf.io.gfile filesystem).")
flags.DEFINE_integer("shards", 16, "Shards of the training split (held-out splits get a share by size); at least one per worker.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.io import storage

    if not FLAGS.output_dir:
        cli.fail("--output_dir is required: where the shards and manifest.json go")
    if FLAGS.shards < 1:
        cli.fail(f"--shards must be at least 1, got {FLAGS.shards}")
    if storage.isdir(FLAGS.output_dir) and storage.listdir(FLAGS.output_dir):
        cli.fail(f"--output_dir={FLAGS.output_dir} is not empty; records are written into a new or empty folder")
    try:
        config = cli.config_from_flags()
        lines = modality_for(config).hook("make_records")(config, FLAGS.output_dir, FLAGS.shards, cli.file_progress())
    except (ConfigError, ValueError) as error:
        cli.fail(f"{error}")
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
