"""A classifier's SavedModel from the signatures its modality supplies: the part of an export that knows nothing of inputs.

Each modality says what its requests carry (an `Endpoint`: the signature's
name, its input specs, how they become the model's input or, for a modality
that runs the model itself, its probabilities); this module adds the outputs
every signature returns (probabilities, the top-k class names and scores),
writes the versioned folder atomically with `labels.txt`, the model card,
the `.keras` copy and the Hub modules it calls, and lets the modality add
its own files (a tokenizer, warmup requests). Images and texts export
through it; a model whose input is already a tensor (float features, token
ids) gets `model_input_endpoint` for free.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Sequence

import keras
import tensorflow as tf

from tl_keras.export.saved_model import (
    carry_hub_modules, existing_versions, model_card, read_labels_file, validate_model_name, versioned_folder, write_labels_file,
)
from tl_keras.export.signatures import EXTRA_ASSETS, HUB_MODULES, KERAS_COPY, LABELS_FILE, MODEL_CARD, SERVING_SIGNATURE
from tl_keras.io import atomic, storage
from tl_keras.tasks import TargetSpec, task_of

MODEL_INPUT = "inputs"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One serving signature: its name, its inputs, and how a request's tensors become the model's input."""

    name: str
    inputs: Sequence[tf.TensorSpec]  # each with a name: the request's keys
    to_model_input: Callable | None  # (*tensors in `inputs` order) -> what the model is called on
    described: dict  # the card's {input name: "dtype [shape] meaning"}
    # (*tensors) -> probabilities, where the modality runs the model itself (images resize a batch before the rest of the model).
    predict: Callable | None = None
    card: dict = dataclasses.field(default_factory=dict)  # more of the card's entry for this signature (e.g. its TTA views)


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
    add_files: Callable[[Path], None] | None = None, allow_new_classes: bool = False, target: TargetSpec | None = None,
) -> Path | str:
    """Exports `model` (input -> its outputs) as `<export_dir>/<name>/<version>/` with one signature per endpoint; returns it.

    (Eleven parameters: a public entry point; each is a choice of the exporting modality or the user.)

    Every signature returns what the model's task answers with (`Task.serving_outputs`):
    one label: probabilities, the top-k class names and scores; tags: every
    tag's score, the tags above their thresholds and which those are; a
    number: the value, in the user's units.

    Args:
        card: entries that replace or add to the model card (e.g. the model kind, a tokenizer's facts).
        add_files: called with the staging `assets.extra/` folder to write the modality's own files.
        allow_new_classes: export even when the latest version of `name` predicts other classes (or in another order).

    Raises:
        ValueError: the class count differs from the model's outputs, or the
            class set from the latest version's (unless `allow_new_classes`).
    """
    validate_model_name(name)
    outputs = int(model.outputs[0].shape[-1])
    if len(class_names) != outputs:
        raise ValueError(f"{len(class_names)} class names for a model with {outputs} outputs")
    if not allow_new_classes:
        check_same_classes_as_served(storage.join(export_dir, name), list(class_names))
    top_k = max(1, min(int(top_k), len(class_names)))
    target = target or TargetSpec(task_of(model).kind, list(class_names))
    answer, answer_names = target.task.serving_outputs(class_names, top_k, target.thresholds)
    archive = _archive(model, answer, endpoints)
    with versioned_folder(export_dir, name, version) as (staging, version, final):
        archive.write_out(str(staging), verbose=False)
        extra = staging / EXTRA_ASSETS
        extra.mkdir(exist_ok=True)
        write_labels_file(extra / LABELS_FILE, class_names)
        signatures = {e.name: {"inputs": e.described, "outputs": answer_names, **e.card} for e in endpoints}
        written = model_card(model, name, version, class_names, top_k, metadata, signatures)
        written["task"] = target.to_dict()
        written.update(card or {})
        atomic.write_json(extra / MODEL_CARD, written)
        model.save(extra / KERAS_COPY)
        carry_hub_modules(model, extra / HUB_MODULES)
        if add_files is not None:
            add_files(extra)
    return final


def check_same_classes_as_served(model_dir: str | Path, class_names: list[str]) -> None:
    """Refuses a new version whose classes differ from the latest version's: a server would answer old clients with other classes.

    Run names derive from folder names, so two data sets can share one
    (`a/photos` and `b/photos/train` are both `photos`); TF Serving serves
    the highest version, so the new classes would silently replace the old.

    Raises:
        ValueError: names the served version, what differs, and the two ways out.
    """
    versions = existing_versions(model_dir)
    labels = storage.join(model_dir, str(versions[-1]), EXTRA_ASSETS, LABELS_FILE) if versions else None
    if labels is None or not storage.isfile(labels):
        return
    served = read_labels_file(labels)
    if served == class_names:
        return
    added, removed = sorted(set(class_names) - set(served)), sorted(set(served) - set(class_names))
    what = "; ".join(part for part in (f"new: {', '.join(added)}" if added else "", f"gone: {', '.join(removed)}" if removed else "")
                     if part) or "the same names in another order"
    raise ValueError(
        f"{model_dir}/{versions[-1]} serves classes {served}, this model predicts {class_names} ({what}): as the next version of "
        f"the same name, a server would answer its clients with other classes; export under another --name, or pass "
        "--allow_new_classes to replace the class set on purpose"
    )


def _archive(model: keras.Model, outputs: Callable, endpoints: Sequence[Endpoint]):
    archive = keras.export.ExportArchive()
    # Not archive.track(model): the endpoints track the variables they use, and track() would store each weight a second time.
    for endpoint in endpoints:
        archive.add_endpoint(endpoint.name, _serving_function(model, endpoint, outputs), input_signature=list(endpoint.inputs))
    return archive


def _serving_function(model: keras.Model, endpoint: Endpoint, outputs: Callable) -> Callable:
    # A closure, not a default argument: tf.function traces default arguments and cannot hash an Endpoint's lists.
    predict, to_model_input = endpoint.predict, endpoint.to_model_input

    def serve(*tensors):
        if predict is not None:
            return outputs(predict(*tensors))
        return outputs(model(to_model_input(*tensors), training=False))

    return serve
