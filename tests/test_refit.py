"""The refit on every label: validation folded into training, the kept recipe replayed with its choices fixed, the export scored."""

import dataclasses
import functools
import json
import warnings

import keras
import numpy as np
import pytest

from tl_keras.vision import data as data_lib
from tl_keras.config.run_config import recipe_config
from tl_keras.config.settings import FINE_TUNE, FROZEN, TrainSettings
from tl_keras.training import refit as refit_lib
from tl_keras.training.features import FeatureCache, fit_logistic_head
from tl_keras.training.phase import PhaseResult
from tl_keras.training.two_phase import TrainingResult


def test_all_labelled_folds_validation_into_training_and_keeps_test_apart(image_folder):
    splits = data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=0)
    pooled = data_lib.all_labelled(splits)
    assert pooled.validation is None
    assert pooled.size("train") == splits.size("train") + splits.size("validation")
    train_keys = set(pooled.indexed["train"].keys)
    assert train_keys == set(splits.indexed["train"].keys) | set(splits.indexed["validation"].keys)
    assert not train_keys & set(splits.indexed["test"].keys)
    labels = [int(y) for _, y in pooled.train.as_numpy_iterator()]
    assert sorted(labels) == sorted(pooled.indexed["train"].labels.tolist())


def test_a_fixed_strength_fits_without_validation_and_matches_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 5)).astype(np.float32)
    labels = (features[:, 0] + 0.5 * features[:, 1] > 0).astype(np.int32) + (features[:, 2] > 1).astype(np.int32)
    head = keras.layers.Dense(3, activation="softmax")
    head.build((None, 5))
    fitted = fit_logistic_head(head, FeatureCache(features, labels, len(labels)), None, strength=0.3)
    assert fitted["C"] == 0.3 and fitted["validation_log_loss"] is None
    expected = LogisticRegression(C=0.3, max_iter=1000, tol=1e-4).fit(features, labels).predict_proba(features)
    np.testing.assert_allclose(np.asarray(head(features)), expected, atol=1e-4)


def _phase(name, first, run, best, value, strength=None, planned=0):
    return PhaseResult(name, first, run, best, value, 1, {}, "w.h5", head_strength=strength, planned_epochs=planned)


def _result(kept, kept_epoch, *phases):
    return TrainingResult(list(phases), "val_accuracy", kept, kept_epoch, 0.9, None)


def test_the_plan_replays_what_validation_chose(tmp_path):
    frozen = _phase(FROZEN, 1, 0, 0, 0.8, strength=0.03)
    tuned = _phase(FINE_TUNE, 1, 4, 3, 0.9, planned=7)  # early-stopped after 4 of 7 epochs, best at its third
    plan = refit_lib.refit_plan(_result(FINE_TUNE, 3, frozen, tuned), TrainSettings(), tmp_path)
    assert (plan.head_strength, plan.fine_tune_epochs, plan.planned_epochs, plan.fine_tune_rate) == (0.03, 3, 7, None)
    kept_frozen = refit_lib.refit_plan(_result(FROZEN, 0, frozen, tuned), TrainSettings(), tmp_path)
    assert (kept_frozen.head_strength, kept_frozen.fine_tune_epochs) == (0.03, 0)


def test_the_plan_reads_the_rate_an_lr_range_test_found(tmp_path):
    (tmp_path / "lr_find.json").write_text(json.dumps({FINE_TUNE: {"rate": 2.5e-5}}))
    plan = refit_lib.refit_plan(
        _result(FINE_TUNE, 2, _phase(FROZEN, 1, 0, 0, 0.8, strength=1.0), _phase(FINE_TUNE, 1, 2, 2, 0.9, planned=2)),
        TrainSettings(fine_tune_learning_rate=0), tmp_path,
    )
    assert plan.fine_tune_rate == 2.5e-5


@pytest.mark.parametrize("settings, kept, why", [
    (TrainSettings(lr_schedule="plateau"), FINE_TUNE, "plateau"),
    (TrainSettings(head_init="random"), FROZEN, "logistic fit"),
    (TrainSettings(feature_cache="off"), FROZEN, "logistic fit"),
    (TrainSettings(unfreeze_schedule="2,all"), "fine_tune_2", "gradual-unfreezing"),
])
def test_what_cannot_be_replayed_says_why(tmp_path, settings, kept, why):
    phases = [_phase(FROZEN, 1, 0, 0, 0.8, strength=1.0), _phase(kept, 1, 2, 2, 0.9)]
    assert why in refit_lib.refit_plan(_result(kept, 2, *phases), settings, tmp_path)
    assert "distillation" in refit_lib.refit_plan(_result(kept, 2, *phases), TrainSettings(), tmp_path, custom_trainer=True)


