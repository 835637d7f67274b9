"""Random training-time changes to waveforms: a shift in time and white noise at a random signal-to-noise ratio.

Applied in front of the classifier while training only (`with_augmentation`);
SpecAugment's masks sit inside the model, after the front end
(`frontend.SpecAugment`). Noise mixing is what buys robustness to a noisy
room: without it a model trained on clean clips falls towards chance at
10 dB SNR.
"""

from __future__ import annotations

import keras
import tensorflow as tf

MAX_SNR_DB = 30.0


@keras.saving.register_keras_serializable(package="tl_keras")
class WaveAugment(keras.layers.Layer):
    """While training: roll each clip by up to `shift` of its length (the wrapped part silenced) and mix in white noise at an SNR
    drawn uniformly between `noise_snr_db` and 30 dB (0: no noise). Identity otherwise."""

    def __init__(self, shift: float = 0.1, noise_snr_db: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.shift, self.noise_snr_db, self.seed = float(shift), float(noise_snr_db), seed
        self.generator = keras.random.SeedGenerator(seed)

    def call(self, waves, training=None):
        if not training:
            return waves
        length = tf.shape(waves)[1]
        if self.shift:
            most = tf.cast(self.shift * tf.cast(length, tf.float32), tf.int32)
            offsets = tf.cast(keras.random.uniform((tf.shape(waves)[0],), -1.0, 1.0, seed=self.generator)
                              * tf.cast(most, tf.float32), tf.int32)
            positions = tf.range(length)[None, :] - offsets[:, None]
            inside = (positions >= 0) & (positions < length)
            waves = tf.where(inside, tf.gather(waves, tf.clip_by_value(positions, 0, length - 1), batch_dims=1), 0.0)
        if self.noise_snr_db:
            snr = keras.random.uniform((tf.shape(waves)[0], 1), self.noise_snr_db, MAX_SNR_DB, seed=self.generator)
            power = tf.reduce_mean(waves * waves, axis=1, keepdims=True) + 1e-10
            noise = keras.random.normal(tf.shape(waves), seed=self.generator) * tf.sqrt(power / 10.0 ** (snr / 10.0))
            waves = waves + noise
        return waves

    def get_config(self):
        return {**super().get_config(), "shift": self.shift, "noise_snr_db": self.noise_snr_db, "seed": self.seed}


def build_wave_augmentation(shift: float, noise_snr_db: float, seed: int) -> keras.Sequential | None:
    """The training-time waveform changes asked for, as the `augmentation` the two phases take; None when none are."""
    if not shift and not noise_snr_db:
        return None
    return keras.Sequential([WaveAugment(shift, noise_snr_db, seed=seed, name="wave_augment")], name="augmentation")


def with_noise(waves, snr_db: float, seed: int = 0):
    """`waves` with white noise at exactly `snr_db` per clip: the robustness measure of reports and benchmarks."""
    import numpy as np

    rng = np.random.default_rng(seed)
    power = np.mean(np.square(waves), axis=1, keepdims=True) + 1e-10
    return (waves + rng.standard_normal(waves.shape).astype(np.float32) * np.sqrt(power / 10.0 ** (snr_db / 10.0))).astype(np.float32)
