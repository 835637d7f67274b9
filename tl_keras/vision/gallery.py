"""Error gallery: the most confident mistakes, kept while predictions stream by, drawn as image grids.

A test split can be far larger than memory, so the images are not stored:
`ExampleKeeper` sees each batch once and keeps only what the report shows
(bounded heaps of the highest-loss mistakes, overall and per class, and a
few correct images from distinct classes). Per-class mistakes are kept as
small thumbnails, so the memory stays bounded with a thousand classes too.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
from pathlib import Path
from typing import Sequence

import numpy as np

THUMBNAIL_SIDE = 96


@dataclasses.dataclass
class Example:
    """One evaluated image: its position in the split, true and predicted class, and the probabilities."""

    index: int
    label: int
    predicted: int
    probabilities: np.ndarray
    image: np.ndarray  # uint8 [H, W, 3]

    @property
    def confidence(self) -> float:
        return float(self.probabilities[self.predicted])


class ExampleKeeper:
    """Keeps the highest-loss mistakes (overall and per true class) and a few correct images, one batch at a time."""

    def __init__(self, num_classes: int, *, mistakes: int = 16, per_class: int = 4, correct: int = 8):
        self.mistakes, self.per_class, self.correct_wanted = mistakes, per_class, correct
        self._overall: list[tuple[float, int, Example]] = []
        self._by_class: list[list[tuple[float, int, Example]]] = [[] for _ in range(num_classes)]
        self._correct: dict[int, Example] = {}
        self._seen = 0

    def add(self, images: np.ndarray, probabilities: np.ndarray, labels: np.ndarray) -> None:
        predicted = probabilities.argmax(axis=1)
        losses = -np.log(np.maximum(probabilities[np.arange(len(labels)), labels], 1e-12))
        for row in range(len(labels)):
            index = self._seen + row
            label, guess = int(labels[row]), int(predicted[row])
            if label == guess:
                if len(self._correct) < self.correct_wanted and label not in self._correct:
                    self._correct[label] = Example(index, label, guess, probabilities[row].copy(), np.array(images[row]))
                continue
            loss = float(losses[row])
            if _wants(self._overall, self.mistakes, loss):
                _push(
                    self._overall,
                    self.mistakes,
                    (loss, -index, Example(index, label, guess, probabilities[row].copy(), np.array(images[row]))),
                )
            if _wants(self._by_class[label], self.per_class, loss):
                thumb = _thumbnail(np.asarray(images[row]))
                _push(self._by_class[label], self.per_class, (loss, -index, Example(index, label, guess, probabilities[row].copy(), thumb)))
        self._seen += len(labels)

    def top_mistakes(self) -> list[Example]:
        """Highest loss first (ties: earlier image first)."""
        return [entry[2] for entry in sorted(self._overall, key=lambda e: (-e[0], -e[1]))]

    def mistakes_of(self, label: int) -> list[Example]:
        return [entry[2] for entry in sorted(self._by_class[label], key=lambda e: (-e[0], -e[1]))]

    def correct_examples(self) -> list[Example]:
        return [self._correct[label] for label in sorted(self._correct)]


def _wants(heap: list, size: int, loss: float) -> bool:
    return size > 0 and (len(heap) < size or loss > heap[0][0])


def _push(heap: list, size: int, entry: tuple) -> None:
    if len(heap) < size:
        heapq.heappush(heap, entry)
    else:
        heapq.heapreplace(heap, entry)


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """A copy at most THUMBNAIL_SIDE on its long side (nearest-pixel; it is only looked at)."""
    height, width = image.shape[:2]
    step = max(1, int(np.ceil(max(height, width) / THUMBNAIL_SIDE)))
    return np.array(image[::step, ::step])


def plot_examples(examples: Sequence[Example], class_names: Sequence[str], path: str | os.PathLike, title: str, *,
                  heat_maps: Sequence[np.ndarray] | None = None, columns: int = 4) -> Path | None:
    """A grid of images titled `true / predicted (probability)`; with `heat_maps`, each image is followed by its Grad-CAM overlay.

    Returns the PNG's path, or None when there is nothing to draw.
    """
    if not examples:
        return None
    from tl_keras.evaluation.metrics import _pyplot
    from tl_keras.vision.explain import overlay

    plt = _pyplot()
    panels: list[tuple[np.ndarray, str, str]] = []
    for position, example in enumerate(examples):
        verdict = "ok" if example.label == example.predicted else "wrong"
        caption = f"true {class_names[example.label]}\npred {class_names[example.predicted]} ({example.confidence:.2f})"
        panels.append((example.image, caption, verdict))
        if heat_maps is not None:
            panels.append((overlay(example.image, heat_maps[position]), "Grad-CAM", verdict))
    columns = columns * (2 if heat_maps is not None else 1)
    rows = int(np.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.2 * columns, 2.5 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (image, caption, verdict) in zip(axes.flat, panels):
        ax.imshow(image)
        ax.set_title(caption, fontsize=8, color="darkred" if verdict == "wrong" else "darkgreen")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return Path(path)


def thumbnail_html(path: str, side: int = 96) -> str:
    """A photo as a small embedded thumbnail with its file name, for a report's table; the name alone if it cannot be read."""
    import base64
    import html
    import io
    from pathlib import Path

    from PIL import Image

    name = html.escape(Path(path).name)
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
    except (OSError, ValueError):
        return name
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{name}" src="data:image/jpeg;base64,{data}"><br>{name}'
