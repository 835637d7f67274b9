"""Small audio modules saved as TF Hub would ship them, for tests: one like YAMNet (one 1-D clip in, a tuple out) and one batched.

Each computes log band energies of 64 ms frames (bands spaced so that the
fixtures' tones fall in different ones) and a trainable projection of
them: enough for a head to tell the tones apart, and a real variable for
fine-tuning to move.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

_EDGES_HZ = (0, 200, 400, 700, 1200, 2000, 3000, 5000, 8000)


def _band_matrix(bins: int = 513, rate: int = 16000) -> np.ndarray:
    frequencies = np.linspace(0, rate / 2, bins)
    return np.stack([(frequencies >= lo) & (frequencies < hi) for lo, hi in zip(_EDGES_HZ[:-1], _EDGES_HZ[1:])], axis=1).astype(np.float32)


class _Bands(tf.Module):
    def __init__(self, width: int):
        super().__init__()
        rng = np.random.default_rng(0)
        self.bands = tf.constant(_band_matrix())
        self.kernel = tf.Variable(rng.normal(0, 0.5, (len(_EDGES_HZ) - 1, width)).astype(np.float32), name="dense/kernel")
        self.bias = tf.Variable(np.zeros(width, np.float32), name="dense/bias")
        self.scores_kernel = tf.Variable(rng.normal(0, 0.5, (width, 5)).astype(np.float32), name="scores/kernel")

    def frames(self, waves):
        """[..., samples] -> ([..., frames, width] embeddings, [..., frames, 8] log band energies)."""
        spectrum = tf.abs(tf.signal.rfft(tf.signal.frame(waves, 1024, 512, pad_end=True)))
        log_bands = tf.math.log(tf.tensordot(spectrum, self.bands, 1) + 1e-3)
        return tf.nn.relu(tf.tensordot(log_bands, self.kernel, 1) + self.bias), log_bands


def save_yamnet_like(folder: Path, width: int = 16) -> Path:
    """Like YAMNet: `__call__(waveform [samples])` -> (scores [frames, 5], embeddings [frames, width], log bands [frames, 8])."""
    module = _Bands(width)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
    def call(waveform):
        embeddings, log_bands = module.frames(waveform)
        return tf.sigmoid(tf.matmul(embeddings, module.scores_kernel)), embeddings, log_bands

    root = tf.train.Checkpoint(module=module)  # the reusable-SavedModel convention: the variables listed as attributes
    root.__call__ = call
    root.variables = [module.kernel, module.bias, module.scores_kernel]
    root.trainable_variables = [module.kernel, module.bias, module.scores_kernel]
    tf.saved_model.save(root, str(folder))
    return folder


def save_batched(folder: Path, width: int = 12) -> Path:
    """Like Google's speech_embedding on TF Hub: a `default` signature, [batch, samples] -> {"default": [batch, frames, 1, width]}."""
    module = _Bands(width)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="default")])
    def default(default):
        embeddings, _ = module.frames(default)
        return {"default": embeddings[:, :, None, :]}

    tf.saved_model.save(module, str(folder), signatures={"default": default})
    return folder
