"""Every registered backbone builds; weights files, Hub handles and .keras files load."""

import dataclasses
import numpy as np
import pytest
import keras

from tl_keras.vision.backbones import BACKBONES, load_backbone, small_cnn
from tl_keras.models.anatomy import leaf_layers
from tl_keras.vision.classifier import build_classifier


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_registered_backbone_builds_and_outputs_probabilities(name, tiny_batch):
    spec = BACKBONES[name]
    size = max(32, spec.min_size)
    backbone = load_backbone(name, None, image_size=size)
    model = build_classifier(backbone, 3)
    probabilities = model.predict(tiny_batch, verbose=0)
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert backbone.layer.trainable is False, "backbones come back frozen, ready for phase 1"


def test_weights_file_round_trips_through_the_loader(tmp_path):
    source = small_cnn(input_shape=(16, 16, 3))
    path = tmp_path / "cnn.weights.h5"
    source.save_weights(path)
    loaded = load_backbone("small_cnn", str(path), image_size=16)
    for a, b in zip(source.weights, loaded.layer.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_real_imagenet_mobilenet_v2_weights_load_by_path(shared_assets):
    path = shared_assets / "weights" / "mobilenet_v2_0.35_224_no_top.weights.h5"
    if not path.is_file():
        pytest.skip(f"{path} not in the shared assets")
    pretrained = load_backbone("mobilenet_v2", str(path), image_size=96, alpha=0.35)
    random = load_backbone("mobilenet_v2", None, image_size=96, alpha=0.35)
    first_conv = [w for w in pretrained.layer.weights if "Conv1" in w.path][0]
    random_conv = [w for w in random.layer.weights if "Conv1" in w.path][0]
    assert first_conv.shape == random_conv.shape
    assert not np.allclose(first_conv.numpy(), random_conv.numpy())


@pytest.mark.parametrize(
    "kwargs, message, flag",
    [
        (dict(backbone="mobilenet2"), r"backbone='mobilenet2': unknown backbone; known:", "--backbone"),
        (dict(backbone="small_cnn", weights="/nope/w.h5"), r"weights='/nope/w.h5': file not found", "--weights"),
        (dict(backbone="resnet50", alpha=0.5), r"alpha=0.5: alpha applies to MobileNet", "--alpha"),
        (dict(backbone="small_cnn", weights="imagenet"), "no ImageNet weights", "--weights"),
        (dict(backbone="inception_v3", image_size=40), r"image_size=40: .*needs at least 75 pixels", "--image_size"),
        (dict(backbone="small_cnn", preprocessing="bgr"), r"preprocessing='bgr'", "--preprocessing"),
    ],
)
def test_bad_backbone_arguments_name_the_argument_and_a_script_names_the_flag(kwargs, message, flag):
    from tl_keras.config.cli import in_flag_terms

    with pytest.raises(ValueError, match=message) as raised:
        load_backbone(**kwargs)
    assert "--" not in str(raised.value), "the library speaks in its arguments"
    assert in_flag_terms(str(raised.value)).startswith(f"{flag}=")


def _saved_classifier(tmp_path):
    backbone = load_backbone("small_cnn", None, image_size=16)
    model = build_classifier(backbone, 4, name="source")
    path = tmp_path / "source.keras"
    model.save(path)
    return model, path


def test_keras_file_is_cut_before_its_head_and_fed_raw_pixels(tmp_path, tiny_batch):
    source, path = _saved_classifier(tmp_path)
    loaded = load_backbone(str(path))
    assert loaded.owns_input and loaded.input_size == 16
    features = loaded.layer(tiny_batch)
    assert features.shape == (2, 128), "cut after pooling, before dropout and the dense head"
    pixels = source.get_layer("preprocess")(source.get_layer("resize")(tiny_batch))
    expected = np.mean(source.get_layer("small_cnn")(pixels, training=False), axis=(1, 2))
    np.testing.assert_allclose(features, expected, atol=1e-6)
    model = build_classifier(loaded, 2)
    assert model.predict(tiny_batch, verbose=0).shape == (2, 2)


def test_keras_file_cut_at_a_named_layer(tmp_path, tiny_batch):
    _, path = _saved_classifier(tmp_path)
    loaded = load_backbone(str(path), cut_layer="small_cnn")
    assert loaded.layer(tiny_batch).shape == (2, 4, 4, 128)
    with pytest.raises(ValueError, match="has no layer 'nope'"):
        load_backbone(str(path), cut_layer="nope")


@pytest.mark.parametrize("scales_itself", [True, False], ids=["with_rescaling", "without"])
def test_a_keras_file_that_scales_its_own_pixels_is_fed_raw_pixels(tmp_path, scales_itself, caplog):
    """Every .keras backbone without a resize layer was normalised as 'tf', on top of its own Rescaling if it had one."""
    inputs = keras.Input((20, 20, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs) if scales_itself else inputs
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))
    keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x)).save(tmp_path / "m.keras")
    with caplog.at_level("WARNING"):
        loaded = load_backbone(str(tmp_path / "m.keras"))
    assert loaded.preprocessing == ("none" if scales_itself else "tf") and loaded.input_size == 20
    assert any("--preprocessing" in r.getMessage() for r in caplog.records) != scales_itself  # only the guess is announced


def test_leaf_layers_flattens_nested_models():
    inner = small_cnn(input_shape=(16, 16, 3))
    inputs = keras.Input((16, 16, 3))
    outer = keras.Model(inputs, keras.layers.Flatten()(inner(inputs)))
    names = [layer.name for layer in leaf_layers(outer)]
    assert names[0] == "conv0" and names[-1].startswith("flatten")
    assert len(names) == len(inner.layers) - 1 + 1


@pytest.mark.slow
def test_pretrained_source_weights_are_reused_only_for_the_same_recipe(tmp_path):
    from tl_keras.vision.pretrain import pretrain_backbone

    first = pretrain_backbone("small_cnn", "digits_0_4", tmp_path, epochs=1)
    assert pretrain_backbone("small_cnn", "digits_0_4", tmp_path, epochs=1) == first
    other = pretrain_backbone("small_cnn", "digits_0_4", tmp_path, epochs=2)
    narrower = pretrain_backbone("small_cnn", "digits_0_4", tmp_path, epochs=1, alpha=0.5)
    assert len({first, other, narrower}) == 3, "another schedule or architecture never reuses a file"
    assert all(p.is_file() for p in (first, other, narrower))


def test_image_settings_group_configures_the_backbone_and_refuses_a_whole_config():
    """The image knobs are their own settings group: a RunConfig converts at the boundary, and the loader takes only the group."""
    from tl_keras.config.run_config import RunConfig
    from tl_keras.config.settings import ImageSettings, settings_from
    from tl_keras.vision.backbones import backbone_from

    config = RunConfig(backbone="small_cnn", weights="none", image_size=40, alpha=0.5, pooling="max", tta="flip", cache="none")
    image = settings_from(ImageSettings, config)
    assert (image.backbone, image.image_size, image.alpha, image.pooling, image.tta, image.cache) == ("small_cnn", 40, 0.5, "max", "flip",
                                                                                                       "none")
    assert {f.name for f in dataclasses.fields(ImageSettings)} <= {f.name for f in dataclasses.fields(RunConfig)}
    loaded = backbone_from(image, None)
    assert loaded.input_size == 40
    with pytest.raises(TypeError, match="backbone_from takes an ImageSettings, got RunConfig"):
        backbone_from(config, None)
