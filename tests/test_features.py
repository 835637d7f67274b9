"""Frozen phase on cached features: the head trained on the cache is the full model's head."""


import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.training.run_steps import train_settings
from tl_keras.config.run_config import recipe_config
from tl_keras.config.settings import AugmentSettings
from tl_keras.training import features as features_lib
from tl_keras.vision.augment import build_augmentation
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier
from tl_keras.training.two_phase import train_two_phase


def _setup(n=24):
    keras.utils.set_random_seed(0)
    backbone = load_backbone("small_cnn", None, image_size=16)
    model = build_classifier(backbone, 3, dropout=0.3)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n).astype(np.int32)
    images = rng.integers(0, 256, (n, 16, 16, 3)).astype(np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    return backbone, model, images, labels, ds


@pytest.mark.slow
def test_head_on_cached_features_equals_full_model_on_images(tmp_path):
    backbone, model, images, labels, ds = _setup()
    config = recipe_config("digits", frozen_epochs=3, fine_tune_epochs=0, batch_size=8, verbose=0, early_stopping_patience=0)
    result = train_two_phase(model, backbone.layer, ds, ds, train_settings(config), tmp_path)
    assert result.phases[0].on_cached_features
    cache = features_lib.cache_features(features_lib.feature_extractor(model), ds)
    head = features_lib.head_on_features(model)
    on_features = head.predict(cache.features, verbose=0)
    on_images = model.predict(images, verbose=0)
    assert np.abs(on_features - on_images).max() < 1e-5
    # The kept weights score on images exactly what the phase measured on features.
    accuracy = model.evaluate(ds, verbose=0, return_dict=True)["accuracy"]
    assert accuracy == result.kept_value


def test_disk_cache_matches_memory_cache(tmp_path):
    _, model, _, labels, ds = _setup()
    extractor = features_lib.feature_extractor(model)
    memory = features_lib.cache_features(extractor, ds, storage="memory")
    disk = features_lib.cache_features(extractor, ds, storage="disk", directory=tmp_path, num_examples=len(labels))
    assert isinstance(disk.features, np.memmap) and (tmp_path / "train_features.npy").is_file()
    np.testing.assert_array_equal(np.asarray(disk.features), memory.features)
    np.testing.assert_array_equal(disk.labels, labels)
    got = np.concatenate([y.numpy() for _, y in disk.dataset(5)])
    np.testing.assert_array_equal(got, labels)
    shuffled = disk.epochs(5, seed=1).epoch(0)
    assert sorted(np.concatenate([y.numpy() for _, y in shuffled]).tolist()) == sorted(labels.tolist())


def test_augmented_passes_are_cached_and_differ(tmp_path):
    _, model, _, labels, ds = _setup()
    augmentation = build_augmentation(AugmentSettings(flip="horizontal_and_vertical", rotation_degrees=20))
    extractor = features_lib.feature_extractor(model)
    cache = features_lib.cache_features(extractor, ds, passes=3, augmentation=augmentation)
    n = len(labels)
    assert cache.features.shape[0] == 4 * n and cache.examples_per_pass == n and cache.views == 4, "a clean view, then 3 augmented"
    clean = features_lib.cache_features(extractor, ds)
    np.testing.assert_allclose(cache.features[:n], clean.features, atol=1e-5, err_msg="view 0 is the un-augmented image")
    assert not np.allclose(cache.features[n : 2 * n], cache.features[2 * n : 3 * n]), "each pass gets fresh augmentation"
    assert cache.steps_per_epoch(8) == 3, "an epoch is one pass's worth of steps"


def test_each_epoch_holds_every_image_once_in_a_seeded_view(tmp_path):
    labels = np.arange(10, dtype=np.int32) % 3
    features = np.arange(40 * 2, dtype=np.float32).reshape(40, 2)  # 4 views of 10 images, view-major
    cache = features_lib.FeatureCache(features, np.tile(labels, 4), 10)
    epochs = [cache.epoch_rows(seed=5, epoch=e) for e in range(6)]
    for rows in epochs:
        assert sorted(rows % 10) == list(range(10)), "every image exactly once per epoch"
    assert len({tuple(sorted(r // 10 for r in rows)) for rows in epochs}) > 1, "views change between epochs"
    np.testing.assert_array_equal(cache.epoch_rows(seed=5, epoch=3), epochs[3])  # a function of (seed, epoch) alone
    batches = list(cache.epochs(4, seed=5).epoch(3))
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in batches]), features[epochs[3]])
    np.testing.assert_array_equal(np.concatenate([y.numpy() for _, y in batches]), np.tile(labels, 4)[epochs[3]])


@pytest.mark.slow
def test_cached_frozen_phase_leaves_the_backbone_alone(tmp_path):
    backbone, model, _, _, ds = _setup()
    before = [w.numpy().copy() for w in backbone.layer.weights]
    train_two_phase(
        model, backbone.layer, ds, ds, train_settings(recipe_config("digits", frozen_epochs=2, fine_tune_epochs=0, verbose=0)), tmp_path
    )
    for a, b in zip(before, backbone.layer.weights):
        np.testing.assert_array_equal(a, b.numpy())


@pytest.mark.slow
def test_frozen_phase_on_real_photos_reaches_the_converged_logistic_regression(tmp_path):
    """Bundled photos and ImageNet weights: the frozen phase must match scikit-learn's converged probe on the same features."""
    from sklearn.linear_model import LogisticRegression

    from tl_keras.vision import data as data_lib

    splits = data_lib.load_builtin("flowers", seed=0)
    size = 96
    keras.utils.set_random_seed(0)
    backbone = load_backbone("mobilenet_v2", "imagenet", alpha=0.35, image_size=size)
    model = build_classifier(backbone, len(splits.class_names), dropout=0.2)
    batches = {k: data_lib.make_batches(getattr(splits, k), size, 32) for k in ("train", "validation", "test")}
    config = recipe_config(
        "default", frozen_epochs=10, fine_tune_epochs=0, flip="none", rotation_degrees=0.0, verbose=0, seed=0, name="probe_check"
    )
    result = train_two_phase(
        model,
        backbone.layer,
        batches["train"],
        batches["validation"],
        train_settings(config),
        tmp_path,
        train_examples=splits.size("train"),
    )
    assert result.phases[0].on_cached_features
    extractor = features_lib.feature_extractor(model)
    cached = {k: features_lib.cache_features(extractor, ds) for k, ds in batches.items()}
    ours = float(np.mean(model.predict(batches["test"], verbose=0).argmax(-1) == cached["test"].labels))
    # The reference: L-BFGS to convergence, its L2 strength picked on validation, as a careful user would.
    probes = [
        LogisticRegression(C=c, max_iter=5000).fit(cached["train"].features, cached["train"].labels) for c in (0.01, 0.1, 1.0, 10.0, 100.0)
    ]
    best = max(probes, key=lambda p: p.score(cached["validation"].features, cached["validation"].labels))
    reference = best.score(cached["test"].features, cached["test"].labels)
    assert ours >= reference - 0.01, f"frozen phase {ours:.3f} vs converged logistic regression {reference:.3f}"


def test_logistic_head_fit_on_float32_features_sets_the_head_without_warnings():
    """The cache holds float32: its probabilities must reach log_loss as rows summing to one (no warning per strength)."""
    import warnings

    rng = np.random.default_rng(0)

    def cache(n):
        labels = rng.integers(0, 4, n)
        features = (rng.normal(size=(n, 16)) + 0.5 * labels[:, None]).astype(np.float32)
        return features_lib.FeatureCache(features, labels, n)

    head = keras.layers.Dense(4, activation="softmax")
    head.build((None, 16))
    train, validation = cache(160), cache(80)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = features_lib.fit_logistic_head(head, train, validation, seed=0)
    assert np.isfinite(fit["validation_log_loss"])
    predicted = np.asarray(head(validation.features)).argmax(1)
    assert np.mean(predicted == validation.labels) == pytest.approx(fit["validation_accuracy"])


@pytest.mark.parametrize("activation", ["softmax", "sigmoid", "linear"])
def test_scores_in_chunks_are_the_scores_of_every_row_at_once(activation):
    """Host scores a chunk at a time (no float64 copy of the whole cache) give the numbers of one pass over every row."""
    from tl_keras.tasks import task_of_head

    rng = np.random.default_rng(1)
    head = keras.layers.Dense(3 if activation != "linear" else 1, activation=activation,
                              kernel_regularizer=keras.regularizers.L2(1e-3))
    head.build((None, 8))
    features = rng.normal(size=(50, 8)).astype(np.float32)
    targets = {"softmax": rng.integers(0, 3, 50), "sigmoid": (rng.random((50, 3)) > 0.5).astype(np.float32),
               "linear": rng.normal(size=50).astype(np.float32)}[activation]
    task = task_of_head(head)
    whole = task.host_scores(head, features, targets, 0.1)
    chunked = task.host_scores_in_chunks(head, features, targets, 0.1, rows=7)
    assert chunked.keys() == whole.keys()
    for key in whole:
        assert chunked[key] == pytest.approx(whole[key], rel=1e-5), key


def test_convex_fit_on_a_sample_says_so_and_counts_every_row():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    features = (rng.normal(size=(90, 6)) + labels[:, None]).astype(np.float32)
    head = keras.layers.Dense(3, activation="softmax")
    head.build((None, 6))
    fit = features_lib.fit_logistic_head(head, features_lib.FeatureCache(features, labels, 90), None, strength=1.0, max_rows=40)
    assert (fit["rows"], fit["of_rows"]) == (40, 90)


@pytest.mark.slow
def test_frozen_phase_trains_over_every_row_past_the_convex_fits_sample(tmp_path, monkeypatch):
    """More cached rows than the convex fit takes: epochs over every row follow from the fit, kept only if validation
    improves; the phase records its epochs and how many rows the head was fitted on."""
    monkeypatch.setattr(features_lib, "LOGISTIC_MAX_ROWS", 10)
    backbone, model, _, _, ds = _setup(n=24)
    result = train_two_phase(
        model, backbone.layer, ds, ds,
        train_settings(recipe_config("digits", fine_tune_epochs=0, verbose=0)), tmp_path, train_examples=24,
    )
    frozen = result.phases[0]
    assert frozen.on_cached_features
    assert frozen.epochs_run >= 1
    assert len(frozen.history["val_loss"]) == 1 + frozen.epochs_run
    assert frozen.rows_fitted in (10, 24)
    assert frozen.weights_path
