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
        if phase.rows_fitted is not None and phase.rows_fitted < len(train_cache.labels):
            phase = _past_the_sample(phase, head, train_cache, validation_cache, settings, run_dir,
                                     recording, trainer, class_weight, extra_callbacks)
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
    task = task_of_head(dense)  # the loss and metrics `fit` would log, computed on the host arrays, a chunk at a time
    train_logs = task.host_scores_in_chunks(dense, *_clean_view(train_cache), settings.label_smoothing)
    validation_logs = task.host_scores_in_chunks(dense, *_clean_view(validation_cache), settings.label_smoothing)
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
        rows_fitted=int(fitted["rows"]),
    )


# Epochs of the head over every cached row after a convex fit on a sample of them: the fit is already near
# the optimum, so a few passes settle what the other rows add, at a bounded cost.
PAST_THE_SAMPLE_EPOCHS = 5


def _past_the_sample(fit: PhaseResult, head, train_cache, validation_cache, settings, run_dir, recording, trainer,
                     class_weight, extra_callbacks) -> PhaseResult:
    """Where the convex fit saw a sample of the cached rows, the head trains from it over every row (streamed from
    the cache a batch at a time) and is kept only if validation improves on the fit; the log says which was kept."""
    total = len(train_cache.labels)
    epochs = min(PAST_THE_SAMPLE_EPOCHS, max(settings.frozen_epochs, 1))
    logging.info("frozen phase: %d rows are more than the convex fit's %d; %d epoch%s of the head over every row follow "
                 "from it", total, fit.rows_fitted, epochs, "" if epochs == 1 else "s")
    kept_fit = RunFolder(run_dir).checkpoint("frozen_head_fit")
    resume_lib.save_weights_atomically(head, kept_fit)
    streamed = _epochs_on_features(head, train_cache, validation_cache, dataclasses.replace(settings, frozen_epochs=epochs),
                                   run_dir, recording, trainer, class_weight, extra_callbacks)
    mode = phase_lib.monitor_mode(settings.monitor)
    better = streamed.best_value is not None and (
        fit.best_value is None or (streamed.best_value < fit.best_value if mode == "min" else streamed.best_value > fit.best_value))
    history = {key: fit.history.get(key, []) + values for key, values in streamed.history.items()}
    if better:
        logging.info("frozen phase: kept epoch %d over every row (%s %.4f; the sampled fit: %.4f)", streamed.best_epoch,
                     settings.monitor, streamed.best_value, fit.best_value if fit.best_value is not None else float("nan"))
        return dataclasses.replace(streamed, history=history, head_strength=fit.head_strength, rows_fitted=total,
                                   seconds=fit.seconds + streamed.seconds)
    logging.info("frozen phase: kept the sampled fit (%s %.4f); the epochs over every row did not improve on it",
                 settings.monitor, fit.best_value if fit.best_value is not None else float("nan"))
    return dataclasses.replace(fit, history=history, epochs_run=streamed.epochs_run, weights_path=str(kept_fit),
                               seconds=fit.seconds + streamed.seconds)


def _clean_view(cache) -> tuple:
    """The un-augmented rows, without copying a disk cache into memory (`FeatureCache.clean` makes arrays)."""
    count = cache.examples_per_pass
    return cache.features[:count], cache.labels[:count]


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


