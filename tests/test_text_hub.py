"""TF Hub-format text encoders, both ways: export an encoder with its preprocessor, load such a pair as a --backbone."""

import json
import shutil

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")
pytest.importorskip("tensorflow_text")

from text_fixtures import sentences  # noqa: E402

TEXTS = ["The weather is lovely today.", "Café naïve ❤️ 東京", "", "the movie was good"]


def keras_pooled(encoder, texts):
    """The encoder's pooled sentence vectors computed by Keras, padded to the tokenizer's length as the preprocessor pads."""
    from tl_keras.text.model import FirstTokenPooling, MaskedMeanPooling

    tokenizer = encoder.tokenizer
    ids = np.full((len(texts), tokenizer.sequence_length), tokenizer.pad_id, np.int32)
    for row, encoded in enumerate(tokenizer.encode(texts)):
        ids[row, : len(encoded)] = encoded
    mask = (ids != tokenizer.pad_id).astype(np.int32)
    sequence = encoder.model({"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask})
    pool = MaskedMeanPooling() if encoder.pooling == "mean" else FirstTokenPooling()
    return np.asarray(pool(sequence, mask))


@pytest.mark.slow  # several seconds: the full suite runs it
def test_an_exported_pair_reproduces_the_encoder_and_loads_back_as_a_backbone(tiny_encoder, tmp_path):
    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.hub_format import export_hub_encoder, pooled_outputs

    encoder = load_text_encoder(str(tiny_encoder), sequence_length=16)
    encoder_dir, preprocessor_dir = export_hub_encoder(encoder.model, encoder.tokenizer, "mean", tmp_path / "hub")
    encoder.pooling = "mean"
    np.testing.assert_allclose(pooled_outputs(encoder_dir, TEXTS, preprocessor_dir), keras_pooled(encoder, TEXTS), atol=1e-5)
    again = load_text_encoder(str(encoder_dir), sequence_length=16, preprocessor=str(preprocessor_dir))
    assert again.tokenizer == encoder.tokenizer and again.pooling == "mean"
    assert again.model.trainable_weights  # the module's own variables, so fine-tuning trains them
    np.testing.assert_allclose(keras_pooled(again, TEXTS), keras_pooled(encoder, TEXTS), atol=1e-5)


@pytest.mark.slow  # several seconds: the full suite runs it
def test_another_publishers_preprocessor_gives_its_casing_by_probing(tiny_encoder, tmp_path):
    """A preprocessor without our settings file: assets/vocab.txt plus its own ids on probe texts pick the casing."""
    import dataclasses

    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.hub_format import export_hub_encoder, preprocessor_tokenizer

    encoder = load_text_encoder(str(tiny_encoder), sequence_length=16)
    for strip in (True, False):
        tokenizer = dataclasses.replace(encoder.tokenizer, strip_accents=strip)
        _, preprocessor_dir = export_hub_encoder(encoder.model, tokenizer, "cls", tmp_path / f"hub_{strip}")
        (preprocessor_dir / "assets").mkdir(exist_ok=True)
        (preprocessor_dir / "assets" / "vocab.txt").write_text("\n".join(tokenizer.vocabulary) + "\n")
        shutil.rmtree(preprocessor_dir / "assets.extra")
        found = preprocessor_tokenizer(preprocessor_dir)
        assert (found.lowercase, found.strip_accents, found.sequence_length) == (True, strip, 16)


@pytest.mark.slow
def test_a_text_run_fine_tunes_a_hub_format_encoder_and_writes_its_own(tiny_encoder, tmp_path):
    import tensorflow as tf

    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment
    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.hub_format import export_hub_encoder

    encoder = load_text_encoder(str(tiny_encoder), sequence_length=24)
    encoder_dir, preprocessor_dir = export_hub_encoder(encoder.model, encoder.tokenizer, "cls", tmp_path / "hub")
    before = [v.numpy() for v in tf.saved_model.load(str(encoder_dir)).variables]
    train = tmp_path / "reviews" / "train.tsv"
    train.parent.mkdir()
    train.write_text("".join(f"{t}\t{label}\n" for t, label in sentences(120)))
    config = RunConfig(
        text_file=str(train), backbone=str(encoder_dir), text_preprocessor=str(preprocessor_dir), run_dir=str(tmp_path / "run"),
        export_dir=str(tmp_path / "sm"), hub_encoder_dir=str(tmp_path / "tuned"), fine_tune_epochs=1, frozen_epochs=3,
        batch_size=16, fine_tune_learning_rate=1e-3, verbose=0,
    )
    summary = run_experiment(config)
    assert set(summary["phases"]) == {"frozen", "fine_tune"}
    tuned = tf.saved_model.load(summary["hub_encoder"]["encoder"]).variables
    changed = [not np.array_equal(b, t.numpy()) for b, t in zip(before, tuned) if b.ndim == 2]
    assert len(tuned) == len(before) and any(changed)  # fine-tuning trained the module's weights, and the export carries them
    facts = json.loads((tmp_path / "tuned" / "encoder" / "assets.extra" / "encoder.json").read_text())
    assert facts["pooling"] == "cls"
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"](text=tf.constant(["good movie"]))
    assert served["probabilities"].shape == (1, 2)


@pytest.mark.slow
def test_the_shared_minilm_round_trips_through_tf_hub_format(shared_assets, tmp_path):
    from tl_keras.text.encoders import load_text_encoder
    from tl_keras.text.hub_format import export_hub_encoder, pooled_outputs

    encoder = load_text_encoder(str(shared_assets / "text_encoders" / "all-MiniLM-L6-v2"), sequence_length=32)
    encoder_dir, preprocessor_dir = export_hub_encoder(encoder.model, encoder.tokenizer, encoder.pooling, tmp_path / "hub")
    pooled = pooled_outputs(encoder_dir, TEXTS, preprocessor_dir)
    np.testing.assert_allclose(pooled, keras_pooled(encoder, TEXTS), atol=1e-5)
    unit = pooled[:3] / np.linalg.norm(pooled[:3], axis=1, keepdims=True)
    pair = pooled_outputs(encoder_dir, ["It's so sunny outside!", "He drove to the stadium."], preprocessor_dir)
    pair = pair / np.linalg.norm(pair, axis=1, keepdims=True)
    np.testing.assert_allclose(unit[0] @ pair.T, [0.6660, 0.1046], atol=2e-3)  # the checkpoint's published similarities
    as_backbone = load_text_encoder(str(encoder_dir), sequence_length=32, preprocessor=str(preprocessor_dir))
    assert as_backbone.tokenizer == encoder.tokenizer and as_backbone.pooling == "mean"
    np.testing.assert_allclose(keras_pooled(as_backbone, TEXTS), keras_pooled(encoder, TEXTS), atol=1e-4)  # through HubLayer
