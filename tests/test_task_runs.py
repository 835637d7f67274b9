"""Tiny multi-label and regression text runs end to end: both phases, the task's measures, an export a fresh graph serves alike."""

import json
from pathlib import Path

import numpy as np
import pytest

from text_fixtures import NEGATIVE, POSITIVE, sentences
from tl_keras.config.run_config import RunConfig

pytestmark = pytest.mark.slow  # 20-35 s each; the quick tier keeps the seam's unit tests (test_tasks.py) and the tiny single-label runs


def tagged(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Sentences tagged by what they mention: tone (pos/neg), and `plot` and `acting` when named."""
    rows = []
    for text, label in sentences(count, seed):
        tags = [label] + [word for word in ("plot", "acting") if word in text.split()]
        rows.append((text, "|".join(tags)))
    return rows


def scored(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Sentences with a number: 1.5 per positive word, -1 per negative one, plus a quarter (so every value has a fraction)."""
    rows = []
    for text, _ in sentences(count, seed):
        words = text.split()
        value = 1.5 * sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words) + 0.25
        rows.append((text, f"{value:.2f}"))
    return rows


def write(path, header, rows):
    path.write_text(header + "\n" + "".join(f"{text}\t{label}\n" for text, label in rows))
    return path


def run(tmp_path, tiny_encoder, train, test, **settings):
    from tl_keras.run import run_experiment

    config = RunConfig(
        text_file=str(train), test_file=str(test), backbone=str(tiny_encoder), run_dir=str(tmp_path / "run"),
        export_dir=str(tmp_path / "sm"), fine_tune_epochs=1, batch_size=16, verbose=0, **settings,
    )
    return run_experiment(config)


def served_and_keras(tmp_path, summary, texts):
    import keras
    import tensorflow as tf

    from tl_keras.text.batches import pad_batch
    from tl_keras.text.tokenizer import TextTokenizer

    model = keras.saving.load_model(tmp_path / "run" / "model.keras", compile=False)
    tokenizer = TextTokenizer.load(tmp_path / "run" / "tokenizer")
    expected = model.predict(pad_batch(tokenizer.encode(texts), tokenizer.pad_id), verbose=0)
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"](text=tf.constant(texts))
    return {k: v.numpy() for k, v in served.items()}, expected


def test_a_tiny_multi_label_text_run_picks_thresholds_and_serves_scores_and_tags(tmp_path, tiny_encoder):
    train = write(tmp_path / "train.tsv", "text\ttags", tagged(80))
    test = write(tmp_path / "test.tsv", "text\ttags", tagged(24, seed=5))
    summary = run(tmp_path, tiny_encoder, train, test)
    assert summary["task"]["kind"] == "multi_label"
    assert summary["classes"] == ["acting", "neg", "plot", "pos"]
    assert summary["best_val_loss"] is not None  # picked on the loss: a tag set has no accuracy
    assert 0.0 <= summary["transfer_map"] <= 1.0 and "transfer_accuracy" not in summary
    assert {"map", "macro_f1"} <= set(summary["tfidf"])
    assert set(summary["probe"]) == set(summary["scores"])  # the frozen phase alone, scored on the same test texts
    thresholds = summary["task"]["thresholds"]
    assert len(thresholds) == 4
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert metrics["per_label"]["pos"]["threshold"] == pytest.approx(thresholds[3])
    assert "precision-recall" in (tmp_path / "run" / "evaluation" / "report.html").read_text()

    texts = ["the plot was good", "awful acting", "good\u00a0movie"]
    served, expected = served_and_keras(tmp_path, summary, texts)
    np.testing.assert_allclose(served["scores"], expected, atol=1e-5)
    names = np.array(summary["classes"])
    want = np.where(expected >= np.array(thresholds), names, "")
    assert [[t.decode() for t in row] for row in served["tags"]] == want.tolist()
    card = json.loads((Path(summary["export"]) / "assets.extra" / "model_card.json").read_text())
    assert card["task"]["kind"] == "multi_label" and card["task"]["thresholds"] == thresholds
    assert card["signatures"]["serving_default"]["outputs"] == ["scores", "tags", "above_threshold"]

    from tl_keras.run import run_experiment

    resumed = run_experiment(RunConfig.from_dict({**json.loads((tmp_path / "run" / "config.json").read_text()), "resume": True,
                                                  "export": False}))
    assert resumed["scores"] == pytest.approx(summary["scores"]) and resumed["task"]["thresholds"] == pytest.approx(thresholds)


