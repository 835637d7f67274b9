"""Google's pretrained speech_embedding rebuilt as a trainable Keras model, its weights read from the published files.

The network (Lin et al., ICASSP 2020; `google/speech_embedding/1` on TF Hub,
Apache-2.0) was trained for keyword spotting on a large speech corpus. It is
distributed here as two standard files, `melspectrogram.tflite` (16 kHz audio
to 32-band log-mel frames every 10 ms) and `embedding_model.tflite` (76 frames
to a 96-d vector); a TFLite file cannot be fine-tuned, so this converter
reads each file's constant tensors (through LiteRT, or TensorFlow's own
interpreter where the `[litert]` extra is not installed) and
puts them into Keras layers of the same shapes, the way keras-hub's checkpoint
converters map a foreign checkpoint onto a Keras architecture.

The rebuilt encoder is fully convolutional over time: fed a whole clip's mel
frames it returns one embedding per 8 frames (80 ms), exactly what sliding
the 76-frame window along the clip gives. `tests/test_audio_encoder.py`
holds it to the TFLite files within 1e-4.

The files stay outside the package (their redistribution terms are mixed:
see the asset's SOURCE.md); a user points `--backbone` at their folder or
puts them where `audio.model.speech_embedding_folder` looks.
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tl_keras.io import storage
from tl_keras.audio.frontend import log_mel_db, mel_blocks
from tl_keras.config.settings import ConfigError

MEL_FILE, EMBEDDING_FILE = "melspectrogram.tflite", "embedding_model.tflite"
SAMPLE_RATE = 16000
WINDOW_FRAMES = 76  # the frames one embedding sees (0.775 s of sound)
MIN_SAMPLES = 512 + (WINDOW_FRAMES - 1) * 160  # the shortest clip that yields one embedding
# The encoder's 20 convolutions: (kernel height over time, kernel width over mel bands, filters); max pooling after 2, 6, 10, 14, 18.
_CONVS = [(3, 3, 24), (1, 3, 24), (3, 1, 24)] + [(1, 3, 48), (3, 1, 48)] * 2 + [(1, 3, 72), (3, 1, 72)] * 2 \
    + [(1, 3, 96), (3, 1, 96)] * 4 + [(3, 1, 96)]
_POOL_AFTER = {2: (2, 2), 6: (1, 2), 10: (2, 2), 14: (1, 2), 18: (2, 2)}
LEAK, FLOOR = 0.2, -0.4  # LeakyReLU slope, then max(x, -0.4): the original network's activation


def is_speech_embedding_folder(path: str) -> bool:
    """Whether `path` is a folder holding the two speech_embedding files."""
    return bool(path) and storage.isfile(storage.join(path, MEL_FILE)) and storage.isfile(storage.join(path, EMBEDDING_FILE))


@keras.saving.register_keras_serializable(package="tl_keras")
class SpeechMelFrames(keras.layers.Layer):
    """Waveforms (batch, samples) in [-1, 1] at 16 kHz -> (batch, frames, 32, 1) in dB: the encoder's own log-mel front end.

    The original computes a 512-point STFT every 160 samples as two
    convolutions whose kernels are a window times cosines and sines, 32 mel
    bands, 10 log10, and clips at 80 dB below the peak (the encoder is then
    fed `dB / 10 + 2`, `audio.model.SpeechScale`); it was given 16-bit sample
    values, so waveforms are scaled by 32768 first. Here the same STFT is
    `tf.signal.stft` with the file's window (the cosine kernel at 0 Hz; the
    two agree within 2e-5 dB), which converts to TFLite's RFFT with no large
    constant, and the mel matrix is held in row blocks (`frontend.mel_blocks`):
    a dynamic-range TFLite file then quantizes the encoder, not its spectrum.
    The window and mel blocks are this layer's (non-trainable) weights, read
    from the file.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.window = self.add_weight(name="window", shape=(512,), trainable=False, initializer="zeros")
        self.mel = [self.add_weight(name=f"mel_{i}", shape=tuple(block.shape), trainable=False, initializer="zeros")
                    for i, block in enumerate(mel_blocks(np.zeros((257, 32), np.float32)))]

    def call(self, waveforms):
        signal = tf.cast(waveforms, "float32") * 32768.0
        decibels = log_mel_db(signal, 512, 160, 512, list(self.mel), window=self.window)
        peak = tf.reduce_max(decibels, axis=[1, 2], keepdims=True)
        return tf.maximum(decibels, peak - 80.0)[..., None]

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else (input_shape[1] - 512) // 160 + 1
        return (input_shape[0], frames, 32, 1)


