"""The Keras-3-native Hub layer: variables registered, freezable, fine-tunable, saved with the model."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from tl_keras.vision.backbones import Backbone, load_backbone
from tl_keras.models.builders import compile_classifier
from tl_keras.vision.classifier import build_classifier
from tl_keras.models.hub_layer import HubLayer


class _HubStyleModule(tf.train.Checkpoint):
    """What TF Hub's reusable SavedModel API promises: __call__(x, training), variables, trainable_variables."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(tf.random.stateless_normal([3, 6], seed=[1, 2]), name="features/kernel")
        self.scale = tf.Variable(tf.ones([6]), trainable=False, name="features/frozen_scale")
        self.variables = [self.kernel, self.scale]
        self.trainable_variables = [self.kernel]
        self.regularization_losses = []

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32), tf.TensorSpec([], tf.bool)])
    def _features(self, images, training):
        pooled = tf.reduce_mean(images, axis=[1, 2])
        noise = tf.cond(training, lambda: 0.0, lambda: 0.0)  # a real module would drop out here
        return tf.nn.relu(tf.matmul(pooled, self.kernel) * self.scale + noise)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    def __call__(self, images):
        return self._features(images, False)


@pytest.fixture
def hub_dir(tmp_path):
    module = _HubStyleModule()
    # Trace a training=True variant too, as hub modules do.
    path = tmp_path / "hub_module"
    tf.saved_model.save(module, str(path))
    return path


def _labelled(n=16):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(n, 24, 24, 3), dtype=np.uint8), rng.integers(0, 2, size=n)


def _module_values(layer):
    return [v.numpy().copy() for v in layer._module.variables]


def test_hub_module_variables_are_registered_as_keras_weights(hub_dir):
    layer = HubLayer(str(hub_dir), trainable=True)
    assert [w.shape for w in layer.trainable_weights] == [(3, 6)]
    assert [w.shape for w in layer.non_trainable_weights] == [(6,)]
    # The Keras weights are the module's own variables, not copies.
    layer.trainable_weights[0].assign(tf.zeros([3, 6]))
    assert np.all(layer._module.variables[0].numpy() == 0)


def test_hub_backbone_frozen_then_fine_tuned(hub_dir):
    images, labels = _labelled()
    backbone = load_backbone(str(hub_dir), None, image_size=24)
    model = build_classifier(backbone, 2)
    compile_classifier(model, "sgd", 0.5)
    before = _module_values(backbone.layer)
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    for a, b in zip(before, _module_values(backbone.layer)):
        np.testing.assert_array_equal(a, b)

    backbone.layer.trainable = True
    compile_classifier(model, "sgd", 0.5)
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    after = _module_values(backbone.layer)
    assert not np.allclose(before[0], after[0]), "the module's trainable kernel must move when unfrozen"
    np.testing.assert_array_equal(before[1], after[1])


def test_hub_backbone_saves_and_loads_with_the_model(hub_dir, tmp_path):
    images, labels = _labelled()
    backbone = load_backbone(str(hub_dir), None, image_size=24)
    backbone.layer.trainable = True
    model = build_classifier(backbone, 2)
    compile_classifier(model, "sgd", 0.5)
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    expected = model.predict(images, verbose=0)
    path = tmp_path / "with_hub.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(images, verbose=0), expected, atol=1e-6)


def test_hub_layer_refuses_an_unknown_signature(hub_dir):
    with pytest.raises(ValueError, match="has no signature 'nope'"):
        HubLayer(str(hub_dir), signature="nope")


def test_hub_backbone_refuses_separate_weights(hub_dir):
    with pytest.raises(ValueError, match="carry their own weights"):
        load_backbone(str(hub_dir), "imagenet")


