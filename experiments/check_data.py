"""Read every image, text or sound clip of a data set once and report what is wrong, before any training.

  python experiments/check_data.py --image_dir=/data/photos --report=data_report.json
  python experiments/check_data.py --image_dir=/data/photos --labels_file=labels.csv   # tags or values per image
  python experiments/check_data.py --text_file=reviews.csv [--test_file=test.csv] [--backbone=ENCODER]
  python experiments/check_data.py --audio_dir=/data/clips                              # WAV files, one sub-folder per class

Images: unreadable files (empty, not images, truncated, corrupt) are listed
and would be skipped by training; convertible ones (CMYK, 16-bit, grayscale,
alpha, palette, animated) are listed as converted. Exact duplicates are
grouped, and flagged when they straddle the train/validation/test split
training would make with the same --seed and fractions.

Texts: the rows skipped (by file and line, and why), the classes per split
as training would split them, texts shared between splits, and the length of
the texts in words, or in the encoder's tokens with a text `--backbone`
(what `--max_sequence_length` would cut).

Sound: clips that are unreadable, silent or too short (skipped), clipped,
multi-channel or at another sample rate (kept: mixed down, resampled), the
clip length training would choose, and the classes per split.

The data source's modality (`tl_keras.config.modalities`) does the checking.
"""

import tempfile
from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of TensorFlow's importers: tl_keras quiets its C++ logs before it loads
from tl_keras.config.modalities import modality_for
from tl_keras.config.settings import ConfigError
from tl_keras.io import storage

cli.define_config_flags(only=(
    "image_dir", "labels_file", "task", "text_file", "text_dir", "validation_file", "test_file", "text_column", "label_column", "backbone",
    "max_sequence_length", "validation_fraction", "test_fraction", "seed", "min_images_per_class", "audio_dir", "audio_file",
    "clip_seconds",
))
flags.DEFINE_string("report", "data_report.json", "Where to write the JSON report (any filesystem a path flag takes).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    remote = storage.is_remote(FLAGS.report)
    with tempfile.TemporaryDirectory(prefix="check_data_") as scratch:
        written = str(Path(scratch) / storage.name_of(FLAGS.report)) if remote else FLAGS.report
        try:
            config = cli.config_from_flags()
            lines = modality_for(config).hook("check_data")(config, written, cli.file_progress())
            if remote:  # the modalities write a local file; the report then goes to the store whole
                storage.copy_file(written, FLAGS.report)
        except (ConfigError, ValueError) as error:
            cli.fail(f"{error}")
    print("\n".join(lines).replace(written, FLAGS.report))


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
