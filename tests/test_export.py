"""SavedModel export: versioned, atomic, and equal to the Keras model in a TF-only process."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tl_keras import export as export_lib
from tl_keras.backbones import load_backbone
from tl_keras.builders import build_classifier


@pytest.fixture(scope="module")
def classifier():
    backbone = load_backbone("small_cnn", None, image_size=16)
    return build_classifier(backbone, 3, name="tiny")


def test_export_matches_keras_in_a_fresh_tensorflow_only_process(classifier, tmp_path, tiny_batch):
    version_dir = export_lib.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"])
    assert version_dir == tmp_path / "tiny" / "1"
    assert export_lib.read_labels(version_dir) == ["a", "b", "c"]
    np.save(tmp_path / "batch.npy", tiny_batch)
    script = f"""
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load({str(version_dir)!r})
serve = loaded.signatures["serving_default"]
out = serve(images=tf.constant(np.load({str(tmp_path / 'batch.npy')!r})))
print(json.dumps({{"probabilities": out["probabilities"].numpy().tolist(), "modules": sorted(m for m in sys.modules if m.startswith("tl_keras"))}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["modules"] == [], "the server side must not need tl_keras"
    expected = classifier.predict(tiny_batch, verbose=0)
    assert np.abs(np.array(served["probabilities"]) - expected).max() < 1e-5


def test_versions_increase_and_are_never_overwritten(classifier, tmp_path):
    first = export_lib.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"])
    second = export_lib.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"])
    assert (first.name, second.name) == ("1", "2")
    with pytest.raises(FileExistsError, match="never overwritten"):
        export_lib.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"], version=2)
    card = json.loads((second / "assets.extra" / "model_card.json").read_text())
    assert card["version"] == 2 and card["class_names"] == ["a", "b", "c"]


def test_failed_export_leaves_nothing_visible(classifier, tmp_path, monkeypatch):
    real_write = export_lib._write_saved_model

    def write_then_die(model, path):
        real_write(model, path)  # a complete SavedModel is on disk in the staging folder...
        raise KeyboardInterrupt("killed mid-export")  # ...when the process is interrupted

    monkeypatch.setattr(export_lib, "_write_saved_model", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        export_lib.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"])
    assert list((tmp_path / "tiny").iterdir()) == []
    monkeypatch.undo()
    assert export_lib.export_saved_model(classifier, tmp_path, "tiny", ["a", "b", "c"]).name == "1"


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "a..b"])
def test_bad_model_names_are_refused(classifier, tmp_path, name):
    with pytest.raises(ValueError, match="invalid model name"):
        export_lib.export_saved_model(classifier, tmp_path, name, ["a", "b", "c"])


def test_label_count_must_match_outputs(classifier, tmp_path):
    with pytest.raises(ValueError, match="2 class names for a model with 3 outputs"):
        export_lib.export_saved_model(classifier, tmp_path, "tiny", ["a", "b"])
