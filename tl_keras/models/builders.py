"""What every classifier shares, whatever it reads: the head's name, optimizers with layer-wise rates, compiling, the training wrapper.

The image classifiers themselves (`build_classifier`, `build_fusion_classifier`) are
built in `tl_keras.vision.classifier`; text classifiers in `tl_keras.text.model`.
"""

from __future__ import annotations

from typing import Sequence

import keras

from tl_keras.models.losses import Accuracy, SparseCrossentropy

INPUT_NAME = "image"  # the input's name in an image classifier and its exports (a text classifier names its own)
HEAD_NAME = "head"



def make_optimizer(
    name: str, learning_rate: float, *, clipnorm: float = 0.0, decay_steps: int = 0, rate_scale: dict[int, float] | None = None,
    warmup_steps: int = 0, total_steps: int = 0,
) -> keras.optimizers.Optimizer:
    """A fresh optimizer by flag name; each phase gets its own (fresh slots).

    `decay_steps` > 0 makes the rate a cosine decay to zero over that many steps.
    `warmup_steps` > 0 raises the rate linearly from 0 over those first steps
    (of `total_steps`, or of `decay_steps` when decaying), then decays or holds it.
    `rate_scale` maps `id(variable)` to a multiplier of the rate for that
    variable (layer-wise rates, `layer_rate_scales`); others use 1.
    """
    table = {
        "adam": keras.optimizers.Adam,
        "adamw": keras.optimizers.AdamW,
        "rmsprop": keras.optimizers.RMSprop,
        "sgd": keras.optimizers.SGD,
    }
    if name not in table:
        raise ValueError(f"optimizer={name!r} is unknown; known: {', '.join(table)}")
    rate = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps) if decay_steps > 0 else learning_rate
    if warmup_steps > 0:
        span = decay_steps or total_steps
        rate = keras.optimizers.schedules.CosineDecay(
            0.0, max(1, span - warmup_steps), alpha=0.0 if decay_steps > 0 else 1.0, warmup_target=learning_rate, warmup_steps=warmup_steps
        )
    kwargs = {"clipnorm": clipnorm} if clipnorm else {}
    if name == "sgd":
        kwargs["momentum"] = 0.9
    cls = table[name]
    if rate_scale:
        return _with_rate_scale(cls)(rate_scale, learning_rate=rate, **kwargs)
    return cls(learning_rate=rate, **kwargs)


_SCALED_CLASSES: dict[type, type] = {}


def _with_rate_scale(cls: type) -> type:
    """`cls` with a per-variable multiplier on the rate each update step receives.

    Keras 3 optimizers hand every variable's step the current rate
    (schedule included) through `update_step`, so scaling it there gives
    exact layer-wise rates for any optimizer, Adam included, where scaling
    gradients instead would cancel out in the normalisation.
    """
    if not callable(getattr(cls, "_get_variable_index", None)):  # a private Keras method (there since 3.0; tested to 3.15)
        raise NotImplementedError(
            f"layer-wise rates need keras.optimizers.Optimizer._get_variable_index, which Keras {keras.__version__} lacks; "
            "pass --layer_rate_bottom=1 (no layer-wise rates) or install keras<3.16"
        )
    if cls not in _SCALED_CLASSES:

        class LayerwiseRates(cls):
            def __init__(self, rate_scale: dict[int, float], **kwargs):
                super().__init__(**kwargs)
                self._rate_scale_by_id = dict(rate_scale)
                self._rate_scale: list[float] = []

            def build(self, variables):
                super().build(variables)
                self._rate_scale = [float(self._rate_scale_by_id.get(id(v), 1.0)) for v in variables]

            def update_step(self, gradient, variable, learning_rate):
                scale = self._rate_scale[self._get_variable_index(variable)]
                if scale != 1.0:
                    learning_rate = learning_rate * scale
                return super().update_step(gradient, variable, learning_rate)

        LayerwiseRates.__name__ = f"LayerwiseRates{cls.__name__}"
        _SCALED_CLASSES[cls] = LayerwiseRates
    return _SCALED_CLASSES[cls]


def is_layerwise(optimizer) -> bool:
    """Whether `optimizer` came from `make_optimizer(..., rate_scale=...)`."""
    return type(optimizer) in _SCALED_CLASSES.values()


def layer_rate_scales(layers: Sequence[keras.layers.Layer], bottom_scale: float) -> dict[int, float]:
    """Discriminative rates: the top layer at 1, the bottom one at `bottom_scale`, geometric in between.

    Lower layers hold general features (edges, textures) that need the
    least change; the top ones are the most task-specific. Only layers with
    trainable weights count, so frozen ones do not stretch the ladder.

    Args:
        layers: the backbone's layers in order, input side first.
        bottom_scale: multiplier of the lowest trainable layer, in (0, 1].
    """
    if not 0.0 < bottom_scale <= 1.0:
        raise ValueError(f"bottom_scale={bottom_scale} must be in (0, 1]")
    trainable = [layer for layer in layers if layer.trainable_weights]
    scales: dict[int, float] = {}
    steps = max(len(trainable) - 1, 1)
    for position, layer in enumerate(trainable):
        scale = bottom_scale ** ((len(trainable) - 1 - position) / steps)
        for variable in layer.trainable_weights:
            scales[id(variable)] = scale
    return scales


def compile_classifier(
    model: keras.Model, optimizer: str, learning_rate: float, label_smoothing: float = 0.0, *, clipnorm: float = 0.0, decay_steps: int = 0,
    rate_scale: dict[int, float] | None = None, warmup_steps: int = 0, total_steps: int = 0, loss=None, metrics=None,
) -> keras.Model:
    """Compiles with `loss` and `metrics` (the task's; by default integer or mixup soft labels with accuracy); returns the model.

    (Eleven parameters: a public entry point; each is an optimisation setting of its own.)
    """
    model.compile(
        optimizer=make_optimizer(
            optimizer,
            learning_rate,
            clipnorm=clipnorm,
            decay_steps=decay_steps,
            rate_scale=rate_scale,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
        ),
        loss=loss if loss is not None else SparseCrossentropy(label_smoothing=label_smoothing),
        metrics=metrics if metrics is not None else [Accuracy()],
    )
    return model


def with_augmentation(classifier: keras.Model, augmentation: keras.Sequential | None) -> keras.Model:
    """A training model: the classifier's input -> augmentation -> the classifier (weights shared); the classifier itself without one.

    The input keeps the classifier's own shape and dtype (raw pixels for an
    image classifier), so `fit` feeds it what it feeds the classifier.
    """
    if augmentation is None:
        return classifier
    spec = classifier.inputs[0]
    inputs = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name=spec.name.split(":")[0])
    outputs = classifier(augmentation(inputs))
    return keras.Model(inputs, outputs, name=f"{classifier.name}_training")