def test_a_tiny_regression_text_run_answers_in_the_users_units(tmp_path, tiny_encoder):
    train = write(tmp_path / "train.tsv", "text\tvalue", scored(80))
    test = write(tmp_path / "test.tsv", "text\tvalue", scored(24, seed=5))
    summary = run(tmp_path, tiny_encoder, train, test, compare_scratch=True, scratch_budget="epochs")
    assert summary["task"]["kind"] == "regression" and summary["classes"] == ["value"]
    assert {"transfer_mae", "transfer_pearson", "scratch_mae", "transfer_minus_scratch"} <= set(summary)
    assert {"mae", "pearson"} <= set(summary["tfidf"])
    texts = ["the plot was good great", "awful bad poor", "good\u00a0movie"]
    served, expected = served_and_keras(tmp_path, summary, texts)
    np.testing.assert_allclose(served["value"], expected[:, 0], atol=1e-4)
    # The export speaks the user's units: trained on (value - 0.75) / 2.5, it answers near the training mean 0.75 (a random
    # tiny encoder tells the sentences little apart), not near the standardised target's 0.
    assert summary["task"]["mean"] == pytest.approx(0.75) and summary["task"]["std"] == pytest.approx(2.5)
    assert abs(float(np.mean(served["value"])) - 0.75) < 0.3
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert metrics["mae"] == pytest.approx(summary["transfer_mae"])
    test_values = np.array([float(v) for _, v in scored(24, seed=5)])
    assert summary["constant"]["mae"] == pytest.approx(np.mean(np.abs(test_values - 0.75)))  # the training mean for every text
    card = json.loads((Path(summary["export"]) / "assets.extra" / "model_card.json").read_text())
    assert {"validation_mae", "test_mae"} <= set(card["metrics"])
    assert metrics["target_mean"] == pytest.approx(np.mean([float(v) for _, v in scored(24, seed=5)]))


def patches(root, count: int = 48):
    """PNGs holding a red half, a green half, both or neither; tags name the colours present and the value counts red pixels."""
    from conftest import write_png

    rng = np.random.default_rng(0)
    rows = [("filename", "labels", "value")]
    for i in range(count):
        red, green = i % 2 == 0, i % 3 == 0
        pixels = rng.integers(0, 40, size=(20, 20, 3)).astype(np.uint8)
        if red:
            pixels[:, :10, 0] = 220
        if green:
            pixels[:, 10:, 1] = 220
        name = f"p{i}.png"
        write_png(root / name, pixels)
        tags = "|".join(t for t, on in (("red", red), ("green", green), ("dark", not (red or green))) if on)
        rows.append((name, tags, f"{float((pixels[:, :, 0] > 128).sum()) / 10 + 0.5:.1f}"))
    return rows


def write_csv(path, rows, columns):
    path.write_text("\n".join(",".join(str(r[c]) for c in columns) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("column", [1, 2], ids=["tags", "values"])
def test_a_tiny_image_run_of_tags_or_values_trains_measures_and_serves_what_keras_computes(tmp_path, column):
    import keras
    import tensorflow as tf

    from tl_keras.run import run_experiment

    root = tmp_path / "images"
    rows = patches(root)
    rows.append(("missing.png", "red", "3.0"))  # a row naming no image: reported and left out
    labels = write_csv(tmp_path / "labels.csv", rows, (0, column))
    config = RunConfig(
        image_dir=str(root), labels_file=str(labels), backbone="small_cnn", weights="none", image_size=16, fine_tune_epochs=1,
        fine_tune_min_steps=0, batch_size=8, run_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "sm"), verbose=0, seed=1,
    )
    summary = run_experiment(config)
    kind = "multi_label" if column == 1 else "regression"
    assert summary["task"]["kind"] == kind and summary["evaluated_on"] == "test"
    assert sum(summary["counts"]["train"].values()) > 0 and "missing.png" not in json.dumps(summary["counts"])
    assert set(summary["probe"]) == set(summary["scores"])
    assert "data:image/jpeg;base64," in (tmp_path / "run" / "evaluation" / "report.html").read_text()  # the worst, as thumbnails
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) + len(split["validation"]) + len(split["test"]) == 48
    if column == 2:  # edited labels: a resume would train the saved weights on other targets, so it is refused by name
        from tl_keras.data.splits import SplitMismatchError

        edited = write_csv(tmp_path / "labels.csv", rows[:-2] + [("p46.png", "", "99.0")], (0, column))
        with pytest.raises(SplitMismatchError, match="labels_sha256: recorded"):
            run_experiment(RunConfig.from_dict({**json.loads((tmp_path / "run" / "config.json").read_text()), "resume": True}))
        write_csv(edited, rows, (0, column))
    model = keras.saving.load_model(summary["model_keras"], compile=False)
    photo = (root / "p0.png").read_bytes()
    served = tf.saved_model.load(summary["export"]).signatures["serving_default"](image_bytes=tf.constant([photo]))
    expected = model.predict(tf.io.decode_png(photo, channels=3)[None], verbose=0)
    if kind == "multi_label":
        assert summary["classes"] == ["dark", "green", "red"]
        np.testing.assert_allclose(served["scores"].numpy(), expected, atol=1e-5)
        assert {"transfer_map", "transfer_macro_f1"} <= set(summary)
    else:
        np.testing.assert_allclose(served["value"].numpy(), expected[:, 0], atol=1e-4)
        assert summary["task"]["mean"] > 1.0  # values are in the user's units (5.5 to 20.5), and so is the export
        assert {"transfer_mae", "transfer_r2"} <= set(summary)
