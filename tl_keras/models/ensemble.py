"""Model fusion: several trained classifiers averaged into one model with one signature.

Each member keeps its own resize and normalisation inside it, so members
trained at different input sizes or on different backbones combine on the
same raw uint8 image. The result is a plain functional `keras.Model` with
the classifiers' contract (uint8 image of any size in, float32
"probabilities" out), so `export_saved_model` and the TFLite converter take
it like any single model.
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
    if weights is None:
        weights = [1.0] * len(members)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (len(members),) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(f"ensemble weights must be {len(members)} non-negative numbers with a positive sum, got {weights.tolist()}")
    weights = weights / weights.sum()

    inputs = keras.Input(shape=(None, None, 3), dtype="uint8", name=INPUT_NAME)
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
    """Accuracy of every member and of the ensemble on one batched (images, labels) dataset."""
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
