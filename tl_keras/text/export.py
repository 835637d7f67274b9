"""A text classifier's SavedModel for TF Serving: token ids in, in the versioned layout images use.

The serving signature takes the BERT encoder inputs TF Hub's text models
use (`input_word_ids`, `input_mask`, `input_type_ids`, int32 [N, L]), so a
caller who tokenises with the shipped `vocab.txt` and the settings in the
model card gets the Keras model's probabilities. The mask is honoured: ids
where it is 0 are replaced by the pad id before the model sees them (the
model derives its own mask from the pad id). `assets.extra/` holds
`labels.txt`, `model_card.json` (with the tokenizer's facts), the tokenizer
folder (`vocab.txt`, settings) and the `.keras` copy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import keras
import tensorflow as tf

from tl_keras import atomic
from tl_keras.export import model_card, versioned_folder
from tl_keras.signatures import CLASSES, EXTRA_ASSETS, KERAS_COPY, LABELS_FILE, MODEL_CARD, PROBABILITIES, SCORES
from tl_keras.text.tokenizer import TextTokenizer

IDS_SIGNATURE = "serving_default"
ID_INPUTS = ("input_word_ids", "input_mask", "input_type_ids")
TOKENIZER_FOLDER = "tokenizer"


def export_text_saved_model(
    model: keras.Model, tokenizer: TextTokenizer, export_dir: str | os.PathLike, name: str, class_names: Sequence[str], *,
    metadata: dict | None = None, top_k: int = 5, version: int | None = None,
) -> Path:
    """Exports `model` (token ids -> probabilities) as `<export_dir>/<name>/<version>/`, atomically; returns that folder."""
    top_k = max(1, min(int(top_k), len(class_names)))
    names = tf.constant(list(class_names))
    pad_id = tokenizer.pad_id

    def serve(input_word_ids, input_mask, input_type_ids):
        del input_type_ids  # single-segment classification: the model's segment ids are all 0
        ids = tf.where(tf.cast(input_mask, tf.bool), input_word_ids, tf.fill(tf.shape(input_word_ids), pad_id))
        probabilities = model(ids, training=False)
        scores, indices = tf.math.top_k(probabilities, k=top_k)
        return {PROBABILITIES: probabilities, CLASSES: tf.gather(names, indices), SCORES: scores}

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = [tf.TensorSpec([None, None], tf.int32, name=n) for n in ID_INPUTS]
    archive.add_endpoint(IDS_SIGNATURE, serve, input_signature=spec)
    with versioned_folder(export_dir, name, version) as (staging, version):
        archive.write_out(str(staging), verbose=False)
        extra = staging / EXTRA_ASSETS
        extra.mkdir(exist_ok=True)
        (extra / LABELS_FILE).write_text("".join(f"{c}\n" for c in class_names))
        tokenizer.save(extra / TOKENIZER_FOLDER)
        card = model_card(model, name, version, class_names, top_k, metadata)
        card["model_kind"] = "text"
        card["tokenizer"] = {**tokenizer.facts(), "files": f"{EXTRA_ASSETS}/{TOKENIZER_FOLDER}/"}
        card["signatures"] = {
            IDS_SIGNATURE: {"inputs": {n: "int32 [N, L]" for n in ID_INPUTS}, "outputs": [PROBABILITIES, CLASSES, SCORES]},
        }
        atomic.write_json(extra / MODEL_CARD, card)
        model.save(extra / KERAS_COPY)
    return staging.parent / str(version)
