"""A text classifier scored on a split: `evaluation.predictions` writes the files, with the mistakes shown as text.

The report's mistakes section is a table of the most confident wrong
predictions (true class, predicted class, probability, the text,
HTML-escaped).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Sequence

import numpy as np

from tl_keras.evaluation.calibration import apply_temperature
from tl_keras.evaluation.predictions import SplitReport, evaluate_predictions

MISTAKES_SHOWN = 20
# Characters of a text shown in the mistakes table; the rest is cut with an ellipsis.
TEXT_SHOWN = 300


def evaluate_text_split(
    probabilities: np.ndarray, labels: np.ndarray, texts: Sequence[str], class_names: Sequence[str], out_dir: str | Path,
    about: SplitReport,
) -> dict:
    """Writes the evaluation files for predicted `probabilities` of `texts`; returns the metrics (also metrics.json)."""
    temperature = about.temperature
    shown = apply_temperature(probabilities, temperature) if temperature and temperature != 1.0 else probabilities
    return evaluate_predictions(probabilities, labels, class_names, out_dir, about, noun="texts",
                                mistakes_html=mistakes_table(shown, labels, texts, class_names),
                                explained_with="not available for text models")


def mistakes_table(probabilities: np.ndarray, labels: np.ndarray, texts: Sequence[str], class_names: Sequence[str]) -> str:
    """The most confident mistakes as an HTML table (every text escaped)."""
    predicted = probabilities.argmax(1)
    wrong = np.flatnonzero(predicted != labels)
    if not len(wrong):
        return '<p class="note">No mistakes on this split.</p>'
    order = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:MISTAKES_SHOWN]
    rows = []
    for i in order:
        text = texts[i] if len(texts[i]) <= TEXT_SHOWN else texts[i][:TEXT_SHOWN] + "..."
        rows.append(
            f"<tr><td>{html.escape(class_names[labels[i]])}</td><td>{html.escape(class_names[predicted[i]])}</td>"
            f'<td>{probabilities[i, predicted[i]]:.3f}</td><td class="text">{html.escape(text)}</td></tr>'
        )
    return (
        f'<p class="note">{len(wrong)} mistakes; the {len(order)} most confident:</p>'
        "<table><tr><th>true</th><th>predicted</th><th>probability</th><th>text</th></tr>" + "".join(rows) + "</table>"
    )
