"""A classifier's SavedModel from the signatures its modality supplies: the part of an export that knows nothing of inputs.

Each modality says what its requests carry (an `Endpoint`: the signature's
name, its input specs, how they become the model's input); this module adds
the outputs every signature returns (probabilities, the top-k class names
and scores), writes the versioned folder atomically with `labels.txt`, the
model card and the `.keras` copy, and lets the modality add its own files
(a tokenizer, warmup requests). Texts export through it; a model whose
input is already a tensor (float features, token ids) gets
`model_input_endpoint` for free.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import keras
import tensorflow as tf

from tl_keras.export.saved_model import model_card, versioned_folder
from tl_keras.export.signatures import CLASSES, EXTRA_ASSETS, KERAS_COPY, LABELS_FILE, MODEL_CARD, PROBABILITIES, SCORES, SERVING_SIGNATURE
from tl_keras.io import atomic

MODEL_INPUT = "inputs"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One serving signature: its name, its inputs, and how a request's tensors become the model's input."""

    name: str
    inputs: Sequence[tf.TensorSpec]  # each with a name: the request's keys
    to_model_input: Callable  # (*tensors in `inputs` order) -> what the model is called on
    described: dict  # the card's {input name: "dtype [shape] meaning"}


def model_input_endpoint(model: keras.Model, name: str = SERVING_SIGNATURE) -> Endpoint:
    """The model's own (single) input as the request: for models whose input is already a tensor a client can send."""
    spec = model.inputs[0]
    dtype = tf.as_dtype(spec.dtype)
    dims = ", ".join(["N", *(str(d) if d else "?" for d in spec.shape[1:])])
    described = {MODEL_INPUT: f"{dtype.name} [{dims}]"}
    return Endpoint(name, [tf.TensorSpec(spec.shape, dtype, name=MODEL_INPUT)], lambda tensor: tensor, described)


def export_classifier(
    model: keras.Model, export_dir: str | os.PathLike, name: str, class_names: Sequence[str], endpoints: Sequence[Endpoint], *,
    metadata: dict | None = None, card: dict | None = None, top_k: int = 5, version: int | None = None,
    add_files: Callable[[Path], None] | None = None,
) -> Path:
    """Exports `model` (input -> probabilities) as `<export_dir>/<name>/<version>/` with one signature per endpoint; returns it.

    (Ten parameters: a public entry point; each is a choice of the exporting modality or the user.)

    Args:
        card: entries that replace or add to the model card (e.g. the model kind, a tokenizer's facts).
        add_files: called with the staging `assets.extra/` folder to write the modality's own files.
    """
    top_k = max(1, min(int(top_k), len(class_names)))
    archive = _archive(model, class_names, endpoints, top_k)
    with versioned_folder(export_dir, name, version) as (staging, version):
        archive.write_out(str(staging), verbose=False)
        extra = staging / EXTRA_ASSETS
        extra.mkdir(exist_ok=True)
        (extra / LABELS_FILE).write_text("".join(f"{c}\n" for c in class_names))
        signatures = {e.name: {"inputs": e.described, "outputs": [PROBABILITIES, CLASSES, SCORES]} for e in endpoints}
        written = model_card(model, name, version, class_names, top_k, metadata, signatures)
        written.update(card or {})
        atomic.write_json(extra / MODEL_CARD, written)
        if add_files is not None:
            add_files(extra)
        model.save(extra / KERAS_COPY)
    return staging.parent / str(version)


def _archive(model: keras.Model, class_names: Sequence[str], endpoints: Sequence[Endpoint], top_k: int):
    names = tf.constant(list(class_names))

    def outputs(model_input):
        probabilities = model(model_input, training=False)
        scores, indices = tf.math.top_k(probabilities, k=top_k)
        return {PROBABILITIES: probabilities, CLASSES: tf.gather(names, indices), SCORES: scores}

    archive = keras.export.ExportArchive()
    # Not archive.track(model): the endpoints track the variables they use, and track() would store each weight a second time.
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, _serving_function(endpoint.to_model_input, outputs), input_signature=list(endpoint.inputs))
    return archive


def _serving_function(to_model_input: Callable, outputs: Callable) -> Callable:
    # A closure, not a default argument: tf.function traces default arguments and cannot hash an Endpoint's lists.
    def serve(*tensors):
        return outputs(to_model_input(*tensors))

    return serve
