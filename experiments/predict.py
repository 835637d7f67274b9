"""Classify images with a running TF Serving (REST) or, without --url, the SavedModel itself.

  python experiments/predict.py --url=http://localhost:8501/v1/models/digits_5_9:predict --image=cat.jpg
  python experiments/predict.py --saved_model=saved_models/digits_5_9 --image=cat.jpg --image=dog.png
"""

import json
import urllib.error
import urllib.request
from pathlib import Path

from absl import app, flags

from tl_keras import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

flags.DEFINE_multi_string("image", [], "Image file(s) to classify.")
flags.DEFINE_string("url", "", "TF Serving REST predict URL; empty runs --saved_model locally.")
flags.DEFINE_string("saved_model", "", "A model folder (latest version is used) or a version folder.")
flags.DEFINE_float("timeout", 30.0, "Seconds to wait for the server.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    if not FLAGS.image:
        cli.fail("--image is required (repeat it for several images)")
    missing = [p for p in FLAGS.image if not Path(p).is_file()]
    if missing:
        cli.fail(f"--image: file not found: {missing[0]}")
    encoded = [Path(p).read_bytes() for p in FLAGS.image]
    from tl_keras.export import latest_version_dir, rest_request

    if FLAGS.url:
        body = json.dumps(rest_request(encoded)).encode()
        request = urllib.request.Request(FLAGS.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=FLAGS.timeout) as response:
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
        outputs = tf.saved_model.load(str(version)).signatures["serving_default"](image_bytes=tf.constant(encoded))
        predictions = [
            {"classes": [c.decode() for c in classes], "scores": scores.tolist()}
            for classes, scores in zip(outputs["classes"].numpy(), outputs["scores"].numpy())
        ]
    for path, prediction in zip(FLAGS.image, predictions):
        classes = [c if isinstance(c, str) else c.decode() for c in prediction["classes"]]
        ranked = ", ".join(f"{c} {s:.3f}" for c, s in zip(classes, prediction["scores"]))
        print(f"{path}: {ranked}")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
