"""Text models in production: the in-graph tokenizer, the raw-string SavedModel, the two TFLite forms, predict.py.

A tiny BERT (the one tests/test_text.py builds) keeps these quick; the
fresh-process, TFLite and script checks are in the slow tier.
"""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")
tf_text = pytest.importorskip("tensorflow_text")

from text_fixtures import WORDS  # noqa: E402

from tl_keras.text.tokenizer import TextTokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HARD_TEXTS = [
    "Café naïve résumé — don't stop!", "I ❤️ emojis 😀👍🏽", "東京 movie", "see https://x.org/movie?a=b", "", "the movie " * 80,
    "good\u00a0movie", "bad\u3000plot", "fine\u200bacting", "\ufeffgood", "co\u00adoperate good", "e\u0301cole",
]
EXTRA_WORDS = ["http", "##s", ":", "/", "x", "org", "?", "=", "b", "東", "京", "caf", "##e", "##é", "—", "i", "na", "##ive", "re"]


def hard_vocabulary() -> list[str]:
    return list(dict.fromkeys(WORDS + EXTRA_WORDS))


@pytest.mark.parametrize("lowercase,strip", [(True, True), (True, False), (False, False)])
def test_the_in_graph_tokenizer_gives_the_training_tokenizers_ids(lowercase, strip):
    from tl_keras.text.graph_tokenizer import GraphTokenizer

    tokenizer = TextTokenizer(hard_vocabulary(), lowercase=lowercase, strip_accents=strip, sequence_length=24)
    expected = [row.tolist() for row in tokenizer.encode(HARD_TEXTS)]
    ids = GraphTokenizer(tokenizer)(HARD_TEXTS).numpy()
    assert ids.shape == (len(HARD_TEXTS), 24)  # the longest text is cut to the sequence length
    assert [row[row != tokenizer.pad_id].tolist() for row in ids] == expected
    fixed = GraphTokenizer(tokenizer, fixed_length=True)(["good"]).numpy()
    assert fixed.shape == (1, 24) and fixed[0, :3].tolist() == [tokenizer.cls_id, WORDS.index("good"), tokenizer.sep_id]


def test_the_in_graph_tokenizer_matches_on_the_shared_minilm_vocabulary(shared_assets):
    from tl_keras.text.graph_tokenizer import GraphTokenizer

    tokenizer = TextTokenizer.from_folder(shared_assets / "text_encoders" / "all-MiniLM-L6-v2", sequence_length=64)
    ids = GraphTokenizer(tokenizer)(HARD_TEXTS).numpy()
    assert [row[row != tokenizer.pad_id].tolist() for row in ids] == [row.tolist() for row in tokenizer.encode(HARD_TEXTS)]


@pytest.fixture(scope="module")
def text_export(tmp_path_factory):
    """A tiny 3-class text classifier (2-layer BERT, random weights) exported once: (version folder, Keras model, tokenizer)."""
    import keras

    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.export import export_text_saved_model
    from tl_keras.text.model import build_text_classifier

    folder = tmp_path_factory.mktemp("text_export")
    keras.utils.set_random_seed(1)
    vocabulary = hard_vocabulary()
    keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=64
    ).save_to_preset(str(folder / "encoder"))
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=True).save_to_preset(str(folder / "encoder"))
    encoder = load_text_encoder(str(folder / "encoder"), sequence_length=16)
    tokenizer = dataclasses.replace(encoder.tokenizer, strip_accents=True)  # keras-hub's BERT presets keep accents
    model = build_text_classifier(encoder, 3)
    version = export_text_saved_model(model, tokenizer, folder / "sm", "reviews", ["neg", "neutral", "pos"])
    return version, model, tokenizer


def keras_probabilities(model, tokenizer, texts):
    from tl_keras.text.batches import pad_batch

    return model.predict(pad_batch(tokenizer.encode(texts), tokenizer.pad_id), verbose=0)


