"""Model fusion: several trained classifiers averaged into one model with one signature.

Each member keeps its own preprocessing inside it (an image classifier its
resize and normalisation), so members trained at different input sizes or
on different backbones combine on the same raw input. The result is a plain
functional `keras.Model` with the members' contract (their input, float32
"probabilities" out), so the modality's exporter takes it like any single
model.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

from tl_keras.models.builders import HEAD_NAME, INPUT_NAME


def build_ensemble(members: Sequence[keras.Model], *, weights: Sequence[float] | None = None, name: str = "ensemble") -> keras.Model:
    """Averages the members' class probabilities (optionally weighted).

    Args:
        members: trained classifiers over the same classes in the same order.
        weights: one non-negative weight per member; normalised to sum to 1.
            None averages uniformly.

    Raises:
        ValueError: fewer than two members, members that disagree on the
            number of classes, or bad weights.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two models, got {len(members)}")
    widths = [int(m.outputs[0].shape[-1]) for m in members]
    if len(set(widths)) != 1:
        raise ValueError(f"ensemble members predict different numbers of classes {widths}; they must share the class list")
    specs = {(tuple(m.inputs[0].shape[1:]), str(m.inputs[0].dtype)) for m in members}
    if len(specs) != 1:
        raise ValueError(f"ensemble members take different inputs {sorted(specs)}; they must read the same input")
    if weights is None:
        weights = [1.0] * len(members)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(members),) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"ensemble weights must be {len(members)} non-negative numbers with a positive sum, got {weights.tolist()}")
    weights = weights / weights.sum()

    spec = members[0].inputs[0]
    inputs = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name=INPUT_NAME)
    outputs = []
    for index, (member, weight) in enumerate(zip(members, weights)):
        member.trainable = False
        # A view sharing the member's layers under a unique name, so two runs of
        # one architecture (same model name) can sit side by side.
        view = keras.Model(member.inputs[0], member.outputs[0], name=f"member_{index}_{member.name}")
        probabilities = view(inputs, training=False)
        outputs.append(keras.layers.Rescaling(float(weight), dtype="float32", name=f"weight_{index}")(probabilities))
    mean = keras.layers.Add(dtype="float32", name=HEAD_NAME)(outputs)
    return keras.Model(inputs, mean, name=name)


def member_report(members: Sequence[keras.Model], ensemble: keras.Model, dataset) -> dict:
    """Accuracy of every member and of the ensemble on one batched (inputs, labels) dataset."""
    labels, member_probs, ensemble_probs = [], [[] for _ in members], []
    for images, batch_labels in dataset:
        labels.append(np.asarray(batch_labels))
        for i, member in enumerate(members):
            member_probs[i].append(np.asarray(member(images, training=False)))
        ensemble_probs.append(np.asarray(ensemble(images, training=False)))
    y = np.concatenate(labels)

    def accuracy(chunks):
        return float(np.mean(np.argmax(np.concatenate(chunks), axis=-1) == y))

    return {
        "images": int(len(y)),
        "members": [{"name": m.name, "accuracy": accuracy(p)} for m, p in zip(members, member_probs)],
        "ensemble_accuracy": accuracy(ensemble_probs),
    }
