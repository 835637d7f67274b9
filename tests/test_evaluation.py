"""Metrics against a hand-computed confusion matrix; plots are real images; same seed, same metrics."""

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from tl_keras.config.run_config import recipe_config
from tl_keras.evaluation.metrics import classification_metrics, plot_curves, write_metrics
from tl_keras.run import run_experiment
from tl_keras.training.callbacks import OverfitWarning

# 3 classes, 8 examples. True:      0 0 0 1 1 2 2 2
#                        Predicted: 0 0 1 1 2 2 2 0
LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2])
PREDICTED = np.array([0, 0, 1, 1, 2, 2, 2, 0])


def _probabilities(predicted, second=None):
    p = np.full((len(predicted), 3), 0.1)
    p[np.arange(len(predicted)), predicted] = 0.7
    if second is not None:
        p[np.arange(len(predicted)), second] = 0.2
    return p


def test_metrics_match_a_hand_computed_confusion_matrix():
    metrics = classification_metrics(_probabilities(PREDICTED), LABELS, ["a", "b", "c"], top_k=2)
    assert metrics["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [1, 0, 2]]
    assert metrics["accuracy"] == pytest.approx(5 / 8)
    a, b, c = (metrics["per_class"][k] for k in "abc")
    assert (a["precision"], a["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert (b["precision"], b["recall"]) == pytest.approx((1 / 2, 1 / 2))
    assert (c["precision"], c["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert c["f1"] == pytest.approx(2 / 3) and b["support"] == 2
    assert metrics["macro"]["f1"] == pytest.approx((2 / 3 + 1 / 2 + 2 / 3) / 3)
    assert metrics["weighted"]["recall"] == pytest.approx(5 / 8)


def test_top_k_counts_the_second_guess():
    second = np.array([1, 1, 0, 0, 1, 0, 0, 2])  # the true class of examples 2, 4 and 7 comes second
    metrics = classification_metrics(_probabilities(PREDICTED, second), LABELS, ["a", "b", "c"], top_k=2)
    assert metrics["top_2_accuracy"] == 1.0


def test_files_and_plots_are_written(tmp_path):
    metrics = classification_metrics(_probabilities(PREDICTED), LABELS, ["a", "b", "c"])
    paths = write_metrics(metrics, tmp_path)
    assert json.loads(paths["metrics"].read_text())["confusion_matrix"][0] == [2, 1, 0]
    assert paths["per_class"].read_text().splitlines()[1].startswith("a,0.666667,0.666667")
    history = {
        "monitor": "val_accuracy",
        "kept_phase": "fine_tune",
        "kept_epoch": 4,
        "phases": [
            {
                "name": "frozen",
                "first_epoch": 1,
                "epochs_run": 2,
                "history": {"loss": [1.0, 0.8], "val_loss": [1.1, 0.9], "accuracy": [0.5, 0.6], "val_accuracy": [0.4, 0.5]},
            },
            {
                "name": "fine_tune",
                "first_epoch": 3,
                "epochs_run": 2,
                "history": {"loss": [0.7, 0.5], "val_loss": [0.8, 0.7], "accuracy": [0.7, 0.8], "val_accuracy": [0.6, 0.7]},
            },
        ],
    }
    curves = plot_curves(history, tmp_path / "curves.png")
    for png in (paths["confusion_matrix"], curves):
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_overfit_warning_fires_after_the_stated_streak():
    callback = OverfitWarning(patience=2)
    losses = [(1.0, 1.0), (0.9, 1.1), (0.8, 1.2), (0.7, 1.3)]
    for epoch, (loss, val_loss) in enumerate(losses):
        callback.on_epoch_end(epoch, {"loss": loss, "val_loss": val_loss})
    assert callback.warned_at == [3]


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(tmp_path):
    base = recipe_config("digits", frozen_epochs=2, fine_tune_epochs=2, verbose=0, compare_scratch=False, export=False,
                     weights="none", lr_schedule="cosine", clipnorm=1.0, seed=7)
    first = run_experiment(dataclasses.replace(base, run_dir=str(tmp_path / "one")))
    keras.backend.clear_session()
    second = run_experiment(dataclasses.replace(base, run_dir=str(tmp_path / "two")))
    one = json.loads((tmp_path / "one" / "evaluation" / "metrics.json").read_text())
    two = json.loads((tmp_path / "two" / "evaluation" / "metrics.json").read_text())
    assert one == two
    assert first["transfer_accuracy"] == second["transfer_accuracy"]
    assert (tmp_path / "one" / "curves.png").stat().st_size > 10_000


@pytest.mark.slow
def test_transfer_vs_scratch_comparison_writes_table_and_plots(tmp_path):
    from tl_keras.compare import compare_transfer_scratch, format_table

    config = recipe_config("digits", frozen_epochs=1, fine_tune_epochs=1, verbose=0, weights="none", seed=3)
    result = compare_transfer_scratch(config, [10, 3], tmp_path)
    rows = result["rows"]
    assert [r["labels_per_class"] for r in rows] == [3, 10]
    assert [r["train_images"] for r in rows] == [15, 50]
    for row in rows:  # each arm's accuracy is a count of the same test images, and the row's difference is theirs
        summary = json.loads((Path(row["run_dir"]) / "summary.json").read_text())
        held = sum(summary["counts"][row["evaluated_on"]].values())
        for arm in ("transfer_accuracy", "scratch_accuracy"):
            assert row[arm] * held == pytest.approx(round(row[arm] * held)) and row[arm] == summary[arm]
        assert row["transfer_minus_scratch"] == pytest.approx(row["transfer_accuracy"] - row["scratch_accuracy"])
    assert "labels/class" in format_table(rows)
    saved = json.loads((tmp_path / "transfer_vs_scratch.json").read_text())
    assert saved["rows"] == rows
    for name in ("by_labels", "by_epoch"):
        assert open(result["files"][name], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