def _folder_run(image_folder, tmp_path, **overrides):
    from tl_keras.run import run_experiment

    settings = dict(
        image_dir=str(image_folder), backbone="small_cnn", weights="none", image_size=16, fine_tune_epochs=2, fine_tune_min_steps=0,
        batch_size=8, validation_fraction=0.25, test_fraction=0.25, compare_scratch=False, export=False, verbose=0,
        run_dir=str(tmp_path / "run"), seed=1,
    )
    config = recipe_config("digits", **{**settings, **overrides})
    return run_experiment(config)


@pytest.mark.slow  # several seconds: the full suite runs it
def test_a_run_exports_the_refit_model_and_scores_it_on_test(image_folder, tmp_path):
    from tl_keras.evaluation.metrics import predict_dataset
    from tl_keras.export.reload import load_classifier

    summary = _folder_run(image_folder, tmp_path, refit="on")
    refit = summary["refit"]
    assert refit["examples"] == sum(summary["counts"]["train"].values()) + sum(summary["counts"]["validation"].values())
    assert refit["accuracy_before"] == summary["transfer_accuracy"]
    kept_epochs = 0 if summary["kept_phase"] == FROZEN else summary["kept_epoch"] - summary["phases"][FROZEN]["epochs"]
    assert refit["fine_tune_epochs"] == kept_epochs
    # The accuracy reported is the saved model's own on the test split (an independent prediction).
    splits = data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=1)
    batches = data_lib.make_batches(splits.test, 16, 8)
    probabilities, labels = predict_dataset(load_classifier(summary["model_keras"]), batches)
    assert summary["exported_accuracy"] == pytest.approx(float(np.mean(probabilities.argmax(1) == labels)))
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["exported_accuracy"])


@pytest.mark.slow
def test_refit_off_exports_the_model_trained_on_training_alone(image_folder, tmp_path):
    summary = _folder_run(image_folder, tmp_path, refit="off")
    assert "refit" not in summary and summary["exported_accuracy"] == summary["transfer_accuracy"]


@pytest.mark.slow
def test_refit_on_without_a_test_split_exports_the_refit_model_unscored_and_says_so(image_folder, tmp_path):
    """Validation is in the refit model's training data: scoring it there reported a training accuracy as held-out."""
    summary = _folder_run(image_folder, tmp_path, refit="on", test_fraction=0.0, export=True, export_dir=str(tmp_path / "sm"))
    assert summary["evaluated_on"] == "validation" and summary["exported_accuracy"] is None
    assert "validation is part of the refit model's training data" in summary["refit"]["unscored"]
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["transfer_accuracy"])  # the report is the model trained on training alone
    card = json.loads(next((tmp_path / "sm").rglob("model_card.json")).read_text())
    assert card["metrics"]["validation_accuracy"] is None


@pytest.mark.slow
def test_refit_all_trains_the_export_on_every_labelled_image_after_the_report(image_folder, tmp_path):
    summary = _folder_run(image_folder, tmp_path, refit="all")
    counts = summary["counts"]
    assert summary["refit"]["examples"] == sum(sum(counts[s].values()) for s in ("train", "validation", "test"))
    assert summary["exported_accuracy"] is None and "the test split's included" in summary["refit"]["unscored"]
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["transfer_accuracy"])  # the report: the model trained before it


def test_all_labelled_with_test_folds_every_split_into_training(image_folder):
    from tl_keras.data.subsets import all_labelled

    splits = data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=1)
    pooled = all_labelled(splits, include_test=True)
    assert pooled.validation is None and pooled.test is None
    assert pooled.size("train") == sum(splits.size(s) for s in ("train", "validation", "test")) == 36
    assert sorted(np.asarray(pooled.train_labels).tolist()) == sorted([0] * 12 + [1] * 12 + [2] * 12)


def test_auto_refits_a_kept_frozen_phase_on_small_folders_with_a_test_split_and_on_refits_any():
    plan, frozen = refit_lib.RefitPlan(1.0, 2, 2, "all", None), refit_lib.RefitPlan(1.0, 0, 0, "all", None)
    small, large = refit_lib.AUTO_MAX_PER_CLASS, refit_lib.AUTO_MAX_PER_CLASS + 1
    assert refit_lib.refit_decision("auto", frozen, small, has_test=True, from_init=False) == frozen
    assert "fine-tuning was kept" in refit_lib.refit_decision("auto", plan, small, has_test=True, from_init=False)
    assert "more than" in refit_lib.refit_decision("auto", plan, large, has_test=True, from_init=False)
    assert "no test split" in refit_lib.refit_decision("auto", plan, small, has_test=False, from_init=False)
    assert refit_lib.refit_decision("on", plan, large, has_test=False, from_init=False) == plan
    assert "--init_from" in refit_lib.refit_decision("on", plan, small, has_test=True, from_init=True)


