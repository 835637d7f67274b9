"""--baselines: every row up to a size, a seeded sample past it (said in the result), or none."""

import numpy as np
import pytest

from tests.audio_fixtures import tone
from tests.text_fixtures import sentences
from tl_keras.evaluation.baseline_rows import baseline_rows, sampled_note
from tl_keras.tasks import TargetSpec


def test_rows_are_all_up_to_the_limit_a_seeded_sorted_sample_past_it_or_none():
    sizes = {"train": 100, "validation": 30, "test": 12}
    assert baseline_rows("none", sizes).skip
    assert not baseline_rows("auto", sizes, limit=100).sampled
    assert not baseline_rows("all", sizes, limit=10).sampled
    rows = baseline_rows("auto", sizes, seed=3, limit=20)
    assert rows.sampled and not rows.skip
    assert len(rows.rows["train"]) == 20 and np.all(np.diff(rows.rows["train"]) > 0)
    np.testing.assert_array_equal(rows.rows["train"], baseline_rows("auto", sizes, seed=3, limit=20).rows["train"])
    assert rows.rows["test"] is None  # a split under the limit is used whole
    assert rows.take("train", list(range(100))) == [int(i) for i in rows.rows["train"]]
    assert rows.record(sizes) == {"rows": {"train": 20, "validation": 20, "test": 12}, "sampled": True}


def _text_splits():
    rows = sentences(120, seed=1)
    texts = [t for t, _ in rows]
    labels = np.array([int(label == "pos") for _, label in rows])
    parts = {"train": slice(0, 80), "validation": slice(80, 100), "test": slice(100, 120)}
    return {k: texts[s] for k, s in parts.items()}, {k: labels[s] for k, s in parts.items()}


def test_a_sampled_tfidf_baseline_hashes_fits_once_and_says_how_many_rows_it_saw():
    from tl_keras.text.baselines import HASHED_FEATURES, SAMPLED_STRENGTH, tfidf_baseline

    texts, labels = _text_splits()
    spec = TargetSpec("single_label", ["neg", "pos"])
    full = tfidf_baseline(texts, labels, spec, "test")
    assert "sampled" not in full and full["accuracy"] >= 0.9
    sampled = tfidf_baseline(texts, labels, spec, "test", baseline_rows("auto", {k: len(v) for k, v in texts.items()}, limit=40))
    assert sampled["sampled"] and sampled["rows"] == {"train": 40, "validation": 20, "test": 20}
    assert sampled["features"] == HASHED_FEATURES and sampled["C"] == SAMPLED_STRENGTH
    assert sampled["accuracy"] >= 0.8
    assert sampled_note(sampled) == ", on a seeded sample of 40 training rows"


def test_a_sampled_mfcc_baseline_uses_its_rows():
    from tl_keras.audio.baselines import mfcc_baseline

    rng = np.random.default_rng(0)
    pitches = (300.0, 900.0)
    waves, targets = {}, {}
    for split, count in (("train", 24), ("validation", 8), ("test", 8)):
        labels = np.arange(count) % 2
        waves[split] = np.stack([tone(pitches[y], 0.3, 16000, rng) for y in labels]).astype(np.float32)
        targets[split] = labels
    spec = TargetSpec("single_label", ["low", "high"])
    result = mfcc_baseline(waves, targets, spec, "test", 16000, baseline_rows("auto", {k: len(v) for k, v in waves.items()}, limit=10))
    assert result["rows"] == {"train": 10, "validation": 8, "test": 8} and result["strength"] == 1.0
    assert result["accuracy"] == pytest.approx(1.0)
