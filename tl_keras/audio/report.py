"""What a sound run's report adds to the shared one: the worst clips with their spectrograms, and accuracy against noise.

The report page (`evaluation.predictions`) already has the confusion
matrix, per-class recall and calibration; a listener needs to see which
clips fooled the model and what they looked like to it, and how quickly the
model falls apart when the room gets noisy.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tl_keras.audio.augment import with_noise
from tl_keras.audio.frontend import FRAME_SECONDS, HOP_SECONDS, log_mel_db

NOISE_LEVELS_DB = (30.0, 20.0, 10.0, 5.0, 0.0)
WORST_SHOWN = 12


def noise_robustness(score: Callable[[np.ndarray], float], waves: np.ndarray, levels: Sequence[float] = NOISE_LEVELS_DB,
                     seed: int = 0) -> dict[str, float]:
    """{"clean": score, "<snr> dB": score, ...}: the held-out clips scored clean and with white noise at each SNR (seeded)."""
    found = {"clean": float(score(waves))}
    for level in levels:
        found[f"{level:g} dB"] = float(score(with_noise(waves, level, seed)))
    return found


def plot_noise(robustness: dict[str, float], measure: str, path: str | Path) -> Path:
    """The headline measure against the signal-to-noise ratio, clean at the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(robustness)
    figure, axis = plt.subplots(figsize=(5, 3))
    axis.plot(range(len(labels)), [robustness[k] for k in labels], marker="o")
    axis.set_xticks(range(len(labels)), labels)
    axis.set_xlabel("white noise, signal-to-noise ratio")
    axis.set_ylabel(measure)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return Path(path)


def worst_clips_html(probabilities: np.ndarray, labels: np.ndarray, waves: np.ndarray, paths: Sequence[str], class_names: Sequence[str],
                     sample_rate: int = 16000) -> str:
    """The misclassified clips the model was surest of, each with its file, true and predicted class, and its spectrogram."""
    predicted = probabilities.argmax(-1)
    wrong = np.flatnonzero(predicted != labels)
    if not len(wrong):
        return "<p>No clip of this split was misclassified.</p>"
    order = wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")][:WORST_SHOWN]
    rows = "".join(
        f"<tr><td>{html.escape(Path(paths[i]).name)}</td><td>{html.escape(class_names[labels[i]])}</td>"
        f"<td>{html.escape(class_names[predicted[i]])} ({probabilities[i, predicted[i]]:.2f})</td>"
        f'<td><img alt="log-mel spectrogram" src="data:image/png;base64,{spectrogram_png(waves[i], sample_rate)}"></td></tr>'
        for i in order
    )
    return ("<h2>Clips most confidently wrong</h2><table><tr><th>clip</th><th>true</th><th>predicted</th><th>log-mel spectrogram</th></tr>"
            + rows + "</table>")


def spectrogram_png(wave: np.ndarray, sample_rate: int = 16000) -> str:
    """A small log-mel spectrogram of one clip as base64 PNG (time across, low bands at the bottom)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import tensorflow as tf

    frame, hop = int(FRAME_SECONDS * sample_rate), int(HOP_SECONDS * sample_rate)
    fft = 1 << (frame - 1).bit_length()
    mel = tf.signal.linear_to_mel_weight_matrix(64, fft // 2 + 1, sample_rate, 60.0, sample_rate / 2 - 1)
    decibels = log_mel_db(tf.constant(wave[None], tf.float32), frame, hop, fft, mel).numpy()[0]
    figure, axis = plt.subplots(figsize=(2.4, 1.0))
    axis.imshow(np.maximum(decibels, decibels.max() - 60).T, origin="lower", aspect="auto", cmap="magma")
    axis.axis("off")
    figure.tight_layout(pad=0)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
