"""SavedModel export for TF Serving: layout, signatures, request path, warmup, reloading."""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from tl_keras.export import saved_model as export_lib

from tl_keras.vision import serving
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.export.reload import load_classifier
from tl_keras.vision.backbones import backbone_of
from tl_keras.export.warmup import read_warmup_requests

LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def classifier():
    backbone = load_backbone("small_cnn", None, image_size=16)
    return build_classifier(backbone, 3, name="tiny")


@pytest.fixture(scope="module")
def exported(classifier, tmp_path_factory):
    return serving.export_saved_model(classifier, tmp_path_factory.mktemp("exports"), "tiny", LABELS)


def _jpeg(seed, shape=(37, 45, 3)):
    pixels = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    return tf.io.encode_jpeg(pixels, quality=90).numpy()


@pytest.mark.slow
def test_saved_model_cli_lists_both_signatures(exported):
    cli = shutil.which("saved_model_cli") or shutil.which("saved_model_cli", path=os.path.dirname(sys.executable))
    if cli is None:
        pytest.skip("saved_model_cli is not on PATH")
    shown = subprocess.run([cli, "show", "--all", "--dir", str(exported)], capture_output=True, text=True, check=True).stdout
    serving = shown.split("signature_def['serving_default']")[1]
    pixels = shown.split("signature_def['predict_pixels']")[1].split("signature_def[")[0]
    assert "inputs['image_bytes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in serving
    assert "inputs['images'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, -1, -1, 3)" in pixels
    for section in (serving, pixels):
        assert "outputs['probabilities'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 3)" in section
        assert "outputs['classes'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1, 3)" in section
        assert "outputs['scores'] tensor_info:\n        dtype: DT_FLOAT" in section
        assert "Method name is: tensorflow/serving/predict" in section


