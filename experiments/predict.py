"""Classify, tag or score images, texts or sound clips with a running TF Serving (REST) or, without --url, the SavedModel itself.

Each line shows what the model's task answers: the top classes with their
probabilities, the tags above their thresholds with their scores, or the
value.

  python experiments/predict.py --url=http://localhost:8501/v1/models/digits_5_9:predict --image=cat.jpg
  python experiments/predict.py --saved_model=saved_models/digits_5_9 --image=cat.jpg --image=dog.png
  python experiments/predict.py --saved_model=saved_models/reviews --text="A quietly moving film."
  python experiments/predict.py --saved_model=saved_models/reviews --text_file=reviews.txt   # one text per line
  python experiments/predict.py --saved_model=saved_models/spoken_digits --audio=seven.wav

A text SavedModel needs TensorFlow Text's ops, so this script imports
tensorflow_text before loading it (TF Serving needs them built in).
"""

import json
import urllib.error
import urllib.request
from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

flags.DEFINE_multi_string("image", [], "Image file(s) to classify.")
flags.DEFINE_multi_string("text", [], "Text(s) to classify (repeat the flag for several).")
flags.DEFINE_string("text_file", "", "A UTF-8 file with one text per line to classify.")
flags.DEFINE_multi_string("audio", [], "WAV file(s) to classify (16-bit PCM, any sample rate).")
flags.DEFINE_string("url", "", "TF Serving REST predict URL; empty runs --saved_model locally.")
flags.DEFINE_string("saved_model", "", "A model folder (latest version is used) or a version folder.")
flags.DEFINE_float("timeout", 30.0, "Seconds to wait for the server.")
FLAGS = flags.FLAGS

# Which modality's request each input flag makes (the modality builds it: tl_keras.config.modalities).
INPUT_FLAGS = {"image": "vision", "text": "text", "audio": "audio"}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.config.modalities import named
    from tl_keras.config.settings import ConfigError
    from tl_keras.export.saved_model import latest_version_dir

    flag, values = _inputs()
    try:
        request = named(INPUT_FLAGS[flag]).hook("predict_request")(values)
    except ConfigError as error:
        cli.fail(f"{error}")
    if FLAGS.url:
        body = json.dumps(request["rest"]).encode()
        http_request = urllib.request.Request(FLAGS.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(http_request, timeout=FLAGS.timeout) as response:
                predictions = json.loads(response.read())["predictions"]
        except urllib.error.HTTPError as error:
            cli.fail(f"{FLAGS.url} answered {error.code}: {error.read().decode(errors='replace')}")
        except urllib.error.URLError as error:
            cli.fail(f"cannot reach --url={FLAGS.url}: {error.reason}")
    else:
        if not FLAGS.saved_model:
            cli.fail("pass --url (a running TF Serving) or --saved_model (run it here)")
        import tensorflow as tf

        try:
            version = latest_version_dir(FLAGS.saved_model)
        except ValueError as error:
            cli.fail(f"--saved_model: {error}")
        served = tf.saved_model.load(str(version)).signatures["serving_default"]
        outputs = served(**{name: tf.constant(value) for name, value in request["inputs"].items()})
        arrays = {key: value.numpy() for key, value in outputs.items()}
        predictions = [{key: value[i].tolist() for key, value in arrays.items()} for i in range(len(request["names"]))]
    for name, prediction in zip(request["names"], predictions):
        print(f"{name}: {describe(prediction)}")


def describe(prediction: dict) -> str:
    """One result as a line: ranked classes, the tags above their thresholds (each with its score), or the value."""
    def text(value):
        return value if isinstance(value, str) else value.decode()

    if "value" in prediction:
        return f"value {float(prediction['value']):.4g}"
    if "tags" in prediction:
        tags = [(text(t), s) for t, s in zip(prediction["tags"], prediction["scores"]) if text(t)]
        return ", ".join(f"{t} {s:.3f}" for t, s in sorted(tags, key=lambda pair: -pair[1])) or "(no tag above its threshold)"
    return ", ".join(f"{text(c)} {s:.3f}" for c, s in zip(prediction["classes"], prediction["scores"]))


def _inputs() -> tuple[str, list]:
    """(which input flag was given, its values) from --image, --text/--text_file or --audio; exactly one kind."""
    texts = list(FLAGS.text)
    if FLAGS.text_file:
        path = Path(FLAGS.text_file)
        if not path.is_file():
            cli.fail(f"--text_file: file not found: {path}")
        try:
            texts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError as error:
            cli.fail(f"--text_file {path}: not UTF-8 ({error.reason} at byte {error.start})")
    given = {flag: values for flag, values in (("image", list(FLAGS.image)), ("text", texts), ("audio", list(FLAGS.audio))) if values}
    if len(given) > 1:
        cli.fail(f"pass one kind of input, not {' and '.join('--' + f for f in given)}")
    if not given:
        cli.fail("pass --image (repeat it for several images), --text or --text_file, or --audio")
    return next(iter(given.items()))


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