@pytest.mark.slow  # several seconds: the full suite runs it
def test_the_string_signature_serves_the_keras_probabilities_and_refuses_bad_utf8_alone(text_export):
    import tensorflow as tf

    version, model, tokenizer = text_export
    served = tf.saved_model.load(str(version)).signatures["serving_default"]
    out = served(text=tf.constant(HARD_TEXTS))
    np.testing.assert_allclose(out["probabilities"].numpy(), keras_probabilities(model, tokenizer, HARD_TEXTS), atol=1e-5)
    assert out["classes"].shape == (len(HARD_TEXTS), 3) and out["classes"].dtype == tf.string
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        served(text=tf.constant([b"good movie", b"caf\xe9 latin-1"]))
    assert served(text=tf.constant(["good movie"]))["probabilities"].shape == (1, 3)  # the next request works


def test_the_token_id_signature_and_the_files_beside_the_model(text_export):
    import tensorflow as tf

    from tl_keras.text.batches import pad_batch
    from tl_keras.export.warmup import read_warmup_requests

    version, model, tokenizer = text_export
    ids = pad_batch(tokenizer.encode(HARD_TEXTS), tokenizer.pad_id)
    mask = (ids != tokenizer.pad_id).astype(np.int32)
    out = tf.saved_model.load(str(version)).signatures["token_ids"](
        input_word_ids=tf.constant(ids), input_mask=tf.constant(mask), input_type_ids=tf.zeros_like(ids)
    )
    np.testing.assert_allclose(out["probabilities"].numpy(), keras_probabilities(model, tokenizer, HARD_TEXTS), atol=1e-5)
    extra = version / "assets.extra"
    card = json.loads((extra / "model_card.json").read_text())
    assert card["model_kind"] == "text" and set(card["signatures"]) == {"serving_default", "token_ids"}
    assert card["tokenizer"]["sequence_length"] == 16 and card["tokenizer"]["strip_accents"] is True
    assert (extra / "tokenizer" / "vocab.txt").read_text().splitlines() == hard_vocabulary()
    logs = read_warmup_requests(extra / "tf_serving_warmup_requests")
    texts = [v.decode() for log in logs for key, t in log.predict_log.request.inputs.items() if key == "text" for v in t.string_val]
    assert "" in texts and any("東京" in t for t in texts) and len(logs) == 3


def test_each_weight_is_stored_once(text_export):
    """Keras's ExportArchive.track() stored every weight a second time (a 22.7M-parameter encoder gave 173 MB of variables)."""
    import tensorflow as tf

    version, model, _ = text_export
    shapes = tf.train.load_checkpoint(str(version / "variables" / "variables")).get_variable_to_shape_map()
    stored = sum(int(np.prod(shape)) for key, shape in shapes.items() if key.endswith("VARIABLE_VALUE"))
    assert stored == model.count_params()


def test_a_failed_export_leaves_no_version_behind(text_export, tmp_path, monkeypatch):
    from tl_keras.text import export as text_export_lib

    _, model, tokenizer = text_export

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(text_export_lib, "write_text_warmup", broken)
    with pytest.raises(OSError, match="disk full"):
        text_export_lib.export_text_saved_model(model, tokenizer, tmp_path, "reviews", ["neg", "neutral", "pos"])
    assert list((tmp_path / "reviews").iterdir()) == []  # no version and no staging folder


