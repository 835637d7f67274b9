"""The baseline every sound run reports: MFCC statistics and a logistic regression (ridge for a value).

What a speech engineer would try first without a network: 13 MFCCs per
25 ms frame (and their deltas), mean and spread over the frames that hold
sound (within 50 dB of the clip's loudest), standardised, then
scikit-learn's logistic regression with its strength chosen on validation.
A transfer model that does not beat it has not earned its size. Counting
the silence a clip is padded with drags the statistics towards the clip's
length: on spoken digits, leave-one-speaker-out, the statistics over every
frame scored 0.48 and over the sounding frames 0.69.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from tl_keras.audio.frontend import FRAME_SECONDS, HOP_SECONDS, log_mel_db
from tl_keras.evaluation.baseline_rows import BaselineRows
from tl_keras.tasks import REGRESSION, SINGLE_LABEL

STRENGTHS = (0.01, 0.1, 1.0, 10.0)
SOUNDING_DB = 50.0  # frames this far below the clip's loudest one count as silence
FLOOR_DB = 80.0


def mfcc_statistics(waves: np.ndarray, sample_rate: int = 16000, batch: int = 256) -> np.ndarray:
    """(clips, 52): the mean and standard deviation over the sounding frames of 13 MFCCs and of their frame-to-frame deltas."""
    frame, hop = int(FRAME_SECONDS * sample_rate), int(HOP_SECONDS * sample_rate)
    fft = 1 << (frame - 1).bit_length()
    mel = tf.signal.linear_to_mel_weight_matrix(40, fft // 2 + 1, sample_rate, 20.0, sample_rate / 2 - 1)
    rows = []
    for start in range(0, len(waves), batch):
        decibels = log_mel_db(tf.constant(waves[start:start + batch]), frame, hop, fft, mel).numpy()
        peak = decibels.max(axis=(1, 2), keepdims=True)
        decibels = np.maximum(decibels, peak - FLOOR_DB)
        mfcc = tf.signal.mfccs_from_log_mel_spectrograms(tf.constant(decibels / 10.0))[..., :13].numpy()
        sounding = decibels.max(axis=2) > peak[:, :, 0] - SOUNDING_DB
        for clip, keep in zip(mfcc, sounding):
            kept = clip[keep] if keep.sum() >= 2 else clip
            delta = np.diff(kept, axis=0)
            rows.append(np.concatenate([kept.mean(0), kept.std(0), delta.mean(0), delta.std(0)]))
    return np.array(rows, np.float64)


def mfcc_baseline(waves: dict, targets: dict, spec, held_split: str, sample_rate: int = 16000,
                  rows: BaselineRows | None = None) -> dict:
    """MFCC statistics + logistic regression (ridge for a value) fitted on training, strength chosen on validation, scored on
    `held_split` in the task's own scores; with the seconds it took. On `rows` of each split (every row when None;
    a sample gets one fit at strength 1, `evaluation.baseline_rows`)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    rows = rows or BaselineRows(skip=False, rows={})
    used = ("train", "validation", held_split)
    waves = {split: rows.take(split, waves[split]) for split in used if split in waves}
    targets = {split: rows.take(split, np.asarray(targets[split])) for split in used if split in targets}
    record = rows.record({split: len(w) for split, w in waves.items()}) if rows.sampled else {}
    features = {split: mfcc_statistics(w, sample_rate) for split, w in waves.items() if len(w)}
    scaler = StandardScaler().fit(features["train"])
    x = {split: scaler.transform(f) for split, f in features.items()}
    task = spec.task
    best = None
    for strength in (1.0,) if rows.sampled else STRENGTHS:
        if spec.kind == REGRESSION:
            model = Ridge(alpha=1.0 / strength).fit(x["train"], spec.training_targets(targets["train"]))
            outputs = {s: spec.user_targets(model.predict(x[s])) for s in ("validation", held_split)}
        elif spec.kind == SINGLE_LABEL:
            model = LogisticRegression(C=strength, max_iter=2000).fit(x["train"], targets["train"])
            outputs = {s: _full_probabilities(model, x[s], len(spec.names)) for s in ("validation", held_split)}
        else:
            outputs = {s: np.zeros((len(x[s]), len(spec.names))) for s in ("validation", held_split)}
            for j in range(len(spec.names)):
                column = np.asarray(targets["train"])[:, j]
                if column.min() == column.max():
                    for s in outputs:
                        outputs[s][:, j] = column[0]
                    continue
                model = LogisticRegression(C=strength, max_iter=2000).fit(x["train"], column)
                for s in outputs:
                    outputs[s][:, j] = model.predict_proba(x[s])[:, 1]
        validation = task.scores(task.evaluate(outputs["validation"], targets["validation"], spec.names))[task.headline]
        better = best is None or (validation < best[0] if task.headline in ("mae", "rmse") else validation > best[0])
        if better:
            best = (validation, strength, outputs[held_split])
    scores = task.scores(task.evaluate(best[2], targets[held_split], spec.names))
    return {**scores, "strength": best[1], "seconds": round(time.perf_counter() - started, 1), **record}


def _full_probabilities(model, x, classes: int) -> np.ndarray:
    """predict_proba over every class, zeros for a class absent from training."""
    out = np.zeros((len(x), classes))
    out[:, model.classes_] = model.predict_proba(x)
    return out
