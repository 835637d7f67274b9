"""The frozen phase on cached features: the backbone runs once per image, then only the head trains.

With `head_init="logistic"` (the default) the phase *is* scikit-learn's
converged logistic regression on the cached features, its L2 strength
picked by validation log-loss: no Keras epochs follow. Epochs after the fit
(over augmented views, through dropout) did not help on held-out photos,
although validation often kept one of them over the fit (docs/training.md
has the numbers and the command that measured them). With
`head_init="random"` the head trains for up to `frozen_epochs` epochs on the
cached features. Either way the head's best is saved as full-model
weights, so the next phase and a resume see an ordinary checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import time

from absl import logging

from tl_keras.config.settings import FROZEN, TrainSettings
from tl_keras.data.epochs import EpochBatches
from tl_keras.io.run_folder import RunFolder
from tl_keras.models.anatomy import anatomy
from tl_keras.training import features as features_lib
from tl_keras.training import phase as phase_lib
from tl_keras.training import resume as resume_lib
from tl_keras.training.phase import PhaseResult
from tl_keras.tasks import task_of_head


def uses_feature_cache(settings: TrainSettings) -> bool:
    return settings.feature_cache != "off" and not settings.mixes_images


def frozen_phase_on_features(
    model, trainer, train_data, validation_data, settings, run_dir, *,
    recording, augmentation, class_weight, train_examples, extra_callbacks,
):
    """Phase 1 on cached features; the head's best is then saved as full-model weights.

    (Eleven parameters: `train_two_phase`'s, passed through to the phase.)
    """
    started = time.perf_counter()
    extractor = features_lib.feature_extractor(model)
    cache_dir = RunFolder(run_dir).feature_cache
    passes = settings.feature_cache_augment_passes if augmentation is not None else 0
    train_cache = cache_training_features(extractor, train_data, settings, run_dir, augmentation, train_examples, "train")
    validation_cache = features_lib.cache_features(
        extractor, validation_data, storage=settings.feature_cache, directory=cache_dir, name="validation"
    )
    cache_seconds = time.perf_counter() - started
    logging.info(
        "cached %d training features (clean + %d augmented view%s) and %d validation features in %.1fs",
        len(train_cache.labels), passes, "" if passes == 1 else "s", len(validation_cache.labels), cache_seconds,
    )
    head = features_lib.head_on_features(model)
    if settings.head_init == "logistic":
        phase = _logistic_phase(model, head, train_cache, validation_cache, settings, run_dir, class_weight)
    else:
        phase = _epochs_on_features(
            head, train_cache, validation_cache, settings, run_dir, recording, trainer, class_weight, extra_callbacks
        )
    if phase.weights_path:
        phase_lib.load_weights_quietly(head, phase.weights_path)
        full = RunFolder(run_dir).checkpoint(FROZEN)
        resume_lib.save_weights_atomically(trainer, full)
        phase.weights_path = str(full)
    phase.seconds += cache_seconds
    phase.caching_seconds = cache_seconds
    phase.on_cached_features = True
    return phase


def cache_training_features(extractor, train_data, settings: TrainSettings, run_dir, augmentation, examples: int, name: str):
    """One clean pass over the training data (and the augmented passes the settings ask for) as cached features.

    The frozen phase and the refit on every label cache their training rows
    the same way, so the refit's head sees what the frozen phase's head saw.
    """
    passes = settings.feature_cache_augment_passes if augmentation is not None else 0
    one_pass = train_data.epoch(0) if isinstance(train_data, EpochBatches) else train_data
    return features_lib.cache_features(
        extractor, one_pass, passes=passes, augmentation=augmentation, storage=settings.feature_cache,
        directory=RunFolder(run_dir).feature_cache, num_examples=examples, name=name,
    )


def _logistic_phase(model, head, train_cache, validation_cache, settings: TrainSettings, run_dir, class_weight) -> PhaseResult:
    """The phase as one converged fit: scored once on the clean training and the validation features, saved as the head's best."""
    started = time.perf_counter()
    fitted = features_lib.fit_logistic_head(
        anatomy(model).head, train_cache, validation_cache, class_weight=class_weight, seed=settings.seed
    )
    dense = anatomy(model).head
    task = task_of_head(dense)  # the loss and metrics `fit` would log, computed on the host arrays
    train_logs = task.host_scores(dense, *train_cache.clean(), settings.label_smoothing)
    validation_logs = task.host_scores(dense, *validation_cache.clean(), settings.label_smoothing)
    history = {**{k: [v] for k, v in train_logs.items()}, **{f"val_{k}": [v] for k, v in validation_logs.items()}}
    best_path = RunFolder(run_dir).checkpoint("frozen_head")
    best_path.parent.mkdir(parents=True, exist_ok=True)
    resume_lib.save_weights_atomically(head, best_path)
    value = history.get(settings.monitor, [None])[0]
    logging.info("frozen phase: %s on the cached features (C=%g, %d rows, %.1fs): %s %.4f", task.estimator,
                 fitted["C"], fitted["rows"], fitted["seconds"], settings.monitor, value if value is not None else float("nan"))
    trainable = sum(int(math.prod(w.shape)) for w in head.trainable_weights)
    return PhaseResult(
        name=FROZEN, first_epoch=1, epochs_run=0, best_epoch=0, best_value=value, trainable_weights=trainable, history=history,
        weights_path=str(best_path), seconds=time.perf_counter() - started, head_strength=float(fitted["C"]),
    )


def _epochs_on_features(head, train_cache, validation_cache, settings, run_dir, recording, trainer, class_weight, extra_callbacks):
    """`head_init="random"`: Keras epochs of the head over the cached views, resumable like any phase.

    (Nine parameters: `run_phase`'s, for the head over cached features.)
    """
    feature_batches = train_cache.epochs(settings.batch_size, settings.seed)
    validation_batches = validation_cache.dataset(settings.batch_size)
    phase_lib.compile_phase(head, settings, False, settings.frozen_epochs, feature_batches.steps_per_epoch)
    return phase_lib.run_phase(
        head, FROZEN, feature_batches, validation_batches, settings.frozen_epochs, 0, settings, run_dir,
        class_weight=class_weight, extra_callbacks=extra_callbacks, recording=dataclasses.replace(recording, state_model=trainer),
        checkpoint_name="frozen_head",
    )


