"""A TF Hub audio module, or a local SavedModel of one (YAMNet, ...), as a sound backbone: waveforms in, embeddings per frame out.

Hub audio modules disagree on what they take and give. YAMNet takes one
clip as a 1-D waveform and returns (scores, embeddings, spectrogram) for it;
others take a batch [N, samples] and give [N, frames, 1, D], [N, D] or a
dict. `read_module_call` reads the module's input signature and one call on
a second of silence and records how to call it; `HubAudioEncoder` is our
`HubLayer` (the module's own variables, trainable, BatchNorm kept frozen)
called that way, so the layers after it always see [batch, frames, D] and
pool mean and max over time as for the speech encoder. The module does its
own signal processing (16 kHz mono in [-1, 1], as YAMNet and Google's
speech_embedding expect), so the model has no log-mel layer of ours and no
SpecAugment; noise mixing acts on the waveform and still applies.
"""

from __future__ import annotations

import dataclasses
import functools

import keras
import tensorflow as tf

from tl_keras.config.settings import ConfigError, backbone_source
from tl_keras.models.hub_layer import HubLayer, load_hub_module

# Short names for the audio modules users reach for most, as `--backbone` takes them.
KNOWN_MODULES = {
    "yamnet": "https://tfhub.dev/google/yamnet/1",
}
# YAMNet reads 0.96 s windows every 0.48 s: a clip shorter than one window is padded by the module itself into one frame.
YAMNET_WINDOW_SECONDS = 0.975
_PROBE_SAMPLES = 16000


@dataclasses.dataclass(frozen=True)
class ModuleCall:
    """How to call one audio module on a batch of waveforms."""

    signature: str  # "" (the module's __call__) or the signature it is called through
    per_example: bool  # takes one 1-D clip at a time (YAMNet)
    output: str  # "" (one tensor), a dict key, or a tuple position written as a number
    width: int  # the embedding size of one frame


def module_handle(backbone: str) -> str:
    """The handle `--backbone` stands for: a known short name's URL, else the text itself."""
    return KNOWN_MODULES.get(backbone, backbone)


def could_be_audio_module(backbone: str) -> bool:
    """Whether `--backbone` may name an audio module (a known name, a Hub handle or a SavedModel folder), without loading it."""
    return backbone in KNOWN_MODULES or backbone_source(backbone) in ("hub", "saved_model")


@functools.lru_cache(maxsize=8)
def audio_module_call(backbone: str) -> ModuleCall | None:
    """How to call the module `--backbone` names on waveforms, or None where it takes no waveform (an image module, a classifier).

    Cached: the recipe, the checks and the model builder all ask.

    Raises:
        ConfigError: a known name or Hub handle that does not load (offline, a typo), named with the reason.
    """
    if not could_be_audio_module(backbone):
        return None
    handle = module_handle(backbone)
    try:
        module = load_hub_module(handle)
    except Exception as error:  # noqa: BLE001 - hub.load raises many kinds; the user needs the handle and the reason
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ConfigError(f"--backbone={backbone!r}: could not load {handle} ({reason}); TF Hub handles need a network connection "
                          "the first time, or pass the module's downloaded folder") from None
    return read_module_call(module)


def read_module_call(module) -> ModuleCall | None:
    """`ModuleCall` for a loaded module: from its input signature and its outputs on a second of silence."""
    signature, spec = _waveform_input(module)
    if spec is None:
        return None
    per_example = spec.shape.rank == 1
    function = module.signatures[signature] if signature else module
    silence = tf.zeros([_PROBE_SAMPLES] if per_example else [1, _PROBE_SAMPLES], tf.float32)
    outputs = function(silence)
    output = _embedding_output(outputs, per_example)
    return ModuleCall(signature, per_example, output, int(_pick(outputs, output).shape[-1]))


def _waveform_input(module) -> tuple[str, tf.TensorSpec | None]:
    """(signature or "", the spec of its one input) where that input is a float waveform [samples] or [batch, samples]."""
    specs = []
    if callable(module):
        for concrete in getattr(getattr(module, "__call__", None), "concrete_functions", None) or []:
            args = concrete.structured_input_signature[0]
            if args and isinstance(args[0], tf.TensorSpec):
                specs.append(("", args[0]))
    for name in ("default", "serving_default"):
        if not specs and name in getattr(module, "signatures", {}):
            inputs = module.signatures[name].structured_input_signature[1]
            if len(inputs) == 1:
                specs.append((name, next(iter(inputs.values()))))
    for signature, spec in specs:
        if spec.dtype == tf.float32 and spec.shape.rank in (1, 2):
            return signature, spec
    return "", None


