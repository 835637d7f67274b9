"""The task seam: each kind's head, loss, convex fit, scores, split and measures; a core that asks the task, not a softmax."""

import keras
import numpy as np
import pytest

from tl_keras.tasks import TASKS, TargetSpec, decide_task, spec_for_training, task_of, with_scale
from tl_keras.tasks.measures import choose_thresholds, multi_label_measures, regression_measures
from tl_keras.tasks.splitting import iterative_stratified_split, quantile_bins


def head_over(width: int, units: int, activation: str) -> keras.Model:
    inputs = keras.Input((width,))
    return keras.Model(inputs, keras.layers.Dense(units, activation=activation, name="head")(keras.layers.Dropout(0.1)(inputs)))


@pytest.mark.parametrize(("labels", "kind"), [
    (["a|b", "c"], "multi_label"), (["x;y", "y"], "multi_label"), (["2.5", "3"], "regression"),
    ([str(i) for i in range(30)], "regression"), (["1", "2", "3", "4", "5"] * 4, "single_label"), (["cat", "dog"], "single_label"),
])
def test_auto_decides_the_task_from_the_labels_and_says_why(labels, kind):
    decided, _, why = decide_task(labels)
    assert decided == kind
    assert (why == "") == (kind == "single_label")


def test_a_tag_seen_once_and_an_empty_tag_set_are_reported_by_where_they_came_from():
    where = [f"t.tsv:{i + 2}" for i in range(5)]
    spec, targets, kept, problems = spec_for_training(["a|b", "a|rare", "b", "a| ", "rare2"], where)
    assert spec.names == ["a", "b"] and kept.tolist() == [0, 1, 2, 3]
    assert targets.tolist() == [[1, 1], [1, 0], [0, 1], [1, 0]]
    assert any(p.startswith("t.tsv:3: tag 'rare'") for p in problems)
    assert any(p.startswith("t.tsv:6: no usable tag") for p in problems)


def test_values_that_are_not_numbers_are_left_out_and_the_scale_comes_from_training():
    spec, values, kept, problems = spec_for_training(["1.5", "x", "2.5", "inf", "4.5"], ["f:1", "f:2", "f:3", "f:4", "f:5"], "regression")
    assert kept.tolist() == [0, 2, 4] and problems[0].startswith("f:2: the value 'x'") and problems[1].startswith("f:4:")
    scaled = with_scale(spec, values)
    assert scaled.mean == pytest.approx(values.mean()) and scaled.std == pytest.approx(values.std())
    np.testing.assert_allclose(scaled.user_targets(scaled.training_targets(values)), values, rtol=1e-6)


def test_the_task_is_read_from_the_head_through_wrappers():
    for kind, task in TASKS.items():
        inner = head_over(4, 3 if kind != "regression" else 1, task.activation)
        outer_input = keras.Input((4,))
        wrapper = keras.Model(outer_input, inner(outer_input))  # as `with_augmentation` wraps a classifier
        assert task_of(inner).kind == kind and task_of(wrapper).kind == kind


@pytest.mark.parametrize("kind", ["multi_label", "regression"])
def test_host_scores_are_what_keras_evaluate_logs(kind):
    """The frozen phase logs scores computed on the host; they must be fit's own loss and metric, or the phases compare unfairly."""
    task = TASKS[kind]
    rng = np.random.default_rng(0)
    features = rng.normal(size=(64, 5)).astype(np.float32)
    targets = (rng.random((64, 3)) > 0.5).astype(np.float32) if kind == "multi_label" else rng.normal(size=64).astype(np.float32)
    model = head_over(5, 3 if kind == "multi_label" else 1, task.activation)
    model.compile(loss=task.loss(), metrics=task.metrics())
    logged = model.evaluate(features, targets, verbose=0, return_dict=True)
    host = task.host_scores(model.get_layer("head"), features, targets)
    assert set(host) == set(logged)
    for key in host:
        assert host[key] == pytest.approx(logged[key], rel=1e-4, abs=1e-5)


