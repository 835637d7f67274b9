"""A sound classifier's SavedModel for TF Serving: WAV file bytes in, in the versioned layout images and texts use.

`serving_default` takes `audio_bytes` (string [N], each a 16-bit PCM WAV
file at any sample rate, mono or not) and decodes, mixes down, resamples
and fits each clip to the model's length inside the graph, with the same
ops training used (`clips`); a request holding bytes that are not a WAV
file fails alone, naming the rows, and the server goes on. `waveform`
takes float32 [N, samples] at the model's rate, already that long, for
callers who read audio themselves (and is what TFLite converts). The card
states the sample rate and clip length; `assets.extra/` holds warmup
requests made of real WAV bytes.
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf

from tl_keras.audio.clips import decode_wav_bytes
from tl_keras.export import warmup
from tl_keras.export.endpoints import Endpoint, export_classifier
from tl_keras.export.signatures import SERVING_SIGNATURE, WARMUP_FILE

AUDIO_INPUT = "audio_bytes"
WAVEFORM_SIGNATURE = "waveform"
WAVEFORM_INPUT = "waveform"


def export_audio_saved_model(
    model: keras.Model, export_dir: str | os.PathLike, name: str, class_names: Sequence[str], *, sample_rate: int,
    metadata: dict | None = None, top_k: int = 5, version: int | None = None, allow_new_classes: bool = False, target=None,
) -> Path:
    """Exports `model` (waveforms -> its task's outputs) as `<export_dir>/<name>/<version>/`, atomically; returns that folder.

    (Ten parameters: a public entry point; the clip's rate, and the choices every export takes.)
    """
    length = int(model.inputs[0].shape[1])
    card = {
        "modality": "audio", "model_kind": "audio", "input_size": None,
        "audio": {"sample_rate": sample_rate, "clip_samples": length, "clip_seconds": length / sample_rate,
                  "serving_default": "16-bit PCM WAV bytes, any rate and channels: mixed to mono, resampled (windowed sinc), padded "
                                     "with silence or cropped about the loudest part, as in training",
                  "waveform": f"float32 [N, {length}] in [-1, 1] at {sample_rate} Hz"},
    }

    def add_files(extra: Path) -> None:
        write_audio_warmup(extra / WARMUP_FILE, name, sample_rate, length)

    return export_classifier(
        model, export_dir, name, class_names, audio_endpoints(sample_rate, length), metadata=metadata, card=card, top_k=top_k,
        version=version, add_files=add_files, allow_new_classes=allow_new_classes, target=target,
    )


def audio_endpoints(sample_rate: int, length: int) -> list[Endpoint]:
    """`serving_default`: WAV bytes, decoded in the graph; `waveform`: float samples at the model's rate."""

    def from_bytes(audio_bytes):
        audio_bytes = checked_wav_rows(audio_bytes)
        return tf.map_fn(lambda one: decode_wav_bytes(one, sample_rate, length), audio_bytes,
                         fn_output_signature=tf.TensorSpec([length], tf.float32))

    return [
        Endpoint(SERVING_SIGNATURE, [tf.TensorSpec([None], tf.string, name=AUDIO_INPUT)], from_bytes,
                 {AUDIO_INPUT: "string [N] 16-bit PCM WAV file bytes"}),
        Endpoint(WAVEFORM_SIGNATURE, [tf.TensorSpec([None, length], tf.float32, name=WAVEFORM_INPUT)], lambda waves: waves,
                 {WAVEFORM_INPUT: f"float32 [N, {length}] at {sample_rate} Hz in [-1, 1]"}),
    ]


def checked_wav_rows(audio_bytes):
    """`audio_bytes`, once every row starts like a WAV file (RIFF ... WAVE); else the request (not the server) fails, naming the rows."""
    riff = tf.equal(tf.strings.substr(audio_bytes, 0, 4), "RIFF") & tf.equal(tf.strings.substr(audio_bytes, 8, 4), "WAVE")
    bad = tf.reshape(tf.where(tf.logical_not(riff)), [-1])
    check = tf.debugging.Assert(tf.equal(tf.size(bad), 0), ["audio_bytes rows that are not WAV files (no RIFF/WAVE header):", bad],
                                summarize=20)
    with tf.control_dependencies([check]):
        return tf.identity(audio_bytes)


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM mono WAV file bytes of float samples in [-1, 1] (what a client sends, and the warmup requests hold)."""
    pcm = (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    return buffer.getvalue()


def write_audio_warmup(path: Path, model_name: str, sample_rate: int, length: int) -> None:
    """TF Serving's warmup file: a WAV of a tone at the model's rate; a batch adding a quarter second at 44.1 kHz; a waveform."""
    seconds = np.arange(length) / sample_rate
    tone = (0.3 * np.sin(2 * np.pi * 440 * seconds)).astype(np.float32)
    other_rate = 44100
    short = (0.3 * np.sin(2 * np.pi * 220 * np.arange(other_rate // 4) / other_rate)).astype(np.float32)
    clips = [wav_bytes(tone, sample_rate), wav_bytes(short, other_rate)]
    warmup.write_warmup_requests(path, model_name, [
        (SERVING_SIGNATURE, {AUDIO_INPUT: tf.make_tensor_proto(clips[:1], dtype=tf.string)}),
        (SERVING_SIGNATURE, {AUDIO_INPUT: tf.make_tensor_proto(clips, dtype=tf.string)}),
        (WAVEFORM_SIGNATURE, {WAVEFORM_INPUT: tf.make_tensor_proto(tone[None], dtype=tf.float32)}),
    ])
