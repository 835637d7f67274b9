"""What `RunConfig.validate` asks of a sound run: one readable source, a backbone it can load, settings it reads.

The audio modality registers this as its validation (`audio/modality.py`);
the rules every run shares follow in `config.validation.check_shared`.
"""

from __future__ import annotations


from tl_keras.io import storage
from tl_keras.audio.hub_encoder import KNOWN_MODULES
from tl_keras.audio.model import SPEECH_EMBEDDING, SPEECH_EMBEDDING_ENV, SPEECH_EMBEDDING_HOME, speech_embedding_folder
from tl_keras.config.settings import ConfigError, backbone_source
from tl_keras.config.validation import given_flags_among

# Settings an image run reads and a sound run does not: given (with a value other than the default) they are refused by name.
NOT_FOR_SOUND = (
    "validation_dir", "tfds", "labels_file", "data_check", "preprocessing", "backbone_cut_layer", "cache", "tta", "flip",
    "rotation_degrees", "zoom", "translation", "contrast", "brightness", "mixup_alpha", "cutmix_alpha", "feature_cache_augment_passes",
    "init_from", "text_preprocessor", "validation_file", "test_file", "text_column", "label_column", "max_sequence_length",
)


def check_audio_source(config) -> None:
    """One source that exists, sane sound settings, and no image- or text-only setting given to a sound run."""
    sources = [f for f in ("audio_dir", "audio_file", "audio_tfds") if getattr(config, f)]
    if len(sources) > 1:
        raise ConfigError(f"pass one sound source, not {' and '.join('--' + f for f in sources)}")
    if config.audio_dir and not storage.isdir(config.audio_dir):
        raise ConfigError(f"--audio_dir: folder not found: {config.audio_dir!r}; pass a folder with one sub-folder of WAV clips per class")
    if config.audio_file and not storage.isfile(config.audio_file):
        raise ConfigError(f"--audio_file: file not found: {config.audio_file!r}")
    if config.clip_seconds < 0 or config.clip_seconds > 60:
        raise ConfigError(f"--clip_seconds must be 0 (from the data) or up to 60, got {config.clip_seconds}")
    if not 10.0 <= config.mel_floor_db <= 120.0:
        raise ConfigError(f"--mel_floor_db must be between 10 and 120 dB, got {config.mel_floor_db}")
    if config.noise_snr_db < 0 or config.noise_snr_db >= 30:
        raise ConfigError(f"--noise_snr_db must be 0 (off) or below 30 dB, got {config.noise_snr_db}")
    if config.task == "multi_label" and config.audio_dir:
        raise ConfigError("--task=multi_label: class folders give one class per clip; list the tags of each clip in --audio_file")
    ignored = given_flags_among(config, NOT_FOR_SOUND)
    if ignored:
        one = len(ignored) == 1
        raise ConfigError(f"{', '.join(ignored)} {'does' if one else 'do'} not apply to sound runs; drop "
                          f"{'it' if one else 'them'}")
    if config.backbone == SPEECH_EMBEDDING and speech_embedding_folder() is None:
        raise ConfigError(f"--backbone=speech_embedding: its files were not found in ${SPEECH_EMBEDDING_ENV} or {SPEECH_EMBEDDING_HOME}; "
                          "pass the folder holding melspectrogram.tflite and embedding_model.tflite as --backbone, or use an image "
                          "backbone over spectrograms (--backbone=mobilenet_v2)")
    if config.compare_scratch and (backbone_source(config.backbone) != "name" or config.backbone in KNOWN_MODULES):
        raise ConfigError(f"--compare_scratch: --backbone={config.backbone!r} loads its own trained weights, so a 'from scratch' arm "
                          "would be pretrained too; compare with scratch on mobilenet_v2 or the speech encoder, or drop the flag")
    if config.pooling not in ("avg", "auto"):
        raise ConfigError(f"--pooling={config.pooling!r}: sound backbones pool their own way (mean and max over time, or average)")
