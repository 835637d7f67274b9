"""Pretrained feature extractors by name, Hub handle, SavedModel folder or .keras file.

Every backbone comes back as a `Backbone`: the Keras layer to call, the
square input size it wants, and the pixel normalisation it was trained with.
The classifier builder puts the resize and that normalisation inside the
model, so nothing outside the model needs to know them.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import keras
from absl import logging

from tl_keras.io import storage
from tl_keras.io.mirror import local_copy
from tl_keras.models.anatomy import DEFAULT_INPUT_SIZE, SINGLE, anatomy
from tl_keras.models.hub_layer import HubLayer
from tl_keras.vision.layers import PREPROCESSING_MODES
from tl_keras.config.settings import ImageSettings, backbone_source, require_settings

apps = keras.applications

# ImageNet weights that ship inside the package, so `weights="imagenet"` needs no download for them.
BUNDLED_IMAGENET = {
    ("mobilenet_v2", 0.35): Path(__file__).resolve().parents[1] / "assets" / "weights" / "mobilenet_v2_0.35_224_no_top.weights.h5",
}


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one registered backbone.

    Attributes:
        constructor: builds the model; takes include_top, weights, input_shape.
        input_size: the side it was pretrained at (its default image size).
        preprocessing: an `ImagePreprocessing` mode matching its pretraining.
        min_size: the smallest input side the architecture accepts.
        accepts_alpha: whether it has a MobileNet width multiplier.
        has_imagenet: whether `weights="imagenet"` exists for it.
    """

    constructor: Callable[..., keras.Model]
    input_size: int
    preprocessing: str
    min_size: int = 32
    accepts_alpha: bool = False
    has_imagenet: bool = True


@dataclasses.dataclass
class Backbone:
    """A loaded backbone, ready for `build_classifier`."""

    name: str
    layer: keras.layers.Layer
    input_size: int
    preprocessing: str
    # True for a saved classifier of ours (or any model that resizes and
    # normalises inside): it is fed the raw uint8 pixels, untouched.
    owns_input: bool = False


def small_cnn(
    include_top: bool = False, weights: str | None = None, input_shape=(16, 16, 3), alpha: float = 1.0, name: str = "small_cnn"
) -> keras.Model:
    """A five-convolution network (90k weights) for tiny images and the offline default.

    `alpha` scales every layer's width as MobileNet's does (0.5 has about a
    quarter of the weights): the embedded default's distillation student.

    It has BatchNorm like the large backbones, so the fine-tuning rules
    (BatchNorm frozen, inference mode) are exercised by the default run too.
    BatchNorm momentum is 0.9 rather than Keras's 0.99: with a few hundred
    images per epoch the moving statistics otherwise lag the weights for many
    epochs and validation accuracy sits at chance while training reaches 100%.
    """
    if include_top:
        raise ValueError("small_cnn is a feature extractor only; build a classifier with build_classifier")
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = inputs
    for index, filters in enumerate((32, 32, 64, 64, 128)):
        filters = max(4, int(round(filters * alpha)))
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        if index in (1, 3):
            x = keras.layers.MaxPooling2D(name=f"pool{index}")(x)
    model = keras.Model(inputs, x, name=name)
    if weights == "imagenet":
        raise ValueError("small_cnn has no ImageNet weights; use weights=None, a weights file, or pretrain:<dataset>")
    if weights:
        model.load_weights(weights)
    return model


