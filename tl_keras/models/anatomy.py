"""Handles on the parts of a tl_keras classifier, found from the graph rather than from layer names.

Feature caching, reloading, the serving export and TFLite all need to know
where a classifier resizes, normalises, extracts, pools and classifies.
Matching fixed names ("resize", "pool", "dropout") broke on feature fusion
(`resize_0`, `pool_1`) and ensembles (whose parts live inside members); the
graph says the same thing for every shape of model, and still holds after a
`.keras` file is loaded back (handles stored on the Python object would not).
"""

from __future__ import annotations

import dataclasses

import keras

SINGLE = "single"  # build_classifier: one backbone
FUSION = "fusion"  # build_fusion_classifier: several backbones, one head
ENSEMBLE = "ensemble"  # build_ensemble: averaged member classifiers

_POOLS = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


@dataclasses.dataclass
class Anatomy:
    """The parts of one classifier; lists are in the model's layer order (one entry per fusion branch)."""

    kind: str
    head: keras.layers.Layer
    dropout: keras.layers.Layer | None  # the layer whose input is the head's feature vector
    resizes: list[keras.layers.Layer]
    preprocessors: list[keras.layers.Layer]  # layers that declare `normalises_input` (vision.layers.ImagePreprocessing)
    backbones: list[keras.layers.Layer]
    pools: list[keras.layers.Layer]
    members: list[keras.Model]

    @property
    def backbone(self) -> keras.layers.Layer:
        """The one backbone of a single-backbone classifier."""
        if len(self.backbones) != 1:
            raise ValueError(f"a {self.kind} model has {len(self.backbones)} backbones, not one; use .backbones")
        return self.backbones[0]

    @property
    def features(self):
        """The symbolic feature vector the head classifies (the dropout's input)."""
        if self.dropout is None:
            raise ValueError(f"a {self.kind} model has no single feature vector before its head")
        return self.dropout.input

    @property
    def input_size(self) -> int:
        """The largest side any part resizes to (what to decode test images at); 0 when nothing resizes."""
        sizes = [int(r.height) for r in self.resizes] + [anatomy(member).input_size for member in self.members]
        return max(sizes, default=0)

    @property
    def preprocessing(self) -> str:
        """The distinct normalisations inside the model joined by "+" (fusion and ensembles may have several); "" if none."""
        return "+".join(dict.fromkeys(self.preprocessing_modes()))

    def preprocessing_modes(self) -> list[str]:
        """Every pixel normalisation inside the model, members' included, in order."""
        own = [p.mode for p in self.preprocessors]
        return own + [mode for member in self.members for mode in anatomy(member).preprocessing_modes()]


# The side a model without a resize layer of its own is fed at: Keras Applications' ImageNet size.
DEFAULT_INPUT_SIZE = 224


def input_size_of(model: keras.Model) -> int:
    """The side images are fed at: the model's own resize (the largest, for fusion and ensembles), else 224."""
    return anatomy(model).input_size or DEFAULT_INPUT_SIZE


def producer(tensor) -> keras.layers.Layer:
    """The layer whose call produced a symbolic tensor of a functional model."""
    return tensor._keras_history.operation


def anatomy(model: keras.Model) -> Anatomy:
    """The parts of a classifier built by `build_classifier`, `build_fusion_classifier` or `build_ensemble`.

    Raises:
        ValueError: the model is not one of those (its output is not made by a
            Dense head over a dropout, nor an average of member classifiers).
    """
    if not hasattr(model, "outputs") or not model.outputs:
        raise ValueError(f"{getattr(model, 'name', model)!r} is not a functional classifier")
    head = producer(model.outputs[0])
    image = model.inputs[0]
    layers = model.layers
    inputs_of = _inputs_by_layer(model)
    fed_by_image = [layer for layer in layers if inputs_of.get(id(layer)) is image]
    # An image classifier resizes its input first (vision.classifier puts the layer there); other inputs have no such layer.
    resizes = [layer for layer in fed_by_image if isinstance(layer, keras.layers.Resizing)]
    preprocessors = [layer for layer in layers if getattr(layer, "normalises_input", False)]
    pools = [layer for layer in layers if isinstance(layer, _POOLS)]
    if isinstance(head, keras.layers.Dense):
        feeding = inputs_of.get(id(head))
        dropout = producer(feeding) if feeding is not None and isinstance(producer(feeding), keras.layers.Dropout) else None
        if dropout is None:
            raise ValueError(f"{model.name!r}: its head {head.name!r} is not fed by a dropout layer; not a tl_keras classifier")
        if preprocessors:
            outputs = {id(p.output) for p in preprocessors}
            backbones = [layer for layer in layers if id(inputs_of.get(id(layer))) in outputs]
        else:  # a backbone that takes raw pixels itself (a saved classifier of ours used as a backbone)
            backbones = [layer for layer in fed_by_image if not isinstance(layer, keras.layers.Resizing)]  # all but the input resize
        kind = FUSION if len(backbones) > 1 else SINGLE
        return Anatomy(kind, head, dropout, resizes, preprocessors, backbones, pools, members=[])
    members = [layer for layer in fed_by_image if isinstance(layer, keras.Model)]
    if len(members) >= 2:
        return Anatomy(ENSEMBLE, head, None, resizes, preprocessors, [], pools, members)
    raise ValueError(f"{model.name!r} was not built by tl_keras (its output comes from {type(head).__name__} {head.name!r})")


def _inputs_by_layer(model: keras.Model) -> dict[int, object]:
    """id(layer) -> the one symbolic tensor the model calls it on (layers called on several tensors are left out).

    Read from the model's own graph nodes: a nested model's `.input` is its
    own Input, not the tensor the outer model feeds it.
    """
    found: dict[int, object] = {}
    for nodes in getattr(model, "_nodes_by_depth", {}).values():  # a Sequential model has none: nothing is found
        for node in nodes:
            tensors = node.input_tensors
            if len(tensors) == 1:
                found[id(node.operation)] = tensors[0]
    return found


def counted_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """`leaf_layers` with each model's InputLayer kept in place: the list `from:K` indexes.

    The Keras fine-tuning tutorial unfreezes `base_model.layers[K:]`, and
    `base_model.layers[0]` is the InputLayer; counting it keeps `from:100`
    the same cut as the tutorial's (MobileNetV2: 154 counted, 153 leaves).
    """
    if isinstance(layer, keras.Model):
        return [leaf for child in layer.layers for leaf in counted_layers(child)]
    return [layer]


def leaf_layers(layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The backbone's layers in order, nested models flattened (the unit of 'top N layers')."""
    if isinstance(layer, keras.Model):
        out = []
        for child in layer.layers:
            if isinstance(child, keras.layers.InputLayer):
                continue
            out.extend(leaf_layers(child))
        return out
    return [layer]