def test_the_multi_label_fit_is_one_logistic_regression_per_tag_at_the_strength_validation_picks():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    features = rng.normal(size=(200, 6))
    targets = np.stack([features[:, 0] > 0, features[:, 1] + 0.3 * rng.normal(size=200) > 0.5, np.zeros(200, bool)], 1).astype(float)
    model = head_over(6, 3, "sigmoid")
    head = model.get_layer("head")
    fitted = TASKS["multi_label"].fit_head(head, (features[:150], targets[:150]), (features[150:], targets[150:]))
    reference = LogisticRegression(C=fitted["C"], max_iter=1000, tol=1e-4).fit(features[:150], targets[:150, 1])
    np.testing.assert_allclose(np.asarray(head.kernel)[:, 1], reference.coef_[0], rtol=1e-4, atol=1e-5)
    assert float(np.asarray(head.bias)[2]) == -30.0  # a tag never positive in training stays improbable
    assert fitted["C"] == 10.0  # separable tags: the weakest penalty fits validation best
    noisy = rng.normal(size=(120, 60))  # one weak signal among 60 features and 80 training rows: a weak penalty overfits
    tags = (noisy[:, :1] + 1.5 * rng.normal(size=(120, 1)) > 0).astype(float)
    refit = TASKS["multi_label"].fit_head(head_over(60, 1, "sigmoid").get_layer("head"), (noisy[:80], tags[:80]), (noisy[80:], tags[80:]))
    assert refit["C"] < 1.0


def test_the_regression_fit_is_ridge_and_recovers_a_linear_target():
    rng = np.random.default_rng(2)
    features = rng.normal(size=(300, 4))
    values = features @ np.array([1.0, -2.0, 0.0, 0.5]) + 0.1 * rng.normal(size=300)
    model = head_over(4, 1, "linear")
    TASKS["regression"].fit_head(model.get_layer("head"), (features[:200], values[:200]), (features[200:], values[200:]))
    np.testing.assert_allclose(np.asarray(model.get_layer("head").kernel)[:, 0], [1.0, -2.0, 0.0, 0.5], atol=0.05)


def test_two_phases_train_a_sigmoid_head_on_cached_features_and_keep_the_phase_by_validation_loss(tmp_path):
    """The core (compile, frozen fit, host scores, history, the kept phase) asks the task; a softmax assumption would fail here."""
    import tensorflow as tf

    from tl_keras.config.settings import TrainSettings
    from tl_keras.training.two_phase import train_two_phase

    rng = np.random.default_rng(3)
    x = rng.normal(size=(96, 8)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0], 1).astype(np.float32)
    inputs = keras.Input((8,))
    backbone = keras.Sequential([keras.layers.Dense(6, activation="relu")], name="backbone")
    features = backbone(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="sigmoid", name="head")(keras.layers.Dropout(0.1)(features)))
    train = tf.data.Dataset.from_tensor_slices((x[:64], y[:64])).batch(16)
    validation = tf.data.Dataset.from_tensor_slices((x[64:], y[64:])).batch(16)
    settings = TrainSettings(fine_tune_epochs=1, fine_tune_min_steps=0, monitor="val_loss", verbose=0)
    result = train_two_phase(model, backbone, train, validation, settings, tmp_path)
    frozen = result.phases[0]
    assert frozen.on_cached_features and set(frozen.history) == {"loss", "binary_accuracy", "val_loss", "val_binary_accuracy"}
    assert "val_binary_accuracy" in result.phases[1].history
    assert model.loss.__class__.__name__ == "BinaryCrossentropy"


def test_iterative_stratification_gives_every_tag_its_share_of_each_split():
    rng = np.random.default_rng(4)
    truth = rng.random((500, 6)) < np.array([0.5, 0.2, 0.05, 0.02, 0.3, 0.01])
    parts = iterative_stratified_split(truth, 0.2, 0.1, seed=0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(500))
    for tag in range(6):
        total = truth[:, tag].sum()
        in_validation = truth[parts["validation"], tag].sum()
        assert abs(in_validation - 0.2 * total) <= 1, (tag, in_validation, total)
    assert abs(len(parts["validation"]) - 100) <= 5


def test_quantile_bins_span_the_range_and_shrink_for_few_levels():
    assert sorted(set(quantile_bins(np.arange(100.0)).tolist())) == list(range(10))
    assert set(quantile_bins(np.array([1.0, 2.0] * 30)).tolist()) == {0, 1}


def test_thresholds_maximise_each_tags_f1_on_validation_and_stay_at_half_with_few_positives():
    scores = np.array([[0.9, 0.9], [0.8, 0.1], [0.35, 0.2], [0.3, 0.1], [0.32, 0.1], [0.31, 0.2], [0.2, 0.1], [0.1, 0.1]])
    truth = np.array([[1, 1], [1, 0], [1, 0], [1, 0], [1, 0], [1, 0], [0, 0], [0, 0]], float)
    cut = choose_thresholds(scores, truth)
    assert 0.2 < cut[0] < 0.3  # every positive above it, both negatives below
    assert cut[1] == 0.5  # one positive: too few to choose on
    measured = multi_label_measures(scores, truth, ["a", "b"], cut)
    assert measured["per_label"]["a"]["f1"] == 1.0 and measured["per_label"]["a"]["average_precision"] == 1.0