BACKBONES: dict[str, BackboneSpec] = {
    "small_cnn": BackboneSpec(small_cnn, 16, "zero_one", min_size=8, has_imagenet=False, accepts_alpha=True),
    "mobilenet": BackboneSpec(apps.MobileNet, 224, "tf", accepts_alpha=True),
    "mobilenet_v2": BackboneSpec(apps.MobileNetV2, 224, "tf", accepts_alpha=True),
    "mobilenet_v3_small": BackboneSpec(apps.MobileNetV3Small, 224, "none", accepts_alpha=True),
    "mobilenet_v3_large": BackboneSpec(apps.MobileNetV3Large, 224, "none", accepts_alpha=True),
    "efficientnet_b0": BackboneSpec(apps.EfficientNetB0, 224, "none"),
    "efficientnet_b1": BackboneSpec(apps.EfficientNetB1, 240, "none"),
    "efficientnet_b2": BackboneSpec(apps.EfficientNetB2, 260, "none"),
    "efficientnet_b3": BackboneSpec(apps.EfficientNetB3, 300, "none"),
    "efficientnet_v2_b0": BackboneSpec(apps.EfficientNetV2B0, 224, "none"),
    "efficientnet_v2_s": BackboneSpec(apps.EfficientNetV2S, 384, "none"),
    "resnet50": BackboneSpec(apps.ResNet50, 224, "caffe"),
    "resnet50_v2": BackboneSpec(apps.ResNet50V2, 224, "tf"),
    "inception_v3": BackboneSpec(apps.InceptionV3, 299, "tf", min_size=75),
    "xception": BackboneSpec(apps.Xception, 299, "tf", min_size=71),
    "densenet121": BackboneSpec(apps.DenseNet121, 224, "torch"),
    "convnext_tiny": BackboneSpec(apps.ConvNeXtTiny, 224, "none"),
    "vgg16": BackboneSpec(apps.VGG16, 224, "caffe"),
}

# Hub image feature vectors take [0, 1] floats at 224 unless their page says otherwise.
HUB_DEFAULT_SIZE = 224
HUB_DEFAULT_PREPROCESSING = "zero_one"


def load_backbone(
    backbone: str,
    weights: str | None = None,
    *,
    image_size: int = 0,
    alpha: float = 0.0,
    preprocessing: str = "",
    cut_layer: str = "",
    hub_signature: str = "",
    hub_output_key: str = "",
) -> Backbone:
    """Loads a backbone by registered name, Hub handle, SavedModel folder or .keras file.

    Args:
        backbone: a key of `BACKBONES`, an http(s) Hub handle, a SavedModel
            folder, or a `.keras` file.
        weights: for registered backbones, "imagenet", None/"none", or a weights
            file path (anything `keras.applications.X(weights=...)` loads).
        image_size: input side; 0 for the backbone's default.
        alpha: MobileNet width multiplier; 0 for the default (1.0).
        preprocessing: override of the pixel normalisation mode.
        cut_layer: for .keras backbones, the layer whose output is the features.
        hub_signature, hub_output_key: for Hub modules, see `HubLayer`.

    Returns:
        A `Backbone` whose layer is frozen (trainable=False), as phase 1 wants it.

    Raises:
        ValueError: unknown name, missing file, or an option the backbone lacks.
    """
    if preprocessing and preprocessing not in PREPROCESSING_MODES:
        raise ValueError(
            f"preprocessing={preprocessing!r} is not a known mode; known: {', '.join(PREPROCESSING_MODES)}"
        )
    weights = _normalise_weights(weights)
    source = backbone_source(backbone)
    if backbone in BACKBONES:
        loaded = _load_registered(backbone, weights, image_size, alpha)
    elif source in ("hub", "saved_model"):
        _refuse_weights(backbone, weights, "Hub modules and SavedModels carry their own weights")
        layer = HubLayer(backbone, signature=hub_signature, output_key=hub_output_key, name="hub_backbone")
        loaded = Backbone(_short_name(backbone), layer, image_size or HUB_DEFAULT_SIZE, HUB_DEFAULT_PREPROCESSING)
    elif source == "keras_file":
        _refuse_weights(backbone, weights, ".keras files carry their own weights")
        loaded = _load_keras_file(backbone, cut_layer, image_size)
    else:
        hint = ""
        if os.sep in backbone or backbone.startswith("."):
            hint = f" (no such file or SavedModel folder: {backbone!r})"
        raise ValueError(
            f"backbone={backbone!r}: unknown backbone{hint}; known: {', '.join(sorted(BACKBONES))}, "
            "or a TF Hub handle, a SavedModel folder, or a .keras file"
        )
    if preprocessing:
        loaded.preprocessing = preprocessing
    loaded.layer.trainable = False
    return loaded