@pytest.mark.slow
def test_rest_request_in_a_tensorflow_only_process_matches_keras(classifier, exported, tmp_path):
    images = [_jpeg(1), _jpeg(2, (64, 30, 3))]
    body = tmp_path / "request.json"
    body.write_text(json.dumps(export_lib.rest_request(images)))
    script = f"""
import base64, json, sys
import numpy as np
import tensorflow as tf
request = json.load(open({str(body)!r}))
# What TF Serving does with a REST body: {{"b64": ...}} becomes the raw bytes of a DT_STRING tensor.
raw = [base64.b64decode(instance["image_bytes"]["b64"]) for instance in request["instances"]]
serve = tf.saved_model.load({str(exported)!r}).signatures[request["signature_name"]]
out = serve(image_bytes=tf.constant(raw))
print(json.dumps({{"probabilities": out["probabilities"].numpy().tolist(),
                  "classes": [[c.decode() for c in row] for row in out["classes"].numpy()],
                  "scores": out["scores"].numpy().tolist(),
                  "tl_keras_loaded": any(m.startswith("tl_keras") for m in sys.modules)}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["tl_keras_loaded"] is False
    decoded = [tf.io.decode_jpeg(data).numpy() for data in images]
    expected = np.concatenate([classifier.predict(image[None], verbose=0) for image in decoded])
    assert np.abs(np.array(served["probabilities"]) - expected).max() < 1e-4
    best = np.argsort(-expected, axis=1)
    assert served["classes"] == [[LABELS[i] for i in row] for row in best]
    np.testing.assert_allclose(served["scores"], np.take_along_axis(expected, best, axis=1), atol=1e-4)


@pytest.mark.slow  # several seconds: the full suite runs it
def test_pixel_signature_matches_keras_for_any_size(classifier, exported):
    pixels = np.random.default_rng(5).integers(0, 256, size=(3, 50, 23, 3), dtype=np.uint8)
    serve = tf.saved_model.load(str(exported)).signatures["predict_pixels"]
    out = serve(images=tf.constant(pixels.astype(np.float32)))["probabilities"].numpy()
    assert np.abs(out - classifier.predict(pixels, verbose=0)).max() < 1e-5


def test_bad_bytes_fail_the_request_and_the_next_one_succeeds(exported):
    serve = tf.saved_model.load(str(exported)).signatures["serving_default"]
    for bad in ([b"garbage bytes, not an image"], [b""], [_jpeg(1), b"GIF8 but truncated"]):
        refusal = "empty or not a JPEG, PNG, GIF, BMP or WebP|Invalid|decode|Input is empty"
        with pytest.raises(tf.errors.InvalidArgumentError, match=refusal):
            serve(image_bytes=tf.constant(bad))
    assert serve(image_bytes=tf.constant([_jpeg(4)]))["probabilities"].shape == (1, 3)


def test_warmup_requests_parse_and_replay(exported):
    logs = read_warmup_requests(exported / "assets.extra" / "tf_serving_warmup_requests")
    assert len(logs) == 3
    loaded = tf.saved_model.load(str(exported))
    signatures = set()
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "tiny"
        inputs = {key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
        out = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert out["probabilities"].shape[1] == 3
        signatures.add(request.model_spec.signature_name)
    assert signatures == {"serving_default", "predict_pixels"}


@pytest.mark.slow
def test_versions_increase_and_are_never_overwritten(classifier, tmp_path):
    first = serving.export_saved_model(classifier, tmp_path, "tiny", LABELS, warmup=False)
    second = serving.export_saved_model(classifier, tmp_path, "tiny", LABELS, warmup=False)
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(FileExistsError, match="never overwritten"):
        serving.export_saved_model(classifier, tmp_path, "tiny", LABELS, version=2)
    card = json.loads((second / "assets.extra" / "model_card.json").read_text())
    assert card["version"] == 2 and card["class_names"] == LABELS
    assert export_lib.read_labels(second) == LABELS
    assert export_lib.latest_version_dir(tmp_path / "tiny") == second


@pytest.mark.slow  # several seconds: the full suite runs it
def test_failed_export_leaves_nothing_visible(classifier, tmp_path, monkeypatch):
    from tl_keras.export import endpoints

    real_carry = endpoints.carry_hub_modules

    def write_then_die(*args):
        real_carry(*args)  # a complete SavedModel and Keras copy are on disk in the staging folder...
        raise KeyboardInterrupt("killed mid-export")  # ...when the process is interrupted

    monkeypatch.setattr(endpoints, "carry_hub_modules", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        serving.export_saved_model(classifier, tmp_path, "tiny", LABELS)
    assert list((tmp_path / "tiny").iterdir()) == []
    monkeypatch.undo()
    assert serving.export_saved_model(classifier, tmp_path, "tiny", LABELS, warmup=False).name == "1"


@pytest.mark.slow  # several seconds: the full suite runs it
def test_a_killed_exports_staging_is_cleaned_and_deleted_versions_are_not_reissued(classifier, tmp_path):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    abandoned = tmp_path / "tiny" / f".1.partial-{gone}-x1y2"  # what a SIGKILL mid-export leaves
    (abandoned / "variables").mkdir(parents=True)
    running = tmp_path / "tiny" / f".1.partial-{os.getpid()}-busy"  # a concurrent export still writing
    running.mkdir()
    first = serving.export_saved_model(classifier, tmp_path, "tiny", LABELS, warmup=False)
    assert first.name == "1" and not abandoned.exists() and running.exists()
    shutil.rmtree(first)  # retention, or a user, deletes version 1
    assert serving.export_saved_model(classifier, tmp_path, "tiny", LABELS, warmup=False).name == "2"


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "a..b"])
def test_bad_model_names_are_refused_by_the_export_and_before_training_alike(classifier, tmp_path, name):
    from tl_keras.config.run_config import RunConfig

    with pytest.raises(ValueError, match="^--name .*no '..'"):
        serving.export_saved_model(classifier, tmp_path, name, LABELS)
    if name:  # an empty --name means "derive it from the data"
        with pytest.raises(ValueError, match="^--name .*no '..'"):
            RunConfig(name=name).validate()  # refused at the start, not after training (a..b passed here before)


def test_label_count_must_match_outputs(classifier, tmp_path):
    with pytest.raises(ValueError, match="2 class names for a model with 3 outputs"):
        serving.export_saved_model(classifier, tmp_path, "tiny", ["a", "b"])


def test_a_new_version_with_another_class_set_is_refused_unless_allowed(classifier, exported):
    from tl_keras.export.endpoints import check_same_classes_as_served

    model_dir = exported.parent  # tiny/1 serves a, b, c
    with pytest.raises(ValueError, match=r"tiny/1 serves classes \['a', 'b', 'c'\], this model predicts \['a', 'b', 'd'\] "
                                         r"\(new: d; gone: c\).*--allow_new_classes"):
        serving.export_saved_model(classifier, model_dir.parent, "tiny", ["a", "b", "d"])
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".")) == ["1"]  # nothing written
    with pytest.raises(ValueError, match="the same names in another order"):
        check_same_classes_as_served(model_dir, ["c", "b", "a"])
    check_same_classes_as_served(model_dir, LABELS)  # the same classes: the next version is welcome
    check_same_classes_as_served(model_dir.parent / "other", ["x", "y"])  # a new name has nothing to disagree with


def test_a_run_whose_classes_differ_from_its_served_model_is_refused_before_training(image_folder, tmp_path):
    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment

    served = tmp_path / "sm" / "images" / "1" / "assets.extra"
    served.mkdir(parents=True)
    (served / "labels.txt").write_text("cat\ndog\n")
    (served.parent / "saved_model.pb").write_bytes(b"")
    config = RunConfig(image_dir=str(image_folder), backbone="small_cnn", weights="none", image_size=16, run_dir=str(tmp_path / "run"),
                       export_dir=str(tmp_path / "sm"), verbose=0)
    with pytest.raises(ValueError, match=r"images/1 serves classes \['cat', 'dog'\], this model predicts \['blue', 'green', 'red'\]"):
        run_experiment(config)
    assert not (tmp_path / "run" / "model.keras").exists()


def test_an_export_reloads_for_further_training(classifier, exported):
    restored = load_classifier(exported.parent)  # the model folder: its latest version
    pixels = np.random.default_rng(9).integers(0, 256, size=(2, 20, 20, 3), dtype=np.uint8)
    np.testing.assert_allclose(restored.predict(pixels, verbose=0), classifier.predict(pixels, verbose=0), atol=1e-6)
    backbone = backbone_of(restored)
    assert backbone.layer.name == "small_cnn" and backbone.input_size == 16


def test_serving_config_lists_each_model():
    text = export_lib.serving_config(["cats", "digits"], "/models/")
    assert text.count("config {") == 2
    assert 'base_path: "/models/digits"' in text and 'model_platform: "tensorflow"' in text
    with pytest.raises(ValueError):
        export_lib.serving_config(["../x"])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_real_tensorflow_model_server_answers_a_rest_request(classifier, exported):
    server = shutil.which("tensorflow_model_server")
    if server is None:
        pytest.skip("tensorflow_model_server is not on PATH (install TF Serving to run this end-to-end check)")
    port = _free_port()
    process = subprocess.Popen(
        [server, f"--rest_api_port={port}", "--port=0", "--model_name=tiny", f"--model_base_path={exported.parent}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}/v1/models/tiny:predict"
        body = json.dumps(export_lib.rest_request([_jpeg(1)])).encode()
        for _ in range(60):
            try:
                with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5) as response:
                    answer = json.loads(response.read())
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("tensorflow_model_server did not answer within 60 s")
        expected = classifier.predict(tf.io.decode_jpeg(_jpeg(1)).numpy()[None], verbose=0)
        assert np.abs(np.array(answer["predictions"][0]["probabilities"]) - expected[0]).max() < 1e-4
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_missing_classifier_error_names_the_flag_it_came_from(tmp_path):
    from tl_keras.export.reload import classifier_file

    with pytest.raises(ValueError, match="^--init_from: no classifier at"):
        classifier_file(tmp_path)
    with pytest.raises(ValueError, match="^--teacher: no classifier at"):
        load_classifier(tmp_path / "missing.keras", "--teacher")


@pytest.mark.slow  # several seconds: the full suite runs it
def test_every_model_card_has_one_shape(classifier, tmp_path):
    """A run's export, a bare export and an ensemble's once wrote four different card shapes (review)."""
    bare = serving.export_saved_model(classifier, tmp_path, "bare", LABELS, warmup=False)
    rich = serving.export_saved_model(
        classifier, tmp_path, "rich", LABELS, warmup=False, metadata={"metrics": {"test_accuracy": 0.9}, "teacher": "t.keras"}
    )
    cards = [json.loads((v / "assets.extra" / "model_card.json").read_text()) for v in (bare, rich)]
    assert list(cards[0]) == list(cards[1]), "same keys, same order"
    assert set(export_lib.CARD_FIELDS) <= set(cards[0])
    assert cards[0]["model_kind"] == "single" and cards[0]["input_size"] == classifier.get_layer("resize").height
    assert cards[0]["versions"]["keras"] and cards[0]["provenance"] is None
    assert cards[1]["metrics"] == {"test_accuracy": 0.9} and cards[1]["provenance"] == {"teacher": "t.keras"}
