"""A text classifier's SavedModel for TF Serving: raw strings in, in the versioned layout images use.

`serving_default` takes `text` (string [N]) and tokenises inside the graph
(`graph_tokenizer`: TensorFlow Text's FastBertTokenizer on the run's
vocabulary and casing, truncated to the recorded sequence length, padded to
the batch's longest text); a request with a text that is not UTF-8 fails
alone with a message naming its rows. `token_ids` takes the BERT encoder
inputs TF Hub's text models use (`input_word_ids`, `input_mask`,
`input_type_ids`, int32 [N, L]) for callers who tokenise themselves with the
shipped `vocab.txt`. Loading needs `import tensorflow_text` (its ops) besides
TensorFlow. `assets.extra/` holds `labels.txt`, `model_card.json` (with the
tokenizer's facts), the tokenizer folder, warmup requests with real strings
and the `.keras` copy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from tl_keras.io import atomic
from tl_keras.export.saved_model import model_card, versioned_folder
from tl_keras.export.signatures import (
    CLASSES, EXTRA_ASSETS, KERAS_COPY, LABELS_FILE, MODEL_CARD, PROBABILITIES, SCORES, SERVING_SIGNATURE, WARMUP_FILE,
)
from tl_keras.text.graph_tokenizer import GraphTokenizer, assert_utf8
from tl_keras.text.tokenizer import TextTokenizer

TEXT_INPUT = "text"
IDS_SIGNATURE = "token_ids"
ID_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
TOKENIZER_FOLDER = "tokenizer"
WARMUP_TEXTS = ("A quietly moving film.", "", "Café naïve résumé, ❤️ 東京 https://example.com")


def export_text_saved_model(
    model: keras.Model, tokenizer: TextTokenizer, export_dir: str | os.PathLike, name: str, class_names: Sequence[str], *,
    metadata: dict | None = None, top_k: int = 5, version: int | None = None,
) -> Path:
    """Exports `model` (token ids -> probabilities) as `<export_dir>/<name>/<version>/`, atomically; returns that folder."""
    top_k = max(1, min(int(top_k), len(class_names)))
    archive = _archive(model, tokenizer, class_names, top_k)
    with versioned_folder(export_dir, name, version) as (staging, version):
        archive.write_out(str(staging), verbose=False)
        extra = staging / EXTRA_ASSETS
        extra.mkdir(exist_ok=True)
        (extra / LABELS_FILE).write_text("".join(f"{c}\n" for c in class_names))
        tokenizer.save(extra / TOKENIZER_FOLDER)
        card = model_card(model, name, version, class_names, top_k, metadata)
        card["model_kind"] = "text"
        card["input_size"] = card["preprocessing"] = None
        card["tokenizer"] = {
            **tokenizer.facts(), "files": f"{EXTRA_ASSETS}/{TOKENIZER_FOLDER}/",
            "in_graph": "tensorflow_text.FastBertTokenizer; longer texts are cut to sequence_length tokens ([CLS] and [SEP] included)",
        }
        card["signatures"] = {
            SERVING_SIGNATURE: {"inputs": {TEXT_INPUT: "string [N] UTF-8"}, "outputs": [PROBABILITIES, CLASSES, SCORES]},
            IDS_SIGNATURE: {"inputs": {n: "int32 [N, L]" for n in ID_INPUTS}, "outputs": [PROBABILITIES, CLASSES, SCORES]},
        }
        card["serving_needs"] = "import tensorflow_text (its ops); TF Serving built with the TensorFlow Text ops, or use token_ids"
        atomic.write_json(extra / MODEL_CARD, card)
        write_text_warmup(extra / WARMUP_FILE, name, tokenizer)
        model.save(extra / KERAS_COPY)
    return staging.parent / str(version)


def _archive(model: keras.Model, tokenizer: TextTokenizer, class_names: Sequence[str], top_k: int) -> keras.export.ExportArchive:
    names = tf.constant(list(class_names))
    pad_id = tokenizer.pad_id
    graph_tokenizer = GraphTokenizer(tokenizer)

    def outputs(ids):
        probabilities = model(ids, training=False)
        scores, indices = tf.math.top_k(probabilities, k=top_k)
        return {PROBABILITIES: probabilities, CLASSES: tf.gather(names, indices), SCORES: scores}

    def serve_text(text):
        return outputs(graph_tokenizer(assert_utf8(text)))

    def serve_ids(input_word_ids, input_mask, input_type_ids):
        del input_type_ids  # single-segment classification: the model's segment ids are all 0
        return outputs(tf.where(tf.cast(input_mask, tf.bool), input_word_ids, tf.fill(tf.shape(input_word_ids), pad_id)))

    archive = keras.export.ExportArchive()
    # Not archive.track(model): the endpoints track the variables they use, and track() would store each weight a second time.
    archive.add_endpoint(SERVING_SIGNATURE, serve_text, input_signature=[tf.TensorSpec([None], tf.string, name=TEXT_INPUT)])
    spec = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ID_INPUTS]
    archive.add_endpoint(IDS_SIGNATURE, serve_ids, input_signature=spec)
    return archive


def write_text_warmup(path: Path, model_name: str, tokenizer: TextTokenizer) -> None:
    """TF Serving's warmup file: one string, a batch of strings (empty, accents, emoji, CJK, a URL), one token-id request."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    ids = [[tokenizer.cls_id, tokenizer.unk_id, tokenizer.sep_id]]
    payloads = [
        (SERVING_SIGNATURE, {TEXT_INPUT: tf.make_tensor_proto(list(WARMUP_TEXTS[:1]), dtype=tf.string)}),
        (SERVING_SIGNATURE, {TEXT_INPUT: tf.make_tensor_proto(list(WARMUP_TEXTS), dtype=tf.string)}),
        (IDS_SIGNATURE, {n: tf.make_tensor_proto(v, dtype=tf.int32) for n, v in zip(ID_INPUTS, (ids, [[1, 1, 1]], [[0, 0, 0]]))}),
    ]
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, inputs in payloads:
            request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
            for key, tensor in inputs.items():
                request.inputs[key].CopyFrom(tensor)
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
