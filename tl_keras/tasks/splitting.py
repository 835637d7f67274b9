"""Splits for tag sets and for numbers, with the single-label split's contract: index arrays per split, sorted, seeded.

A random split of tag sets can leave a rare tag with no validation example,
where its threshold cannot be chosen, or with none in training; iterative
stratification (Sechidis, Tsoumakas and Vlahavas, 2011) deals the rarest
tag's examples first, each to the split that still wants that tag most.
Numbers are stratified by quantile bins so each split spans the range.
"""

from __future__ import annotations

import numpy as np

SPLIT_NAMES = ("train", "validation", "test")


def iterative_stratified_split(truth: np.ndarray, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Index arrays for train/validation/test in which every tag's positives are shared in the split's proportions."""
    truth = np.asarray(truth, bool)
    rng = np.random.default_rng(seed)
    fractions = np.array([1.0 - validation_fraction - test_fraction, validation_fraction, test_fraction])
    wanted_total = fractions * len(truth)
    wanted = fractions[:, None] * truth.sum(axis=0)[None, :]
    assigned = np.full(len(truth), -1)
    remaining = truth.copy()
    unassigned = np.ones(len(truth), bool)
    while True:
        counts = remaining[unassigned].sum(axis=0)
        open_tags = np.flatnonzero(counts > 0)
        if not len(open_tags):
            break
        tag = open_tags[np.argmin(counts[open_tags])]  # the rarest tag still to deal
        for example in rng.permutation(np.flatnonzero(unassigned & truth[:, tag])):
            split = _most_wanting(wanted[:, tag], wanted_total, rng)
            assigned[example] = split
            unassigned[example] = False
            wanted[split, truth[example]] -= 1
            wanted_total[split] -= 1
    for example in rng.permutation(np.flatnonzero(unassigned)):  # examples with no tag: by size alone
        split = _most_wanting(wanted_total, wanted_total, rng)
        assigned[example] = split
        wanted_total[split] -= 1
    return {name: np.flatnonzero(assigned == i).astype(np.int64) for i, name in enumerate(SPLIT_NAMES)}


def _most_wanting(wanted: np.ndarray, wanted_total: np.ndarray, rng: np.random.Generator) -> int:
    """The split that wants the tag most; ties go to the one that wants the most examples, then at random."""
    candidates = np.flatnonzero(wanted == wanted.max())
    if len(candidates) > 1:
        candidates = candidates[wanted_total[candidates] == wanted_total[candidates].max()]
    return int(rng.choice(candidates))


def quantile_bins(values: np.ndarray, bins: int = 10) -> np.ndarray:
    """Each value's quantile bin (0..bins-1), fewer bins where the values have fewer distinct levels or too few rows."""
    values = np.asarray(values, np.float64)
    bins = max(1, min(bins, len(values) // 10, len(np.unique(values))))
    if bins == 1:
        return np.zeros(len(values), np.int64)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.searchsorted(edges, values, side="right").astype(np.int64)
