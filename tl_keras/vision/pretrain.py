"""Pretraining a backbone on a built-in source task, for the offline default.

Real transfer needs a backbone trained on a *different* task. Online users
get that from `weights="imagenet"`; offline, `weights="pretrain:digits_0_4"`
trains the backbone on digits 0-4 first, saves its weights file, and the run
then loads that file through the same `weights=PATH` route that ImageNet
weights files take.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import keras
from absl import logging

from tl_keras.io import atomic
from tl_keras.vision import data as data_lib
from tl_keras.vision.backbones import BACKBONES, load_backbone
from tl_keras.models.builders import compile_classifier
from tl_keras.vision.classifier import build_classifier

PREFIX = "pretrain:"
SOURCE_EPOCHS = 10
SOURCE_LEARNING_RATE = 2e-3


def is_pretrain_spec(weights: str | None) -> bool:
    return bool(weights) and str(weights).startswith(PREFIX)


def pretrain_backbone(
    backbone: str,
    source: str,
    out_dir: str | os.PathLike,
    *,
    image_size: int = 0,
    alpha: float = 0.0,
    batch_size: int = 32,
    epochs: int = SOURCE_EPOCHS,
    seed: int = 42,
) -> Path:
    """Trains `backbone` from random weights on the built-in `source` dataset.

    Returns the path of the backbone's weights file. An existing file for the
    same backbone, size and source is reused, so reruns skip pretraining;
    the file is written under a temporary name and renamed, so a killed
    pretraining never leaves a truncated file to be reused.
    """
    if backbone not in BACKBONES:
        raise ValueError(f"--weights={PREFIX}{source} needs a registered --backbone, not {backbone!r}")
    if source not in data_lib.BUILTIN_DATASETS:
        raise ValueError(f"--weights: unknown source dataset {source!r} in {PREFIX}{source}; known: {', '.join(data_lib.BUILTIN_DATASETS)}")
    size = image_size or BACKBONES[backbone].input_size
    out = Path(out_dir)
    keras.utils.set_random_seed(seed)
    net = load_backbone(backbone, None, image_size=size, alpha=alpha)
    # The file name carries a hash of the architecture and the recipe, so a
    # file left by other code (a changed network or schedule) is never reused.
    recipe = json.dumps({"architecture": net.layer.get_config(), "epochs": epochs, "batch_size": batch_size,
                         "learning_rate": SOURCE_LEARNING_RATE, "source": source, "seed": seed}, sort_keys=True, default=str)
    tag = f"{backbone}{'_a' + str(alpha) if alpha else ''}_{size}px_{source}_seed{seed}_{hashlib.sha256(recipe.encode()).hexdigest()[:8]}"
    weights_path = out / f"{tag}.weights.h5"
    if weights_path.is_file():
        logging.info("reusing pretrained source weights %s", weights_path)
        return weights_path
    out.mkdir(parents=True, exist_ok=True)
    splits = data_lib.load_builtin(source, validation_fraction=0.2, test_fraction=0.0, seed=seed)
    model = build_classifier(net, len(splits.class_names), dropout=0.2, freeze_batch_norm=False, name=f"{backbone}_source")
    net.layer.trainable = True
    compile_classifier(model, "adam", SOURCE_LEARNING_RATE)
    train = data_lib.make_batches(splits.train, size, batch_size, shuffle=True, seed=seed)
    validation = data_lib.make_batches(splits.validation, size, batch_size)
    logging.info("pretraining %s on source task %s for %d epochs", backbone, source, epochs)
    history = model.fit(train, validation_data=validation, epochs=epochs, verbose=0, shuffle=False)
    _, accuracy = model.evaluate(validation, verbose=0)
    atomic.write_with(weights_path, lambda partial: net.layer.save_weights(str(partial)))
    atomic.write_json(out / f"{tag}.json", {
        "backbone": backbone, "source": source, "image_size": size, "epochs": epochs, "source_validation_accuracy": float(accuracy),
        "history": {k: [float(x) for x in v] for k, v in history.history.items()},
    })
    logging.info("source task %s: validation accuracy %.4f; weights in %s/%s", source, accuracy, out.name, Path(weights_path).name)
    return weights_path