def build_encoder(name: str = "speech_embedding") -> keras.Model:
    """The embedding network with random weights: (batch, frames, 32, 1) -> (batch, (frames - 76) // 8 + 1, 96)."""
    frames = keras.Input((None, 32, 1), name="mel_frames")
    x = frames
    for i, (height, width, filters) in enumerate(_CONVS):
        if width == 3:  # the mel axis is zero-padded by one on each side; time never is
            x = keras.layers.ZeroPadding2D(((0, 0), (1, 1)), name=f"pad_{i}")(x)
        x = keras.layers.Conv2D(filters, (height, width), use_bias=i < len(_CONVS) - 1, name=f"conv_{i}")(x)
        if i < len(_CONVS) - 1:
            x = LeakyFloor(name=f"activation_{i}")(x)
        if i in _POOL_AFTER:
            x = keras.layers.MaxPooling2D(_POOL_AFTER[i], name=f"pool_{i}")(x)
    embeddings = keras.layers.Reshape((-1, 96), name="embeddings")(x)
    return keras.Model(frames, embeddings, name=name)


@keras.saving.register_keras_serializable(package="tl_keras")
class LeakyFloor(keras.layers.Layer):
    """The original network's activation: LeakyReLU with slope 0.2, then max(x, -0.4).

    Written as max(x, 0.2 x) rather than with Keras's LeakyReLU: the same
    numbers, and TensorFlow's graph optimiser no longer tries (and fails,
    with an error line in the log) to fuse it with the convolution's bias.
    """

    def call(self, x):
        return keras.ops.maximum(keras.ops.maximum(x, LEAK * x), FLOOR)


def load_speech_embedding(folder: str) -> tuple[SpeechMelFrames, keras.Model]:
    """(front end, encoder) with the weights of the two files in `folder`, both trainable Keras objects.

    Raises:
        ConfigError: the folder lacks a file, or a file's tensors are not the speech_embedding's.
    """
    if not is_speech_embedding_folder(folder):
        raise ConfigError(f"--backbone={folder!r}: not a speech_embedding folder (it needs {MEL_FILE} and {EMBEDDING_FILE})")
    mel_tensors = _constant_tensors(Path(folder) / MEL_FILE, resize=(1, SAMPLE_RATE))
    front = SpeechMelFrames(name="speech_mel_frames")
    front.build((None, None))
    kernels = [v[:, 0, :, 0] for v in mel_tensors.values() if v.shape == (257, 1, 512, 1)]
    mel = [v for v in mel_tensors.values() if v.shape == (257, 32)]
    if len(kernels) != 2 or len(mel) != 1:
        raise ConfigError(f"--backbone={folder!r}: {MEL_FILE} does not hold the speech_embedding front end (two STFT kernels, "
                          "a mel matrix)")
    cosine = max(kernels, key=lambda k: float(np.abs(k[0]).max()))  # the sine kernel is zero at 0 Hz; the cosine one is the window
    front.window.assign(cosine[0])
    for weight, block in zip(front.mel, mel_blocks(mel[0])):
        weight.assign(block)
    encoder = build_encoder()
    _load_encoder_weights(encoder, _constant_tensors(Path(folder) / EMBEDDING_FILE), folder)
    return front, encoder


def _load_encoder_weights(encoder: keras.Model, tensors: dict[str, np.ndarray], folder: str) -> None:
    """Each conv's kernel (TFLite's OHWI to Keras's HWIO) and its bias (the batch norm folded in by the converter)."""
    for i in range(len(_CONVS)):
        layer = encoder.get_layer(f"conv_{i}")
        kernel = _named(tensors, rf"model/conv2d{'' if i == 0 else '_' + str(i)}/Conv2D1?$", 4, folder)
        weights = [np.transpose(kernel, (1, 2, 3, 0))]
        if layer.use_bias:
            weights.append(_named(tensors, rf"model/batch_normalization{'' if i == 0 else '_' + str(i)}/FusedBatchNormV3;", 1, folder))
        layer.set_weights(weights)


def _named(tensors: dict[str, np.ndarray], pattern: str, rank: int, folder: str) -> np.ndarray:
    found = [v for n, v in tensors.items() if re.match(pattern, n) and v.ndim == rank]
    if len(found) != 1:
        raise ConfigError(f"--backbone={folder!r}: {EMBEDDING_FILE} has {len(found)} tensors matching {pattern!r}, expected one")
    return found[0]


def _constant_tensors(path: Path, resize: tuple[int, ...] | None = None) -> dict[str, np.ndarray]:
    """Every constant tensor of a TFLite file by name (activations, which are not constant, are left out)."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:  # LiteRT is the [litert] extra; TensorFlow's own interpreter reads the same tensors
        Interpreter, OpResolverType = tf.lite.Interpreter, tf.lite.experimental.OpResolverType

    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    if resize is not None:
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], list(resize))
    interpreter.allocate_tensors()
    found = {}
    for detail in interpreter.get_tensor_details():
        if detail["name"] and detail["name"].startswith(("model/", "Const", "convolution")):
            try:
                found[detail["name"]] = np.array(interpreter.get_tensor(detail["index"]))
            except ValueError:  # a tensor with no data
                continue
    return found


@keras.saving.register_keras_serializable(package="tl_keras")
class MeanMaxOverTime(keras.layers.Layer):
    """(batch, steps, features) -> (batch, 2 x features): the mean and the max of each feature over the clip's steps."""

    def call(self, sequence):
        return keras.ops.concatenate([keras.ops.mean(sequence, axis=1), keras.ops.max(sequence, axis=1)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 2 * input_shape[-1])
