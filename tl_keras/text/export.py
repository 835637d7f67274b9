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

from tl_keras.export import warmup
from tl_keras.export.endpoints import Endpoint, export_classifier
from tl_keras.export.signatures import EXTRA_ASSETS, SERVING_SIGNATURE, WARMUP_FILE
from tl_keras.text.graph_tokenizer import GraphTokenizer, assert_utf8
from tl_keras.text.tokenizer import TextTokenizer

TEXT_INPUT = "text"
IDS_SIGNATURE = "token_ids"
ID_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
TOKENIZER_FOLDER = "tokenizer"
WARMUP_TEXTS = ("A quietly moving film.", "", "Café naïve résumé, ❤️ 東京 https://example.com")


def export_text_saved_model(
    model: keras.Model, tokenizer: TextTokenizer, export_dir: str | os.PathLike, name: str, class_names: Sequence[str], *,
    metadata: dict | None = None, top_k: int = 5, version: int | None = None, allow_new_classes: bool = False, target=None,
) -> Path:
    """Exports `model` (token ids -> its task's outputs) as `<export_dir>/<name>/<version>/`, atomically; returns that folder.

    `target`: the run's `tasks.TargetSpec` (tag thresholds, names); by default the task read from the model's head.
    """
    card = {
        "model_kind": "text", "input_size": None, "preprocessing": None,
        "tokenizer": {
            **tokenizer.facts(), "files": f"{EXTRA_ASSETS}/{TOKENIZER_FOLDER}/",
            "in_graph": "tensorflow_text.FastBertTokenizer; longer texts are cut to sequence_length tokens ([CLS] and [SEP] included)",
        },
        "serving_needs": "import tensorflow_text (its ops); TF Serving built with the TensorFlow Text ops, or use token_ids",
    }

    def add_files(extra: Path) -> None:
        tokenizer.save(extra / TOKENIZER_FOLDER)
        write_text_warmup(extra / WARMUP_FILE, name, tokenizer)

    return export_classifier(
        model, export_dir, name, class_names, text_endpoints(tokenizer), metadata=metadata, card=card, top_k=top_k, version=version,
        add_files=add_files, allow_new_classes=allow_new_classes, target=target,
    )


def text_endpoints(tokenizer: TextTokenizer) -> list[Endpoint]:
    """`serving_default`: raw strings, tokenised in the graph; `token_ids`: BERT encoder inputs for callers who tokenise."""
    graph_tokenizer = GraphTokenizer(tokenizer)
    pad_id = tokenizer.pad_id

    def from_ids(input_word_ids, input_mask, input_type_ids):
        del input_type_ids  # single-segment classification: the model's segment ids are all 0
        return tf.where(tf.cast(input_mask, tf.bool), input_word_ids, tf.fill(tf.shape(input_word_ids), pad_id))

    return [
        Endpoint(SERVING_SIGNATURE, [tf.TensorSpec([None], tf.string, name=TEXT_INPUT)], lambda text: graph_tokenizer(assert_utf8(text)),
                 {TEXT_INPUT: "string [N] UTF-8"}),
        Endpoint(IDS_SIGNATURE, [tf.TensorSpec([None, None], tf.int32, name=n) for n in ID_INPUTS], from_ids,
                 {n: "int32 [N, L]" for n in ID_INPUTS}),
    ]


def write_text_warmup(path: Path, model_name: str, tokenizer: TextTokenizer) -> None:
    """TF Serving's warmup file: one string, a batch of strings (empty, accents, emoji, CJK, a URL), one token-id request."""
    ids = [[tokenizer.cls_id, tokenizer.unk_id, tokenizer.sep_id]]
    warmup.write_warmup_requests(path, model_name, [
        (SERVING_SIGNATURE, {TEXT_INPUT: tf.make_tensor_proto(list(WARMUP_TEXTS[:1]), dtype=tf.string)}),
        (SERVING_SIGNATURE, {TEXT_INPUT: tf.make_tensor_proto(list(WARMUP_TEXTS), dtype=tf.string)}),
        (IDS_SIGNATURE, {n: tf.make_tensor_proto(v, dtype=tf.int32) for n, v in zip(ID_INPUTS, (ids, [[1, 1, 1]], [[0, 0, 0]]))}),
    ])