def _embedding_output(outputs, per_example: bool) -> str:
    """Which output holds the embeddings: a key naming them, else the widest with a frame axis (YAMNet's 1024 over its 521 scores)."""
    if isinstance(outputs, tf.Tensor):
        return ""
    items = list(outputs.items()) if isinstance(outputs, dict) else [(str(i), t) for i, t in enumerate(outputs)]
    named = [key for key, _ in items if "embedding" in key.lower()]
    if named:
        return named[0]
    least_rank = 1 if per_example else 2
    candidates = [(int(t.shape[-1]), key) for key, t in items if t.shape.rank >= least_rank and t.dtype == tf.float32]
    if not candidates:
        raise ConfigError(f"the audio module's outputs {[key for key, _ in items]} hold no float embedding")
    return max(candidates)[1]


def _pick(outputs, output: str):
    if not output:
        return outputs
    return outputs[output] if isinstance(outputs, dict) else outputs[int(output)]


@keras.saving.register_keras_serializable(package="tl_keras")
class HubAudioEncoder(HubLayer):
    """A Hub audio module as a Keras 3 layer: (batch, samples) float32 waveforms -> (batch, frames, width) embeddings.

    Args:
        handle: what `hub.load` takes (a known short name is resolved first).
        per_example, output, width, signature: how to call it (`ModuleCall`);
            read from the module when `width` is 0.
    """

    def __init__(self, handle: str, per_example: bool = False, output: str = "", width: int = 0, signature: str = "", **kwargs):
        kwargs.pop("output_key", None)
        kwargs.pop("output_shape", None)
        if not width:
            call = audio_module_call(handle)
            if call is None:
                raise ConfigError(f"--backbone={handle!r}: the module does not take a float waveform [samples] or [batch, samples]")
            signature, per_example, output, width = call.signature, call.per_example, call.output, call.width
        super().__init__(module_handle(handle), signature=signature, **kwargs)
        self.per_example, self.output_name, self.width = bool(per_example), str(output), int(width)
        self._frame_counts: dict[int, int] = {}

    def call(self, waves, training=None):
        if self.per_example:
            frame_shape = [self._frames_per_clip(waves.shape[-1]), self.width]
            frames = tf.map_fn(lambda wave: tf.reshape(_pick(self.call_module(wave, training), self.output_name), frame_shape),
                               waves, fn_output_signature=tf.TensorSpec(frame_shape, tf.float32))
        else:
            frames = _pick(self.call_module(waves, training), self.output_name)
        self.add_module_losses(training)
        return tf.reshape(frames, [tf.shape(waves)[0], -1, self.width])

    def _frames_per_clip(self, samples: int | None) -> int | None:
        """How many frames the module gives a clip of `samples` (None where unknown), from one eager call on silence.

        A loop over the batch whose items have a static shape is what the
        TFLite converter can lower to builtin ops; with an unknown frame
        count it needs TensorFlow's own (Flex) ops.
        """
        if samples is None:
            return None
        if samples not in self._frame_counts:
            with tf.init_scope():  # eager even while a model is being traced
                if not tf.executing_eagerly():
                    return None
                frames = _pick(self.call_module(tf.zeros([samples], tf.float32)), self.output_name)
                self._frame_counts[samples] = int(tf.size(frames)) // self.width
        return self._frame_counts[samples]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self._frames_per_clip(input_shape[-1]) if self.per_example else None, self.width)

    def get_config(self):
        config = super().get_config()
        for key in ("output_shape", "output_key"):
            config.pop(key, None)
        return {**config, "per_example": self.per_example, "output": self.output_name, "width": self.width}


@keras.saving.register_keras_serializable(package="tl_keras")
class WaveformIn(keras.layers.Layer):
    """The waveform as it comes: the model's normalising layer for a module that does its own signal processing.

    `models.anatomy` finds a model's backbone as the layer its normalising
    layer feeds; this declares the module's input to be that place.
    """

    normalises_input = True
    mode = "waveform"

    def call(self, waves):
        return waves


def window_floor_seconds(backbone: str) -> float:
    """The shortest automatic clip length for a module: one analysis window for YAMNet, none otherwise."""
    return YAMNET_WINDOW_SECONDS if "yamnet" in module_handle(backbone).lower() else 0.0

