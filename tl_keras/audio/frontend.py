"""Sound to what a network reads, inside the model: log-mel images for image backbones, SpecAugment while training.

Every layer here is serializable and runs in the exported SavedModel and in
TFLite (`tf.signal.stft` converts to the builtin RFFT2D), so a server or a
phone is given sound, never features computed elsewhere. The settings that
shape the spectrogram are the layer's config: they travel with the model.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# TFLite's dynamic-range quantizer leaves a constant of fewer elements than this in float. The front ends keep each of their
# constants below it (the mel projection in row blocks), so a dynamic-range file quantizes the network and not the spectrum:
# quantized along with the network, the speech front end's 257 x 32 mel matrix alone took top-1 agreement to 0.90.
QUANTIZER_MIN_ELEMENTS = 1024
# 25 ms windows every 10 ms at 16 kHz, 64 mel bands between 60 Hz and 7.8 kHz: the usual speech front end.
FRAME_SECONDS = 0.025
HOP_SECONDS = 0.010
MEL_BANDS = 64
LOW_HZ, HIGH_HZ = 60.0, 7800.0


@keras.saving.register_keras_serializable(package="tl_keras")
class LogMelImage(keras.layers.Layer):
    """A batch of waveforms (batch, samples) in [-1, 1] -> log-mel images (batch, side, side, 3) in [0, 255].

    Rows are mel bands (low at the bottom), columns are time. Each clip's
    image keeps `floor_db` below its own peak, mapped linearly onto 0-255, so
    a quiet recording and a loud one of the same word look alike; 40 dB
    measured better than 80 for an ImageNet backbone on spoken digits. The
    image is resized to `side` pixels and repeated over three channels: what
    an image backbone was trained on.
    """

    def __init__(self, sample_rate: int = 16000, side: int = 224, floor_db: float = 40.0, mel_bands: int = MEL_BANDS, **kwargs):
        super().__init__(**kwargs)
        self.sample_rate, self.side, self.floor_db, self.mel_bands = int(sample_rate), int(side), float(floor_db), int(mel_bands)
        self.frame_length = int(round(FRAME_SECONDS * self.sample_rate))
        self.hop_length = int(round(HOP_SECONDS * self.sample_rate))
        self.fft_length = 1 << (self.frame_length - 1).bit_length()
        self.mel_blocks = mel_blocks(tf.signal.linear_to_mel_weight_matrix(
            self.mel_bands, self.fft_length // 2 + 1, self.sample_rate, LOW_HZ, min(HIGH_HZ, self.sample_rate / 2 - 1),
        ).numpy())

    def call(self, waveforms):
        decibels = log_mel_db(waveforms, self.frame_length, self.hop_length, self.fft_length, self.mel_blocks)
        peak = tf.reduce_max(decibels, axis=[1, 2], keepdims=True)
        scaled = (tf.maximum(decibels, peak - self.floor_db) - (peak - self.floor_db)) * (255.0 / self.floor_db)
        image = tf.reverse(tf.transpose(scaled, [0, 2, 1]), axis=[1])[..., None]  # (batch, bands, frames, 1), low bands at the bottom
        image = tf.image.resize(image, (self.side, self.side))
        return tf.repeat(image, 3, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.side, self.side, 3)

    def get_config(self):
        return {**super().get_config(), "sample_rate": self.sample_rate, "side": self.side, "floor_db": self.floor_db,
                "mel_bands": self.mel_bands}


def log_mel_db(waveforms, frame_length: int, hop_length: int, fft_length: int, mel_matrix, window=None):
    """(batch, frames, bands) power in dB of each mel band: the spectrogram every sound front end here starts from.

    `mel_matrix`: (bins, bands), or a list of its row blocks (`mel_blocks`);
    `window`: the analysis window's values (default: periodic Hann).
    """
    window_fn = tf.signal.hann_window if window is None else (lambda length, dtype: tf.cast(window, dtype))
    stft = tf.signal.stft(waveforms, frame_length, hop_length, fft_length, window_fn=window_fn, pad_end=False)
    power = tf.math.real(stft) ** 2 + tf.math.imag(stft) ** 2  # |stft|^2 without complex abs, which TFLite lacks
    return 10.0 * tf.math.log(tf.maximum(project(power, mel_matrix), 1e-10)) / tf.math.log(10.0)


def mel_blocks(matrix) -> list:
    """A (bins, bands) projection as row blocks of fewer than `QUANTIZER_MIN_ELEMENTS` elements each."""
    rows = max(1, (QUANTIZER_MIN_ELEMENTS - 1) // int(matrix.shape[1]))
    return [matrix[start:start + rows] for start in range(0, int(matrix.shape[0]), rows)]


def project(power, matrix):
    """power (..., bins) times a (bins, bands) matrix given whole or as `mel_blocks`: the same numbers either way."""
    if not isinstance(matrix, (list, tuple)):
        return tf.tensordot(power, matrix, 1)
    parts, start = [], 0
    for block in matrix:
        rows = int(block.shape[0])
        parts.append(tf.tensordot(power[..., start:start + rows], block, 1))
        start += rows
    return tf.add_n(parts)


@keras.saving.register_keras_serializable(package="tl_keras")
class SpecAugment(keras.layers.Layer):
    """While training: `masks` random bands of rows (frequency) and of columns (time) set to the image's mean; identity otherwise.

    Works on any (batch, height, width, channels) map: the log-mel image of
    an image backbone or the mel frames of the speech encoder (where height
    is time). Each band is at most `max_fraction` of its axis.
    """

    def __init__(self, masks: int = 2, max_fraction: float = 0.15, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.masks, self.max_fraction, self.seed = int(masks), float(max_fraction), seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, maps, training=None):
        if not training or self.masks == 0:
            return maps
        shape = tf.shape(maps)
        fill = tf.reduce_mean(maps, axis=[1, 2, 3], keepdims=True)
        keep = tf.ones_like(maps[..., :1])
        for axis in (1, 2):
            length = shape[axis]
            for _ in range(self.masks):
                width = tf.cast(keras.random.uniform((shape[0], 1), 0, self.max_fraction, seed=self.generator)
                                * tf.cast(length, "float32"), "int32")
                start = tf.cast(keras.random.uniform((shape[0], 1), 0, 1, seed=self.generator)
                                * tf.cast(length - width, "float32"), "int32")
                positions = tf.range(length)[None, :]
                band = tf.cast((positions >= start) & (positions < start + width), maps.dtype)  # (batch, length)
                band = band[:, :, None, None] if axis == 1 else band[:, None, :, None]
                keep = keep * (1.0 - band)
        return maps * keep + fill * (1.0 - keep)

    def get_config(self):
        return {**super().get_config(), "masks": self.masks, "max_fraction": self.max_fraction, "seed": self.seed}
