"""Text encoders in TF Hub's format, both ways: export a (fine-tuned) encoder with its preprocessing model, and load such a pair.

TF Hub's BERT convention is two SavedModels. The preprocessor maps a string
batch [N] to `input_word_ids`, `input_mask`, `input_type_ids` (int32 [N, L]);
the encoder maps that dict to `pooled_output` [N, H] and `sequence_output`
[N, L, H]. Both are reusable SavedModels (`__call__`, `variables`,
`trainable_variables`), so `hub.load` / `hub.KerasLayer` in tf-keras and our
Keras 3 `HubLayer` can call and fine-tune them.

The modules hold the encoder's own `tf.Variable`s (the ones its Keras
variables wrap), so each weight is saved once and a reload computes with the
trained values. A pair exported here also carries `assets.extra/` files
(the tokenizer's vocabulary and casing, the pooling), which make loading it
as a `--backbone` exact; for another publisher's preprocessor the casing is
found by tokenising probe texts both ways and keeping the one that agrees.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tl_keras.io import atomic
from tl_keras.text.graph_tokenizer import GraphTokenizer
from tl_keras.text.tokenizer import TextTokenizer

ID_KEYS = ("input_word_ids", "input_mask", "input_type_ids")
ENCODER_FACTS = "encoder.json"
TOKENIZER_FOLDER = "tokenizer"
PROBE_TEXTS = ["Hello World, CAFÉ Naïve!", "Ünïcödé résumé", "a plain lowercase text"]


def _encoder_module(encoder: keras.Model, pooling: str) -> tf.train.Checkpoint:
    """The encoder as TF Hub's reusable callable: dict of ids in, pooled and sequence outputs out.

    The Keras model is captured by the function, not tracked as an attribute:
    tracking it would save every weight a second time through its Keras
    variables.
    """

    from tl_keras.text.layers import FirstTokenPooling, MaskedMeanPooling

    pool = MaskedMeanPooling() if pooling == "mean" else FirstTokenPooling()  # the classifier's own pooling layers

    def call(inputs, training=False):
        mask = inputs["input_mask"]
        features = {"token_ids": inputs["input_word_ids"], "segment_ids": inputs["input_type_ids"], "padding_mask": mask}
        sequence = encoder(features, training=training)
        pooled = pool(sequence, mask)
        return {"pooled_output": pooled, "sequence_output": sequence, "default": pooled}

    module = tf.train.Checkpoint()
    module.variables = [v.value for v in encoder.variables]  # the tf.Variables Keras variables wrap (dropout seeds included)
    module.trainable_variables = [v.value for v in encoder.trainable_weights]
    module.__call__ = tf.function(call)
    for training in (False, True):  # TF Hub's convention: traced for both, `training` a Python bool
        module.__call__.get_concrete_function(_id_specs(), training)
    return module


class _PreprocessorModule(tf.Module):
    """TF Hub's BERT preprocessing callable: strings [N] -> ids, mask and type ids, int32 [N, sequence length]."""

    def __init__(self, tokenizer: TextTokenizer):
        super().__init__(name="text_preprocessor")
        self._tokenizer = GraphTokenizer(tokenizer, fixed_length=True)
        self._pad_id = tokenizer.pad_id
        self.__call__ = tf.function(self._call, input_signature=[tf.TensorSpec([None], tf.string, name="text")])

    def _call(self, texts):
        ids = self._tokenizer(texts)
        return {"input_word_ids": ids, "input_mask": tf.cast(ids != self._pad_id, tf.int32), "input_type_ids": tf.zeros_like(ids)}


def export_hub_encoder(
    encoder: keras.Model, tokenizer: TextTokenizer, pooling: str, out_dir: str | os.PathLike
) -> tuple[Path, Path]:
    """Writes `<out_dir>/encoder` and `<out_dir>/preprocessor` (TF Hub format); returns both folders.

    `encoder` is the text encoder (`{"token_ids", "segment_ids",
    "padding_mask"} -> sequence`) alone or the one inside a trained classifier
    (`encoder_of`).
    """
    out = Path(out_dir)
    encoder_dir, preprocessor_dir = out / "encoder", out / "preprocessor"
    module = _encoder_module(encoder, pooling)
    signature = module.__call__.get_concrete_function(_id_specs(), False)
    tf.saved_model.save(module, str(encoder_dir), signatures={"serving_default": signature})
    hidden = int(encoder.output.shape[-1])
    atomic.write_json(encoder_dir / "assets.extra" / ENCODER_FACTS, {
        "pooling": pooling, "hidden_size": hidden, "max_positions": _max_positions(encoder), "inputs": list(ID_KEYS),
        "outputs": ["pooled_output", "sequence_output"],
    })
    tf.saved_model.save(_PreprocessorModule(tokenizer), str(preprocessor_dir))
    tokenizer.save(preprocessor_dir / "assets.extra" / TOKENIZER_FOLDER)
    return encoder_dir, preprocessor_dir