@pytest.mark.slow
def test_a_fresh_process_with_only_tensorflow_and_tensorflow_text_serves_strings(text_export, tmp_path):
    version, model, tokenizer = text_export
    script = (
        "import json, sys, tensorflow as tf, tensorflow_text\n"
        "texts = json.loads(sys.argv[2])\n"
        "out = tf.saved_model.load(sys.argv[1]).signatures['serving_default'](text=tf.constant(texts))\n"
        "print(json.dumps(out['probabilities'].numpy().tolist()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(version), json.dumps(HARD_TEXTS)], capture_output=True, text=True, timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    served = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(served, keras_probabilities(model, tokenizer, HARD_TEXTS), atol=1e-5)


@pytest.mark.slow
def test_both_tflite_forms_run_in_litert_and_agree_with_keras(text_export, tmp_path):
    from tl_keras.text import tflite as text_tflite

    version, model, tokenizer = text_export
    texts = HARD_TEXTS + ["good movie", "awful plot and bad acting", "fine"]
    labels = keras_probabilities(model, tokenizer, texts).argmax(axis=1)
    report = text_tflite.export_text_tflite(
        version, tmp_path, texts, labels, ["neg", "neutral", "pos"], variants=["float32", "dynamic_range"]
    )
    rows = {r["variant"]: r for r in report["variants"]}
    assert set(rows) == {"string/float32", "string/dynamic_range", "ids/float32", "ids/dynamic_range"} and not report["failures"]
    for form in ("string", "ids"):
        assert rows[f"{form}/float32"]["agreement"] == 1.0 and rows[f"{form}/float32"]["max_abs_diff"] < 1e-5
    assert rows["string/float32"]["interpreter"].endswith("WithCustomOps")
    for form in ("string", "ids"):  # each form against its own float32 file (every ratio read 1.00 before)
        assert rows[f"{form}/float32"]["size_vs_float32"] == 1.0
        expected = rows[f"{form}/dynamic_range"]["size_bytes"] / rows[f"{form}/float32"]["size_bytes"]
        assert rows[f"{form}/dynamic_range"]["size_vs_float32"] == expected  # (a model this tiny has too few weights to shrink)
    sidecar = json.loads((tmp_path / "reviews_string_float32.json").read_text())
    assert "SELECT_TFTEXT_OPS" in sidecar["inputs"]["custom_ops"]
    assert (tmp_path / "vocab.txt").read_text().splitlines() == hard_vocabulary() and (tmp_path / "labels.txt").is_file()


def test_a_string_tflite_form_is_refused_for_casing_it_cannot_reproduce(text_export):
    from tl_keras.text.tflite import convert_text

    version, _, tokenizer = text_export
    with pytest.raises(ValueError, match="token-id TFLite form"):
        convert_text(version, dataclasses.replace(tokenizer, strip_accents=False), "string", "float32")


@pytest.mark.slow
def test_predict_script_classifies_texts_with_the_saved_model(text_export, tmp_path):
    version, _, _ = text_export
    texts = tmp_path / "texts.txt"
    texts.write_text("good movie\n\nawful plot\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "predict.py"), f"--saved_model={version.parent}", "--text=Café naïve",
         f"--text_file={texts}"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Café naïve", "good movie", "awful plot"]
    assert all(len(line.split(", ")) == 3 for line in lines)  # three classes ranked per text
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"caf\xe9\n")
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "predict.py"), f"--saved_model={version.parent}", f"--text_file={bad}"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )
    assert result.returncode == 2 and "not UTF-8" in result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_kill_mid_export_leaves_no_visible_version_and_the_next_export_clears_it(text_export, tmp_path):
    import os
    import signal

    version, model, tokenizer = text_export
    model.save(tmp_path / "model.keras")
    tokenizer.save(tmp_path / "tokenizer")
    script = (
        "import os, signal, sys, keras, tl_keras\n"
        "from tl_keras.text import export\n"
        "from tl_keras.text.tokenizer import TextTokenizer\n"
        "export.write_text_warmup = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # dies after the SavedModel is written\n"
        "model = keras.saving.load_model(sys.argv[1], compile=False)\n"
        "export.export_text_saved_model(model, TextTokenizer.load(sys.argv[2]), sys.argv[3], 'reviews', ['neg', 'neutral', 'pos'])\n"
    )
    arguments = [str(tmp_path / "model.keras"), str(tmp_path / "tokenizer"), str(tmp_path / "sm")]
    killed = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    left = [p.name for p in (tmp_path / "sm" / "reviews").iterdir()]
    assert left and all(name.startswith(".") for name in left)  # only the hidden staging folder: TF Serving sees no version
    from tl_keras.text.export import export_text_saved_model

    again = export_text_saved_model(model, tokenizer, tmp_path / "sm", "reviews", ["neg", "neutral", "pos"])
    assert [p.name for p in (tmp_path / "sm" / "reviews").iterdir() if not p.name.startswith(".last")] == [again.name]