def test_regression_measures_are_in_the_targets_units():
    measured = regression_measures(np.array([1.0, 2.0, 3.0, 5.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    assert measured["mae"] == 0.25 and measured["rmse"] == pytest.approx(0.5) and measured["spearman"] == pytest.approx(1.0)


def test_a_recorded_split_from_before_tasks_reads_as_single_label():
    spec = TargetSpec.from_dict(None, ["cat", "dog"])
    assert spec.kind == "single_label" and spec.names == ["cat", "dog"]


def test_settings_a_task_cannot_honour_are_refused_by_name(tmp_path):
    from tl_keras.config.run_config import ConfigError, RunConfig
    from tl_keras.training.run_steps import train_settings

    labels = tmp_path / "labels.csv"
    labels.write_text("filename,labels\na.png,x|y\n")
    with pytest.raises(ConfigError, match=r"--task=regression: image tags or values come from --labels_file"):
        RunConfig(image_dir=str(tmp_path), task="regression").resolved().validate()
    with pytest.raises(ConfigError, match=r"--labels_file=.*: give --image_dir"):
        RunConfig(tfds="beans", labels_file=str(labels)).resolved().validate()
    with pytest.raises(ConfigError, match=r"--class_weights=auto weights classes"):
        RunConfig(image_dir=str(tmp_path), labels_file=str(labels), class_weights="auto").resolved().validate()
    with pytest.raises(ConfigError, match=r"--monitor=val_accuracy: a regression run has no accuracy; use --monitor=val_loss"):
        train_settings(RunConfig(monitor="val_accuracy"), TASKS["regression"])
    assert train_settings(RunConfig(), TASKS["multi_label"]).monitor == "val_loss"  # the task's own when none is given
    assert train_settings(RunConfig(), TASKS["single_label"]).monitor == "val_accuracy"


def test_the_frozen_probe_is_scored_with_the_frozen_weights_and_the_kept_ones_are_put_back(tmp_path):
    import tensorflow as tf

    from tl_keras.evaluation.task_report import frozen_probe_scores
    from tl_keras.training.phase import PhaseResult
    from tl_keras.training.two_phase import TrainingResult

    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = (x[:, 0] * 2 + 1).astype(np.float32)
    model = head_over(3, 1, "linear")
    head = model.get_layer("head")
    head.kernel.assign([[2.0], [0.0], [0.0]])
    head.bias.assign([1.0])
    model.save_weights(tmp_path / "frozen.weights.h5")  # a perfect fit
    head.kernel.assign([[0.0], [0.0], [0.0]])
    model.save_weights(tmp_path / "fine_tune.weights.h5")  # predicts 1 everywhere
    phases = [PhaseResult("frozen", 1, 0, 0, 0.1, 4, {}, str(tmp_path / "frozen.weights.h5")),
              PhaseResult("fine_tune", 1, 1, 1, 0.05, 4, {}, str(tmp_path / "fine_tune.weights.h5"))]
    result = TrainingResult(phases, "val_loss", "fine_tune", 1, 0.05, -0.05)
    spec = TargetSpec("regression", ["value"])
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    probe = frozen_probe_scores(model, model, result, spec, data, data, y, y)
    assert probe["mae"] == pytest.approx(0.0, abs=1e-5) and probe["r2"] == pytest.approx(1.0)
    np.testing.assert_allclose(np.asarray(head.kernel), 0.0)  # the kept phase's weights are back


def test_lists_of_tags_from_python_become_tag_labels_and_numbers_stay_numbers(tmp_path):
    from tl_keras.text.data import load_text_splits
    from tl_keras.text.tables import lists_to_files

    texts = [f"text {i}" for i in range(20)]
    tags = [["joy", "surprise"] if i % 2 else ["joy"] for i in range(20)]
    files = lists_to_files(tmp_path / "tags", (texts, tags))
    splits = load_text_splits(files["train"], validation_fraction=0.25, test_fraction=0.0, seed=0)
    assert splits.target.kind == "multi_label" and splits.class_names == ["joy", "surprise"]
    assert splits.labels["train"].shape[1] == 2 and splits.labels["validation"].sum(0).tolist()[1] >= 2
    values = [0.5 + i / 7 for i in range(20)]
    files = lists_to_files(tmp_path / "values", (texts, values))
    splits = load_text_splits(files["train"], validation_fraction=0.25, test_fraction=0.0, seed=0)
    assert splits.target.kind == "regression" and splits.target.mean == pytest.approx(np.mean(splits.labels["train"]))
