"""The sound classifier: waveform -> front end -> (SpecAugment) -> normalisation -> backbone -> pooling -> dropout -> head.

Three kinds of backbone, each inside one functional model that takes a
(batch, samples) waveform at 16 kHz:

* the pretrained speech encoder (`speech_embedding`): its own 32-band
  log-mel frames, the 20-layer network applied along the whole clip (one
  96-d vector per 80 ms), mean and max over time;
* any image backbone the vision modality knows (`mobilenet_v2`, a Hub
  handle, ...) over the clip's log-mel image (`frontend.LogMelImage`),
  global average pooling: the documents' adaptation of an image model to
  speech. The image backbone comes from the registry's vision entry
  (its `image_backbone` hook), so this package imports nothing of vision;
* a TF Hub audio module or a local SavedModel of one (`yamnet`, a handle;
  `audio.hub_encoder`): its own front end, one embedding per frame, mean
  and max over time.

The head is the same dropout + Dense pair as every tl_keras classifier's,
so `models.anatomy`, the cached frozen phase and the exports find it.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable

import keras

from tl_keras.io.mirror import local_copy
from tl_keras.audio.frontend import LogMelImage, SpecAugment
from tl_keras.audio.hub_encoder import HubAudioEncoder, WaveformIn, audio_module_call, could_be_audio_module, window_floor_seconds
from tl_keras.audio.speech_embedding import (
    MIN_SAMPLES, SAMPLE_RATE, MeanMaxOverTime, build_encoder, is_speech_embedding_folder, load_speech_embedding,
)
from tl_keras.config.settings import ConfigError

SPEECH_EMBEDDING = "speech_embedding"
# The speech encoder sees 0.775 s windows every 80 ms; a spoken digit centred in 1.2 s of sound scored 0.957 leave-one-speaker-out
# (frozen probe), 1.0 s 0.949, 0.8 s 0.925: the silence on either side is context it was trained with.
SPEECH_FLOOR_SECONDS = 1.2
# Where `--backbone=speech_embedding` looks for the two files before going to TF Hub: this variable, else this folder.
SPEECH_EMBEDDING_ENV = "TL_KERAS_SPEECH_EMBEDDING"
SPEECH_EMBEDDING_HOME = Path.home() / ".keras" / "tl_keras" / "speech_embedding"


@dataclasses.dataclass
class AudioBackbone:
    """A loaded sound backbone: the layers between the waveform and the pooled vector (its clip bounds: `clip_limits`)."""

    name: str
    kind: str  # "speech" (the speech encoder), "image" (an image backbone over log-mel images) or "hub" (an audio module)
    front: keras.layers.Layer  # waveform -> what the normaliser reads (fixed signal processing)
    normaliser: keras.layers.Layer  # declares normalises_input: anatomy's backbone is the layer it feeds
    encoder: keras.layers.Layer  # what phase 2 fine-tunes
    pool: keras.layers.Layer
    preprocessing: str = ""


def speech_embedding_folder() -> str | None:
    """The local folder holding the speech encoder's two files ($TL_KERAS_SPEECH_EMBEDDING, else ~/.keras/tl_keras/...), or None."""
    for candidate in (os.environ.get(SPEECH_EMBEDDING_ENV, ""), str(SPEECH_EMBEDDING_HOME)):
        if candidate and is_speech_embedding_folder(candidate):
            return candidate
    return None


def clip_limits(backbone: str) -> tuple[float, float]:
    """(shortest clip it reads, shortest automatic clip length) for `--backbone`, without loading it."""
    if backbone == SPEECH_EMBEDDING or is_speech_embedding_folder(backbone):
        return MIN_SAMPLES / SAMPLE_RATE, SPEECH_FLOOR_SECONDS
    if could_be_audio_module(backbone):
        return 0.0, window_floor_seconds(backbone)
    return 0.0, 0.0


