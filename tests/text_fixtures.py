"""Tiny labelled sentences and the vocabulary of the tiny BERT the text tests build."""

import numpy as np

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "great", "fine", "bad", "awful", "poor", "movie", "the", "a", "was",
         "plot", "acting", "and", "very", "not", "cafe", "naive", "##s", "!", ".", "'", "t", "don"]
POSITIVE = ["good", "great", "fine"]
NEGATIVE = ["bad", "awful", "poor"]


def sentences(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Tiny review sentences whose label is told by their adjectives."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(count):
        label = "pos" if i % 2 == 0 else "neg"
        words = POSITIVE if label == "pos" else NEGATIVE
        filler = ["the", "movie", "was", "very", "and", "the", "plot", "acting"]
        body = [str(w) for w in rng.choice(filler, size=rng.integers(2, 9))] + [str(rng.choice(words)) for _ in range(2)]
        rng.shuffle(body)
        rows.append((" ".join(body) + " .", label))
    return rows