def backbone_from(image: ImageSettings, weights: str | None) -> Backbone:
    """`load_backbone` as a run's image settings configure it (`weights` resolved by the run: a file, "imagenet" or None)."""
    require_settings(ImageSettings, image, "image", "backbone_from")
    return load_backbone(
        image.backbone, weights, image_size=image.image_size, alpha=image.alpha, preprocessing=image.preprocessing,
        cut_layer=image.backbone_cut_layer, hub_signature=image.hub_signature, hub_output_key=image.hub_output_key,
    )


def _normalise_weights(weights: str | None) -> str | None:
    if weights is None or str(weights).lower() in ("", "none", "random"):
        return None
    if weights == "imagenet":
        return weights
    weights = local_copy(str(weights)) if storage.is_remote(weights) and storage.isfile(weights) else weights  # h5py reads local files
    if not Path(weights).is_file():
        raise ValueError(f"weights={weights!r}: file not found; pass 'imagenet', 'none' or an existing weights file")
    return str(weights)


def _refuse_weights(backbone: str, weights: str | None, why: str) -> None:
    if weights is not None:
        raise ValueError(f"weights={weights!r} cannot apply to backbone={backbone!r}: {why}; pass weights='none'")


def _load_registered(name: str, weights: str | None, image_size: int, alpha: float) -> Backbone:
    spec = BACKBONES[name]
    size = image_size or spec.input_size
    if size < spec.min_size:
        raise ValueError(f"image_size={size}: {name} needs at least {spec.min_size} pixels")
    if weights == "imagenet" and not spec.has_imagenet:
        raise ValueError(
            f"weights='imagenet': {name} has no ImageNet weights; use 'none', a weights file, or pretrain:<dataset>"
        )
    kwargs = {}
    if alpha:
        if not spec.accepts_alpha:
            raise ValueError(
                f"alpha={alpha}: alpha applies to MobileNet backbones and small_cnn only, not {name}; leave it at 0"
            )
        kwargs["alpha"] = alpha
    if weights == "imagenet":
        weights = bundled_imagenet_weights(name, alpha) or weights
    try:
        model = spec.constructor(include_top=False, weights=weights, input_shape=(size, size, 3), **kwargs)
    except Exception as error:  # urllib/HTTP/socket errors differ by platform; only the download can fail this way
        if weights != "imagenet" or not _looks_like_download_failure(error):
            raise
        raise ValueError(
            f"weights='imagenet': could not download the ImageNet weights of {name} ({type(error).__name__}: {error}); "
            "pass a local no-top weights file (--weights=PATH), or use the weights that ship with tl_keras: "
            "--backbone=mobilenet_v2 --alpha=0.35"
        ) from None
    return Backbone(name, model, size, spec.preprocessing)


def bundled_imagenet_weights(name: str, alpha: float = 0.0) -> str | None:
    """The packaged ImageNet weights file for this backbone and width, or None when none ships."""
    path = BUNDLED_IMAGENET.get((name, float(alpha or 1.0)))
    return str(path) if path is not None and path.is_file() else None


def _looks_like_download_failure(error: Exception) -> bool:
    import urllib.error

    text = str(error)
    return (
        isinstance(error, (urllib.error.URLError, OSError, ConnectionError, TimeoutError)) or "URL fetch failure" in text or "HTTP" in text
    )


def _short_name(handle: str) -> str:
    parts = [p for p in handle.rstrip("/").split("/") if p and not p.isdigit()]
    return parts[-1] if parts else "hub"


# Layers that mean a saved model scales its own pixels.
_NORMALISING_LAYERS = (keras.layers.Rescaling, keras.layers.Normalization)
_HEAD_LAYER_TYPES = (
    keras.layers.Dense,
    keras.layers.Dropout,
    keras.layers.Activation,
    keras.layers.Softmax,
)