def test_auto_trains_on_a_carved_test_split_too_and_on_never_does():
    """A test split carved from the user's own labels is labels the export can still learn from once the report is
    written; one the source supplied (or with labels held back by a budget: `spare_test` False) stays held out."""
    frozen = refit_lib.RefitPlan(1.0, 0, 0, "all", None)
    decide = functools.partial(refit_lib.refit_decision, most_per_class=refit_lib.AUTO_MAX_PER_CLASS, has_test=True, from_init=False)
    assert decide("auto", frozen, spare_test=True).include_test
    assert not decide("auto", frozen, spare_test=False).include_test
    assert not decide("on", frozen, spare_test=True).include_test
    assert decide("all", frozen, spare_test=False).include_test


@pytest.mark.slow
def test_auto_on_one_folder_trains_the_export_on_the_carved_test_split_after_the_report(image_folder, tmp_path):
    summary = _folder_run(image_folder, tmp_path, refit="auto", fine_tune_epochs=0, export=True, export_dir=str(tmp_path / "sm"))
    counts = summary["counts"]
    assert summary["kept_phase"] == FROZEN and summary["refit"]["include_test"]
    assert summary["refit"]["examples"] == sum(sum(counts[s].values()) for s in ("train", "validation", "test")) == 36
    assert summary["exported_accuracy"] is None and "the test split's included" in summary["refit"]["unscored"]
    metrics = json.loads((tmp_path / "run" / "evaluation" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(summary["transfer_accuracy"])  # the report: the model trained before it
    card = json.loads(next((tmp_path / "sm").rglob("model_card.json")).read_text())
    assert card["metrics"]["test_accuracy"] is None and card["metrics"]["test_accuracy_before_refit"] == summary["transfer_accuracy"]
    assert card["provenance"]["trained_on"].startswith("every labelled example (36: training, validation and test)")


@pytest.mark.slow
def test_auto_with_a_label_budget_keeps_the_carved_test_split_out_and_scores_the_refit(image_folder, tmp_path):
    summary = _folder_run(image_folder, tmp_path, refit="auto", fine_tune_epochs=0, max_train_per_class=5)
    assert summary["refit"]["include_test"] is False and summary["exported_accuracy"] is not None
    assert summary["refit"]["examples"] == sum(summary["counts"]["train"].values()) + sum(summary["counts"]["validation"].values())


def test_the_refit_on_every_label_chooses_its_strength_again_by_cross_validation():
    """With the test split folded in nothing held out is left, so the head's strength is chosen by 5-fold cross-validated
    log-loss over every row (as scikit-learn's LogisticRegressionCV on the same grid and folds), not the one validation
    picked on a few dozen images; a refit that keeps a test split out keeps validation's choice."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    from tl_keras.tasks.single_label import STRENGTHS, SingleLabel

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 20)
    features = (rng.normal(size=(60, 8)) + np.eye(3, 8)[labels] * 1.5).astype(np.float32)
    with warnings.catch_warnings():  # scikit-learn's notices of coming defaults
        warnings.simplefilter("ignore", FutureWarning)
        search = LogisticRegressionCV(Cs=list(STRENGTHS), cv=StratifiedKFold(5), scoring="neg_log_loss", max_iter=1000)
        expected = float(np.ravel(search.fit(features, labels).C_)[0])
    assert SingleLabel().cross_validated_strength(features, labels) == pytest.approx(expected)
    assert SingleLabel().cross_validated_strength(features[:41], labels[:41]) is None  # one image of the last class: no folds

    head = keras.layers.Dense(3, activation="softmax")  # a one-label head: the task is read from its activation
    head.build((None, 8))
    cache = FeatureCache(features, labels, examples_per_pass=60)
    chose = 10.0 if expected != 10.0 else 0.001  # a validation choice the search would not make
    plan = refit_lib.RefitPlan(chose, 0, 0, "all", None)
    assert refit_lib._strength_on_every_label(head, plan, cache, None) == chose
    every = dataclasses.replace(plan, include_test=True)
    assert refit_lib._strength_on_every_label(head, every, cache, None) == pytest.approx(expected)


def test_the_splits_a_saved_model_trained_on_are_read_from_its_summary():
    assert refit_lib.splits_trained_on({"kept_phase": "frozen"}) == {"train"}
    assert refit_lib.splits_trained_on({"refit": {"include_test": False}}) == {"train", "validation"}
    assert refit_lib.splits_trained_on({"refit": {"include_test": True}}) == {"train", "validation", "test"}
