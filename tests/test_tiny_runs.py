"""One tiny image run and one tiny text run, end to end (train, score, export, reload), quick enough for the edit-test loop.

Tiny models built in the test (a 2-layer BERT, small_cnn at 16 px), real
code paths: the two phases, the held-out evaluation, the SavedModel a
server loads, and what a later `--resume` or evaluation checks.
"""

import json

import numpy as np
import pytest

from text_fixtures import sentences
from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import ConfigError


def write_texts(path, rows):
    path.write_text("sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    return path


@pytest.fixture
def text_files(tmp_path):
    return write_texts(tmp_path / "train.tsv", sentences(60)), write_texts(tmp_path / "test.tsv", sentences(16, seed=5))


def test_a_tiny_text_run_trains_what_it_is_told_exports_and_refuses_edited_data_on_resume(tmp_path, tiny_encoder, text_files):
    import keras
    import tensorflow as tf

    from tl_keras.data.splits import SplitMismatchError
    from tl_keras.run import run_experiment
    from tl_keras.text.batches import pad_batch
    from tl_keras.text.tokenizer import TextTokenizer

    train, test = text_files
    config = RunConfig(
        text_file=str(train), test_file=str(test), backbone=str(tiny_encoder), run_dir=str(tmp_path / "run"),
        export_dir=str(tmp_path / "sm"), head_init="random", frozen_epochs=1, fine_tune_epochs=0, batch_size=16, verbose=0,
        class_weights="auto", head_l2=0.01, num_classes=2, tensorboard=True,
    )
    summary = run_experiment(config)
    # What was given stays given: the text recipe's logistic head and 3 fine-tuning epochs would otherwise replace the one
    # Keras epoch of a random head and the 0 epochs asked for. (No fine-tuning also keeps this test quick: tracing the
    # encoder's training step was most of its time; the slow text tests fine-tune.)
    assert set(summary["phases"]) == {"frozen"} and summary["phases"]["frozen"]["epochs"] == 1
    assert (tmp_path / "run" / "tensorboard").is_dir()
    model = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
    assert model.get_layer("head").kernel_regularizer is not None  # --head_l2 reached the text head
    texts = ["the movie was good", "awful plot", "good\u00a0movie"]
    tokenizer = TextTokenizer.load(tmp_path / "run" / "tokenizer")
    expected = model.predict(pad_batch(tokenizer.encode(texts), tokenizer.pad_id), verbose=0)
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)

    write_texts(train, sentences(60)[:-1] + [("the plot was awful .", "neg")])
    with pytest.raises(SplitMismatchError, match=f"--text_file={train} changed .* pass --overwrite"):
        run_experiment(RunConfig.from_dict({**json.loads((tmp_path / "run" / "config.json").read_text()), "resume": True}))


def test_a_text_run_refuses_another_class_count_or_no_validation_before_loading_the_encoder(tmp_path, text_files):
    from tl_keras.run import run_experiment

    train, _ = text_files
    # The recipe's backbone is a keras-hub preset, which would download: the data checks come before it is loaded.
    common = dict(text_file=str(train), run_dir=str(tmp_path / "run"), verbose=0, overwrite=True)
    with pytest.raises(ConfigError, match=r"--num_classes=3 but the data has 2 classes \['neg', 'pos'\]"):
        run_experiment(RunConfig(**common, num_classes=3))
    with pytest.raises(ConfigError, match="no validation split; set --validation_fraction above 0 or pass --validation_file"):
        run_experiment(RunConfig(**common, validation_fraction=0.0))


def test_flags_a_text_run_cannot_honour_are_refused_by_name(tmp_path, text_files, tiny_encoder):
    train, _ = text_files
    with pytest.raises(ConfigError, match="--init_from=.*a text run starts from --backbone"):
        RunConfig(text_file=str(train), backbone=str(tiny_encoder), init_from=str(train)).resolved().validate()
    with pytest.raises(ConfigError, match="--image_dir and --text_tfds are all set; give one data source"):
        RunConfig(image_dir=str(tmp_path), text_tfds="imdb_reviews").resolved().validate()


def test_a_tiny_image_run_trains_scores_exports_and_the_export_serves_the_keras_probabilities(tmp_path, image_folder):
    import keras
    import tensorflow as tf

    from tl_keras.run import run_experiment

    config = RunConfig(
        image_dir=str(image_folder), backbone="small_cnn", weights="none", image_size=16, fine_tune_epochs=1, fine_tune_min_steps=0,
        frozen_epochs=2, batch_size=8, run_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "sm"), verbose=0, seed=1,
    )
    summary = run_experiment(config)
    assert summary["classes"] == ["blue", "green", "red"] and summary["evaluated_on"] == "test"
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    # The frozen phase is kept on this folder, so the export is refitted on every label, the carved test split's included:
    # the report is the model trained before it, and the export has no held-out score of its own.
    assert summary["kept_phase"] == "frozen" and summary["refit"]["include_test"] and summary["exported_accuracy"] is None
    assert metrics["accuracy"] == pytest.approx(summary["transfer_accuracy"])
    model = keras.saving.load_model(summary["model_keras"], compile=False)
    photo = next((image_folder / "red").iterdir()).read_bytes()
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"](image_bytes=tf.constant([photo]))
    pixels = tf.io.decode_png(photo, channels=3)[None]
    np.testing.assert_allclose(served["probabilities"].numpy(), model.predict(pixels, verbose=0), atol=1e-5)


def test_image_only_settings_given_to_a_text_run_are_refused_by_name(text_files, tiny_encoder):
    train, _ = text_files
    with pytest.raises(ConfigError, match=r"^--flip, --refit apply to image runs; a text run does not read them: drop them$"):
        RunConfig(text_file=str(train), backbone=str(tiny_encoder), flip="none", refit="on").resolved().validate()
    RunConfig(text_file=str(train), backbone=str(tiny_encoder), refit="auto").resolved().validate()  # the default value is harmless
