"""The baseline a text user compares a fine-tuned encoder with: TF-IDF word n-grams and a logistic regression.

scikit-learn's own pieces; the L2 strength is picked on the validation
split, as the encoder's head is, so the comparison is fair.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

STRENGTHS = (0.3, 1.0, 3.0, 10.0, 30.0)


def tfidf_logistic(
    train_texts: Sequence[str], train_labels: np.ndarray, validation_texts: Sequence[str], validation_labels: np.ndarray,
    test_texts: Sequence[str], test_labels: np.ndarray,
) -> dict:
    """Test accuracy of TF-IDF (1-2-grams, sublinear tf) + logistic regression; C chosen on validation accuracy."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    train = vectorizer.fit_transform(train_texts)
    validation, test = vectorizer.transform(validation_texts), vectorizer.transform(test_texts)
    best = None
    for strength in STRENGTHS:
        model = LogisticRegression(C=strength, max_iter=2000).fit(train, train_labels)
        accuracy = float(np.mean(model.predict(validation) == validation_labels))
        if best is None or accuracy > best[0]:
            best = (accuracy, strength, model)
    accuracy, strength, model = best
    return {
        "accuracy": float(np.mean(model.predict(test) == test_labels)), "C": strength, "validation_accuracy": accuracy,
        "features": int(train.shape[1]), "seconds": round(time.perf_counter() - started, 2),
    }
