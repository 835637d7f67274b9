"""The audio modality as the registry sees it: WAV folders and tables, run by `audio.run`; the scripts' sound halves."""

from __future__ import annotations

from tl_keras.audio import scripts
from tl_keras.audio.checks import check_audio_source
from tl_keras.audio.hub_encoder import audio_module_call
from tl_keras.audio.model import SPEECH_EMBEDDING, speech_embedding_folder
from tl_keras.audio.run import run_audio_experiment
from tl_keras.audio.speech_embedding import is_speech_embedding_folder
from tl_keras.config.modalities import Modality, register
from tl_keras.config.recipes import given_settings


def audio_recipe(config) -> str:
    """`--recipe=auto` for sound: the speech encoder where it is at hand (or named), else an image backbone over log-mel images.

    A `--backbone` the user gave is kept either way; the recipe only fills
    what was not given. The choice is logged by the recipe's provenance line.
    """
    if "backbone" in given_settings(config):
        return "audio_image" if _is_image_backbone(config.backbone) else "audio"
    return "audio" if speech_embedding_folder() else "audio_image"


def _is_image_backbone(backbone: str) -> bool:
    """Not the speech encoder and not an audio module (whose recipe is the speech encoder's: a pretrained sound network)."""
    if backbone == SPEECH_EMBEDDING or is_speech_embedding_folder(backbone):
        return False
    return audio_module_call(backbone) is None


AUDIO = register(Modality(
    name="audio", noun="clips", sources=("audio_dir", "audio_file", "audio_tfds"), run=run_audio_experiment,
    validate=check_audio_source, recipe=audio_recipe, hooks=scripts.HOOKS,
))