def _id_specs() -> dict:
    return {k: tf.TensorSpec([None, None], tf.int32, name=k) for k in ID_KEYS}


def encoder_of(classifier: keras.Model) -> keras.Model:
    """The text encoder inside a classifier `build_text_classifier` made."""
    for layer in classifier.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ValueError(f"model {classifier.name!r} holds no encoder sub-model; is it a tl_keras text classifier?")


def _max_positions(encoder: keras.Model) -> int:
    for layer in encoder._flatten_layers(include_self=False):
        positions = getattr(layer, "sequence_length", None)
        if isinstance(positions, int):
            return positions
    return 512


def preprocessor_tokenizer(folder: str | os.PathLike, sequence_length: int | None = None) -> TextTokenizer:
    """The TextTokenizer equal to a TF Hub BERT preprocessor's, so training tokenises as the module does.

    Ours carry their settings; another publisher's gives `assets/vocab.txt`
    and its own ids on probe texts, which pick the casing.

    Raises:
        ValueError: no vocabulary, or no casing reproduces the module's ids.
    """
    folder = Path(folder)
    ours = folder / "assets.extra" / TOKENIZER_FOLDER
    if (ours / "tokenizer_settings.json").is_file():
        tokenizer = TextTokenizer.load(ours)
    else:
        vocab = folder / "assets" / "vocab.txt"
        if not vocab.is_file():
            raise ValueError(f"text_preprocessor={str(folder)!r}: no assets/vocab.txt (a WordPiece preprocessing model has one)")
        tokenizer = _probe_casing(folder, vocab.read_text(encoding="utf-8").splitlines())
    if sequence_length:
        tokenizer = TextTokenizer(tokenizer.vocabulary, tokenizer.lowercase, tokenizer.strip_accents, sequence_length)
    return tokenizer


def _probe_casing(folder: Path, vocabulary: list[str]) -> TextTokenizer:
    import tensorflow_text  # noqa: F401 - the module's ops

    module = tf.saved_model.load(str(folder))
    texts = PROBE_TEXTS + _vocabulary_probes(vocabulary)
    produced = module(tf.constant(texts))
    ids, mask = produced["input_word_ids"].numpy(), produced["input_mask"].numpy()
    rows = [row[m.astype(bool)].tolist() for row, m in zip(ids, mask)]
    length = int(ids.shape[1])
    for lowercase, strip in ((True, True), (False, False), (True, False)):
        candidate = TextTokenizer(vocabulary, lowercase, strip, length)
        if [r.tolist() for r in candidate.encode(texts)] == rows:
            return candidate
    raise ValueError(f"text_preprocessor={str(folder)!r}: no BERT casing reproduces its token ids; is it a WordPiece preprocessor?")


def _vocabulary_probes(vocabulary: list[str]) -> list[str]:
    """Texts whose ids differ by casing for this vocabulary: some of its own words upper-cased and accented."""
    words = [w for w in vocabulary if w.isalpha() and w.islower() and len(w) >= 3][:8]
    accented = str.maketrans("aeiou", "áéíóú")
    return [" ".join(w.upper() for w in words), " ".join(w.translate(accented) for w in words), " ".join(w.title() for w in words)]


def load_hub_encoder(encoder_dir: str | os.PathLike) -> tuple[keras.Model, dict]:
    """A TF Hub-format encoder as the Keras encoder a classifier is built on, and its facts (pooling, width, positions).

    The module runs inside our `HubLayer` (its own variables, trainable), so
    fine-tuning trains the module's weights.
    """
    from tl_keras.models.hub_layer import HubLayer

    encoder_dir = Path(encoder_dir)
    facts_file = encoder_dir / "assets.extra" / ENCODER_FACTS
    facts = json.loads(facts_file.read_text()) if facts_file.is_file() else {}
    layer = HubLayer(str(encoder_dir), output_key="sequence_output", trainable=True, name="hub_text_encoder")
    if "hidden_size" not in facts:
        probe = {k: tf.ones([1, 2], tf.int32) for k in ID_KEYS}
        facts["hidden_size"] = int(layer.call(probe, training=False).shape[-1])
    layer._declared_output_shape = (None, facts["hidden_size"])
    inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name) for name in ("token_ids", "segment_ids", "padding_mask")}
    sequence = layer({"input_word_ids": inputs["token_ids"], "input_mask": inputs["padding_mask"], "input_type_ids": inputs["segment_ids"]})
    facts.setdefault("pooling", "cls")
    facts.setdefault("max_positions", 512)
    return keras.Model(inputs, sequence, name="text_encoder"), facts


def pooled_outputs(encoder_dir: str | os.PathLike, texts: list[str], preprocessor_dir: str | os.PathLike) -> np.ndarray:
    """`pooled_output` of a Hub-format pair on `texts`, through the modules alone (what a TF Hub user gets)."""
    import tensorflow_text  # noqa: F401

    inputs = tf.saved_model.load(str(preprocessor_dir))(tf.constant(texts))
    return tf.saved_model.load(str(encoder_dir))(inputs, False)["pooled_output"].numpy()
