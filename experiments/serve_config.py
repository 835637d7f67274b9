"""Write a TF Serving models.config serving every model under saved_models/.

  python experiments/serve_config.py --export_dir=saved_models --output=saved_models/models.config
  docker run -p 8501:8501 -v "$PWD/saved_models:/models" tensorflow/serving \
      --model_config_file=/models/models.config
"""

from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

from tl_keras.export.saved_model import existing_versions, serving_config

flags.DEFINE_string("export_dir", "saved_models", "Root holding <name>/<version>/ folders.")
flags.DEFINE_list("names", [], "Models to serve; empty serves every model folder with a version.")
flags.DEFINE_string("base_path", "/models", "Where --export_dir is mounted inside the server.")
flags.DEFINE_string("output", "", "Config file to write (stdout when empty).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.io import storage

    root = FLAGS.export_dir  # a local folder or a bucket
    listed = [n for n in storage.listdir(root) if existing_versions(storage.join(root, n))] if storage.isdir(root) else []
    names = FLAGS.names or listed
    if not names:
        cli.fail(f"no exported models under --export_dir={root}")
    missing = [n for n in names if not existing_versions(storage.join(root, n))]
    if missing:
        cli.fail(f"--names: no versions under {root} for {', '.join(missing)}")
    text = serving_config(names, FLAGS.base_path)
    if FLAGS.output:
        Path(FLAGS.output).write_text(text)
        print(f"wrote {FLAGS.output} serving {', '.join(names)}")
    else:
        print(text, end="")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