def load_audio_backbone(
    backbone: str, weights: str | None, *, image_backbone: Callable | None, image_size: int = 0, alpha: float = 0.0,
    floor_db: float = 40.0, pretrained: bool = True,
) -> AudioBackbone:
    """The backbone `--backbone` names for sound; `pretrained=False` gives the same network from random weights (the scratch arm).

    `image_backbone(name, weights, image_size=, alpha=)` -> (layer, side,
    normalising layer) is the vision modality's hook, for image backbones.

    Raises:
        ConfigError: `speech_embedding` asked for offline with no local files, or an image backbone with no vision modality.
    """
    folder = backbone if is_speech_embedding_folder(backbone) else (speech_embedding_folder() if backbone == SPEECH_EMBEDDING else None)
    if folder is not None:
        front, encoder = load_speech_embedding(local_copy(folder))  # TFLite files are read from a local path
        if not pretrained:
            encoder = build_encoder()  # the front end is signal processing, not learned: it stays
        return _speech(SPEECH_EMBEDDING, front, encoder)
    if backbone == SPEECH_EMBEDDING:
        raise ConfigError(
            f"--backbone=speech_embedding: its files were not found in ${SPEECH_EMBEDDING_ENV} or {SPEECH_EMBEDDING_HOME}; put "
            "melspectrogram.tflite and embedding_model.tflite (Google's speech_embedding as two TFLite files) in one of them or pass "
            "their folder as --backbone, or use an image backbone over spectrograms (--backbone=mobilenet_v2)"
        )
    call = audio_module_call(backbone)
    if call is not None:
        if not pretrained:
            raise ConfigError(f"--backbone={backbone!r}: an audio module brings its own trained weights; there is no scratch arm for it")
        encoder = HubAudioEncoder(backbone, call.per_example, call.output, call.width, call.signature, name="hub_audio_encoder")
        return AudioBackbone(backbone, "hub", keras.layers.Identity(name="waveform_front"), WaveformIn(name="waveform_in"), encoder,
                             MeanMaxOverTime(name="mean_max_pool"), preprocessing="waveform")
    if image_backbone is None:
        raise ConfigError(f"--backbone={backbone!r}: image backbones over spectrograms need the vision modality, which is not registered")
    layer, side, normaliser = image_backbone(backbone, weights if pretrained else None, image_size=image_size, alpha=alpha)
    front = LogMelImage(SAMPLE_RATE, side, floor_db, name="log_mel_image")
    pool = keras.layers.GlobalAveragePooling2D(name="pool")
    return AudioBackbone(backbone, "image", front, normaliser, layer, pool, preprocessing=getattr(normaliser, "mode", ""))


def _speech(name: str, front, encoder) -> AudioBackbone:
    return AudioBackbone(name, "speech", front, SpeechScale(name="speech_scale"), encoder, MeanMaxOverTime(name="mean_max_pool"),
                         preprocessing="speech_embedding")


@keras.saving.register_keras_serializable(package="tl_keras")
class SpeechScale(keras.layers.Layer):
    """dB / 10 + 2: the speech encoder's input scaling (what its original pipeline fed it), as the model's normalising layer."""

    normalises_input = True  # models.anatomy: the speech encoder is the layer this one feeds
    mode = "speech_embedding"

    def call(self, decibels):
        return decibels / 10.0 + 2.0


def build_audio_classifier(
    backbone: AudioBackbone, clip_samples: int, units: int, *, activation: str = "softmax", dropout: float = 0.2,
    head_l2: float = 0.0, spec_augment: bool = True, freeze_batch_norm: bool = True, name: str = "audio_classifier",
) -> keras.Model:
    """A model from (batch, clip_samples) float32 waveforms in [-1, 1] at 16 kHz to `units` outputs under `activation`.

    `freeze_batch_norm`: call the backbone with training=False (a pretrained
    one); the scratch arm passes False so its BatchNorm learns.
    """
    if activation == "softmax" and units < 2:
        raise ValueError(f"units={units}: a classifier needs at least two classes")
    waves = keras.Input((clip_samples,), dtype="float32", name="waveform")
    maps = backbone.front(waves)
    if spec_augment and backbone.kind != "hub":  # an audio module makes its own spectrogram: there is no map of ours to mask
        maps = SpecAugment(name="spec_augment")(maps)
    maps = backbone.normaliser(maps)
    features = backbone.encoder(maps, training=False) if freeze_batch_norm else backbone.encoder(maps)
    pooled = backbone.pool(features)
    x = keras.layers.Dropout(dropout, name="dropout")(pooled)
    regularizer = keras.regularizers.L2(head_l2) if head_l2 else None
    outputs = keras.layers.Dense(units, activation=activation, kernel_regularizer=regularizer, name="head", dtype="float32")(x)
    return keras.Model(waves, outputs, name=name)
