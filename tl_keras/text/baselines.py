"""The baseline a text user compares a fine-tuned encoder with: TF-IDF word n-grams and a logistic regression.

scikit-learn's own pieces; the L2 strength is picked on the validation
split, as the encoder's head is, so the comparison is fair.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from tl_keras.evaluation.baseline_rows import BaselineRows
from tl_keras.tasks import REGRESSION, SINGLE_LABEL

STRENGTHS = (0.3, 1.0, 3.0, 10.0, 30.0)
SAMPLED_STRENGTH = 3.0  # the one fit of a sampled baseline (`evaluation.baseline_rows`): the middle of the grid
HASHED_FEATURES = 1 << 20


def _vectorizer(hashed: bool, min_df: int):
    """TF-IDF of word 1-2-grams with sublinear tf. Hashed (no vocabulary to hold) when the baseline is sampled from a
    large set, so transforming every held-out text costs no memory past its own rows."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
    from sklearn.pipeline import make_pipeline

    if hashed:
        return make_pipeline(HashingVectorizer(ngram_range=(1, 2), n_features=HASHED_FEATURES, alternate_sign=False, norm=None),
                             TfidfTransformer(sublinear_tf=True))
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df)


def tfidf_logistic(
    train_texts: Sequence[str], train_labels: np.ndarray, validation_texts: Sequence[str], validation_labels: np.ndarray,
    test_texts: Sequence[str], test_labels: np.ndarray, *, sampled: bool = False,
) -> dict:
    """Test accuracy of TF-IDF (1-2-grams, sublinear tf) + logistic regression; C chosen on validation accuracy
    (one fit at `SAMPLED_STRENGTH` when `sampled`)."""
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    vectorizer = _vectorizer(sampled, min_df=1)
    train = vectorizer.fit_transform(train_texts)
    validation, test = vectorizer.transform(validation_texts), vectorizer.transform(test_texts)
    best = None
    for strength in (SAMPLED_STRENGTH,) if sampled else STRENGTHS:
        model = LogisticRegression(C=strength, max_iter=2000).fit(train, train_labels)
        accuracy = float(np.mean(model.predict(validation) == validation_labels))
        if best is None or accuracy > best[0]:
            best = (accuracy, strength, model)
    accuracy, strength, model = best
    return {
        "accuracy": float(np.mean(model.predict(test) == test_labels)), "C": strength, "validation_accuracy": accuracy,
        "features": int(train.shape[1]), "seconds": round(time.perf_counter() - started, 2),
    }


def tfidf_baseline(texts: dict[str, Sequence[str]], targets: dict[str, np.ndarray], spec, held_split: str,
                   rows: BaselineRows | None = None) -> dict:
    """The TF-IDF baseline of the run's task, scored on `held_split` in the task's own measures, on `rows` of each split
    (every row when None; `evaluation.baseline_rows`).

    One label: `tfidf_logistic`. Tags: one logistic regression per tag
    (balanced class weights, C picked on validation mAP), decided at
    thresholds chosen on validation as the model's are. A number: ridge
    regression, its penalty picked on validation squared error.
    """
    rows = rows or BaselineRows(skip=False, rows={})
    used = ("train", "validation", held_split)
    texts = {split: rows.take(split, texts[split]) for split in used}
    targets = {split: rows.take(split, np.asarray(targets[split])) for split in used}
    record = rows.record({split: len(texts[split]) for split in used}) if rows.sampled else {}
    if spec.kind == SINGLE_LABEL:
        return {**tfidf_logistic(texts["train"], targets["train"], texts["validation"], targets["validation"], texts[held_split],
                                 targets[held_split], sampled=rows.sampled), **record}
    started = time.perf_counter()
    vectorizer = _vectorizer(rows.sampled, min_df=2 if len(texts["train"]) >= 1000 else 1)
    train = vectorizer.fit_transform(texts["train"])
    validation, held = vectorizer.transform(texts["validation"]), vectorizer.transform(texts[held_split])
    if spec.kind == REGRESSION:
        scored = _ridge(train, targets["train"], validation, targets["validation"], held, sampled=rows.sampled)
    else:
        scored = _one_vs_rest(train, targets["train"], validation, targets["validation"], held, sampled=rows.sampled)
    outputs, strength, extra = scored
    scores = spec.task.scores(spec.task.evaluate(outputs, targets[held_split], spec.names, extra.get("thresholds")))
    return {**scores, "C": strength, "features": int(train.shape[1]), "seconds": round(time.perf_counter() - started, 2), **record}


def _ridge(train, train_values, validation, validation_values, held, sampled=False):
    from sklearn.linear_model import Ridge

    best = None
    for alpha in (1.0 / SAMPLED_STRENGTH,) if sampled else (0.3, 1.0, 3.0, 10.0, 30.0):
        model = Ridge(alpha=alpha).fit(train, train_values)
        error = float(np.mean((model.predict(validation) - validation_values) ** 2))
        if best is None or error < best[0]:
            best = (error, alpha, model)
    return best[2].predict(held).reshape(-1, 1), 1.0 / best[1], {}


def _one_vs_rest(train, train_tags, validation, validation_tags, held, sampled=False):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    from tl_keras.tasks.measures import choose_thresholds

    truth = np.asarray(train_tags) > 0.5

    def scores(strength, features):
        out = np.zeros((features.shape[0], truth.shape[1]))
        for j in range(truth.shape[1]):
            if truth[:, j].all() or not truth[:, j].any():
                out[:, j] = float(truth[:, j].all())
                continue
            model = LogisticRegression(C=strength, max_iter=2000, class_weight="balanced").fit(train, truth[:, j])
            out[:, j] = model.predict_proba(features)[:, 1]
        return out

    held_truth = np.asarray(validation_tags) > 0.5
    best = None
    for strength in (SAMPLED_STRENGTH,) if sampled else (0.3, 1.0, 3.0):
        on_validation = scores(strength, validation)
        present = held_truth.any(0)
        ap = float(np.mean([average_precision_score(held_truth[:, j], on_validation[:, j]) for j in np.flatnonzero(present)]))
        if best is None or ap > best[0]:
            best = (ap, strength, on_validation)
    thresholds = choose_thresholds(best[2], np.asarray(validation_tags))
    return scores(best[1], held), best[1], {"thresholds": thresholds}