class _HubModuleWithBatchNorm(tf.train.Checkpoint):
    """A Hub-style module whose features pass a BatchNorm that updates its statistics when called with training=True."""

    def __init__(self):
        super().__init__()
        self.kernel = tf.Variable(tf.random.stateless_normal([3, 6], seed=[3, 4]), name="block/conv/kernel")
        self.gamma = tf.Variable(tf.ones([6]), name="block/BatchNorm/gamma")
        self.beta = tf.Variable(tf.zeros([6]), name="block/BatchNorm/beta")
        self.moving_mean = tf.Variable(tf.zeros([6]), trainable=False, name="block/BatchNorm/moving_mean")
        self.moving_variance = tf.Variable(tf.ones([6]), trainable=False, name="block/BatchNorm/moving_variance")
        self.variables = [self.kernel, self.gamma, self.beta, self.moving_mean, self.moving_variance]
        self.trainable_variables = [self.kernel, self.gamma, self.beta]
        self.regularization_losses = []

    @tf.function
    def __call__(self, images, training):
        x = tf.matmul(tf.reduce_mean(images, axis=[1, 2]) / 255.0, self.kernel)
        if training:
            mean, variance = tf.nn.moments(x, axes=[0])
            self.moving_mean.assign(0.9 * self.moving_mean + 0.1 * mean)
            self.moving_variance.assign(0.9 * self.moving_variance + 0.1 * variance)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return tf.nn.relu(tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, 1e-3))


@pytest.fixture
def batch_norm_hub_dir(tmp_path):
    module = _HubModuleWithBatchNorm()
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    for training in (True, False):  # as TF Hub modules are saved: one trace per training value
        module.__call__.get_concrete_function(spec, training)
    path = tmp_path / "bn_module"
    tf.saved_model.save(module, str(path))
    return path


def _fine_tune_hub(path, freeze_batch_norm):
    keras.utils.set_random_seed(0)
    images, labels = _labelled(32)
    layer = HubLayer(str(path), freeze_batch_norm=freeze_batch_norm, name="hub_backbone")
    backbone = Backbone("hub", layer, 24, "zero_one")
    model = build_classifier(backbone, 2)
    backbone.layer.trainable = True
    compile_classifier(model, "sgd", 0.5)
    names = ["kernel", "gamma", "moving_mean"]
    module = backbone.layer._module
    before = {n: getattr(module, n).numpy().copy() for n in names}
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    return {n: not np.array_equal(before[n], getattr(module, n).numpy()) for n in names}


def test_hub_batch_norm_stays_frozen_and_in_inference_mode_while_fine_tuning(batch_norm_hub_dir):
    """Review M9: the module's BatchNorm statistics and parameters stay as pretrained; its other weights train."""
    moved = _fine_tune_hub(batch_norm_hub_dir, freeze_batch_norm=True)
    assert moved == {"kernel": True, "gamma": False, "moving_mean": False}
    layer = HubLayer(str(batch_norm_hub_dir), trainable=True)
    assert [w.name for w in layer.trainable_weights] == ["block_conv_kernel"]


def test_hub_batch_norm_can_be_left_to_train(batch_norm_hub_dir):
    """The same check fails without the freeze: Keras 3 hands the layer training=True during fit."""
    moved = _fine_tune_hub(batch_norm_hub_dir, freeze_batch_norm=False)
    assert moved == {"kernel": True, "gamma": True, "moving_mean": True}


@pytest.mark.slow
def test_hub_classifier_exports_converts_and_reloads_without_its_handle(batch_norm_hub_dir, tmp_path):
    from tl_keras.vision import tflite
    from tl_keras.vision.serving import export_saved_model
    from tl_keras.export.reload import load_classifier

    images, labels = _labelled()
    backbone = load_backbone(str(batch_norm_hub_dir), None, image_size=24)
    model = build_classifier(backbone, 2)
    compile_classifier(model, "sgd", 0.5)
    model.fit(images, labels, epochs=1, batch_size=8, verbose=0)
    expected = model.predict(images, verbose=0)
    version = export_saved_model(model, tmp_path / "exports", "hub", ["a", "b"], warmup=False)
    served = tf.saved_model.load(str(version)).signatures["predict_pixels"]
    np.testing.assert_allclose(served(images=tf.constant(images, tf.float32))["probabilities"].numpy(), expected, atol=1e-5)
    interpreter = tflite.TFLiteClassifier(tflite.convert(version, "float32", 24))
    np.testing.assert_allclose(interpreter.predict(images), expected, atol=1e-5)
    # On another machine the module's original folder does not exist: the export carries it.
    batch_norm_hub_dir.rename(tmp_path / "moved_away")
    reloaded = load_classifier(version)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), expected, atol=1e-6)
