"""Frozen phase on cached features: the head trained on the cache is the full model's head."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tl_keras import features as features_lib
from tl_keras.augment import build_augmentation
from tl_keras.backbones import load_backbone
from tl_keras.builders import build_classifier
from tl_keras.config import RunConfig
from tl_keras.training import train_two_phase


def _setup(n=24):
    keras.utils.set_random_seed(0)
    backbone = load_backbone("small_cnn", None, image_size=16)
    model = build_classifier(backbone, 3, dropout=0.3)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, n).astype(np.int32)
    images = rng.integers(0, 256, (n, 16, 16, 3)).astype(np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)
    return backbone, model, images, labels, ds


def test_head_on_cached_features_equals_full_model_on_images(tmp_path):
    backbone, model, images, labels, ds = _setup()
    config = RunConfig(frozen_epochs=3, fine_tune_epochs=0, batch_size=8, verbose=0, early_stopping_patience=0)
    result = train_two_phase(model, backbone.layer, ds, ds, config, tmp_path)
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
    augmentation = build_augmentation(dataclasses.replace(RunConfig(), flip="horizontal_and_vertical", rotation_degrees=20))
    cache = features_lib.cache_features(features_lib.feature_extractor(model), ds, passes=3, augmentation=augmentation)
    assert cache.features.shape[0] == 3 * len(labels) and cache.examples_per_pass == len(labels)
    first, second = cache.features[: len(labels)], cache.features[len(labels) : 2 * len(labels)]
    assert not np.allclose(first, second), "each pass gets fresh augmentation"
    assert cache.steps_per_epoch(8) == 3, "an epoch is one pass's worth of steps"


def test_cached_frozen_phase_leaves_the_backbone_alone(tmp_path):
    backbone, model, _, _, ds = _setup()
    before = [w.numpy().copy() for w in backbone.layer.weights]
    train_two_phase(model, backbone.layer, ds, ds, RunConfig(frozen_epochs=2, fine_tune_epochs=0, verbose=0), tmp_path)
    for a, b in zip(before, backbone.layer.weights):
        np.testing.assert_array_equal(a, b.numpy())