def _load_keras_file(path: str, cut_layer: str, image_size: int) -> Backbone:
    """Loads a saved Keras model and cuts it into a feature extractor.

    The model is read in safe mode (no lambdas or pickled code). Without
    `cut_layer` the cut is made before the trailing head (dense, dropout,
    activation and softmax layers), keeping the model's own pooling; the
    builder then adds a fresh head as it does for any backbone.
    """
    if not storage.isfile(path):
        raise ValueError(f"backbone={path!r}: .keras file not found")
    model = keras.models.load_model(local_copy(str(path)), compile=False, safe_mode=True)
    if cut_layer:
        try:
            features = _output_in_graph(model.get_layer(cut_layer))
        except ValueError:
            names = [layer.name for layer in model.layers]
            raise ValueError(
                f"cut_layer={cut_layer!r}: {path} has no layer {cut_layer!r}; its layers: {names}"
            ) from None
    else:
        layers = model.layers
        index = len(layers) - 1
        while index > 0 and isinstance(layers[index], _HEAD_LAYER_TYPES):
            index -= 1
        if index == 0:
            raise ValueError(f"backbone={path!r} is all head; name a feature layer with cut_layer")
        features = _output_in_graph(layers[index])
    extractor = keras.Model(model.inputs, features, name=Path(path).stem.replace(".", "_"))
    inner_size = _inner_resize_size(model)
    if inner_size:
        # A model of ours resizes and normalises its own pixels: feed it raw
        # pixels, so nothing is resized twice or normalised twice.
        return Backbone(extractor.name, extractor, inner_size, "none", owns_input=True)
    size = image_size or _fixed_input_size(model) or DEFAULT_INPUT_SIZE
    normalisers = [layer.name for layer in model._flatten_layers(include_self=False) if isinstance(layer, _NORMALISING_LAYERS)]
    if normalisers:
        # It scales its own pixels (Rescaling, Normalization, e.g. EfficientNet's built-in preprocessing): feed raw 0-255.
        return Backbone(extractor.name, extractor, size, "none")
    logging.warning(
        "backbone %s has no normalisation layer of its own; feeding it pixels scaled to [-1, 1] ('tf'). "
        "If it was trained on another scale, pass --preprocessing (torch, caffe, zero_one or none)", path,
    )
    return Backbone(extractor.name, extractor, size, "tf")


def _output_in_graph(layer: keras.layers.Layer):
    """The layer's output tensor in the enclosing model's graph.

    For a nested model, `layer.output` is the output of its *own* graph,
    which the outer inputs do not reach; its inbound node's output is.
    """
    nodes = getattr(layer, "_inbound_nodes", None)
    if nodes:
        return nodes[-1].output_tensors[0]
    return layer.output


def _inner_resize_size(model: keras.Model) -> int:
    for layer in model.layers:
        if isinstance(layer, keras.layers.Resizing):
            return int(layer.height)
    return 0


def _fixed_input_size(model: keras.Model) -> int:
    shape = model.inputs[0].shape
    return int(shape[1]) if shape[1] is not None else 0


def backbone_of(classifier: keras.Model) -> Backbone:
    """The backbone inside a classifier built by `build_classifier` (found from the graph, see `tl_keras.models.anatomy`).

    Raises:
        ValueError: the model is not a single-backbone classifier of ours
            (a fusion model has several; an ensemble has members).
    """
    parts = anatomy(classifier)
    if parts.kind != SINGLE:
        raise ValueError(
            f"{classifier.name} is a {parts.kind} model, not a single-backbone classifier; it has no one backbone to continue from"
        )
    layer = parts.backbone
    size = int(parts.resizes[0].height) if parts.resizes else 0
    preprocess = parts.preprocessors[0] if parts.preprocessors else None
    return Backbone(
        name=layer.name,
        layer=layer,
        input_size=size,
        preprocessing=preprocess.mode if preprocess is not None else "none",
        owns_input=preprocess is None,
    )
