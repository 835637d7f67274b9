"""Pretrained BERT-family text encoders: a keras-hub preset, or a local checkpoint folder.

`load_text_encoder` is the text side of the encoder seam: it returns the
encoder as a Keras model from token ids, segment ids and a padding mask to
the sequence of hidden states, the tokenizer that goes with it, and the
pooling the checkpoint was trained with. keras-hub reads both a keras-hub
preset folder and a Hugging Face folder (config plus safetensors, through
its transformers converter), and downloads a named preset when online.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras

from tl_keras.io import storage
from tl_keras.io.mirror import local_copy
from tl_keras.config.settings import ConfigError
from tl_keras.text.tokenizer import TextTokenizer

PRESET_PREFIX = "keras_hub:"
TEXT_POOLINGS = ("auto", "mean", "cls")
# What a checkpoint that names no pooling gets: BERT's classification recipe reads the [CLS] position.
DEFAULT_POOLING = "cls"


@dataclasses.dataclass
class TextEncoder:
    """An encoder, its tokenizer and its facts; the text counterpart of an image `Backbone`."""

    name: str
    model: keras.Model  # {"token_ids", "segment_ids", "padding_mask"} -> (batch, length, hidden)
    tokenizer: TextTokenizer
    pooling: str  # the checkpoint's own: "mean" or "cls"
    max_positions: int


def is_text_backbone(spec: str) -> bool:
    """Whether --backbone names a text encoder: a keras-hub preset, or a folder holding a BERT checkpoint."""
    if spec.startswith(PRESET_PREFIX):
        return True
    return (storage.isdir(spec) and storage.isfile(storage.join(spec, "config.json"))
            and not storage.isfile(storage.join(spec, "saved_model.pb")))


def load_text_encoder(spec: str, sequence_length: int = 128, preprocessor: str = "") -> TextEncoder:
    """The encoder `spec` names, with its tokenizer set to `sequence_length` (capped at the encoder's positions).

    Args:
        spec: `keras_hub:<preset>` (downloaded when online), a local folder
            in keras-hub preset or Hugging Face format, or (with
            `preprocessor`) a TF Hub-format encoder SavedModel.
        preprocessor: the TF Hub-format BERT preprocessing SavedModel that
            goes with a Hub encoder; its tokenizer becomes the run's.

    Raises:
        ConfigError: the preset cannot be downloaded, or the folder is not a
            checkpoint keras-hub can read (`backbone=...` in the message).
    """
    if preprocessor:
        return _hub_encoder(spec, sequence_length, preprocessor)
    import keras_hub

    source = spec[len(PRESET_PREFIX):] if spec.startswith(PRESET_PREFIX) else local_copy(spec)  # keras-hub reads local folders
    try:
        backbone = keras_hub.models.Backbone.from_preset(source)
    except ModuleNotFoundError as error:
        raise ConfigError(f"backbone={spec!r}: reading it needs the Python package {error.name!r}; pip install {error.name}") from None
    except (OSError, ValueError) as error:
        hint = "; a preset name needs internet the first time" if spec.startswith(PRESET_PREFIX) else ""
        raise ConfigError(f"backbone={spec!r}: keras-hub could not load it ({type(error).__name__}: {_first_line(error)}){hint}") from None
    outputs = backbone.output
    sequence = outputs["sequence_output"] if isinstance(outputs, dict) else outputs
    # The encoder without BERT's pooler head: classification here pools the sequence itself, and a pooler
    # left in the graph would get no gradients while fine-tuning.
    model = keras.Model(backbone.input, sequence, name="text_encoder")
    max_positions = int(getattr(backbone, "max_sequence_length", 512) or 512)
    folder = Path(source)
    if folder.is_dir():
        tokenizer = TextTokenizer.from_folder(folder, min(sequence_length, max_positions))
    else:
        tokenizer = _preset_tokenizer(source, min(sequence_length, max_positions))
    return TextEncoder(spec, model, tokenizer, checkpoint_pooling(folder) if folder.is_dir() else DEFAULT_POOLING, max_positions)


def _hub_encoder(spec: str, sequence_length: int, preprocessor: str) -> TextEncoder:
    from tl_keras.text.hub_format import load_hub_encoder, preprocessor_tokenizer

    try:
        model, facts = load_hub_encoder(spec)
        tokenizer = preprocessor_tokenizer(preprocessor)
    except (OSError, ValueError) as error:
        raise ConfigError(f"backbone={spec!r}, text_preprocessor={preprocessor!r}: {_first_line(error)}") from None
    length = min(sequence_length, facts["max_positions"])
    tokenizer = TextTokenizer(tokenizer.vocabulary, tokenizer.lowercase, tokenizer.strip_accents, length)
    return TextEncoder(spec, model, tokenizer, facts["pooling"], facts["max_positions"])


def checkpoint_pooling(folder: Path) -> str:
    """The pooling a sentence-transformers folder declares (`1_Pooling/config.json`); BERT's [CLS] otherwise."""
    config = folder / "1_Pooling" / "config.json"
    if config.is_file():
        values = json.loads(config.read_text())
        if values.get("pooling_mode_mean_tokens"):
            return "mean"
        if values.get("pooling_mode_cls_token"):
            return "cls"
    return DEFAULT_POOLING


def _preset_tokenizer(preset: str, sequence_length: int) -> TextTokenizer:
    import keras_hub

    hub_tokenizer = keras_hub.models.Tokenizer.from_preset(preset)
    lowercase = bool(getattr(hub_tokenizer, "lowercase", True))
    return TextTokenizer(list(hub_tokenizer.get_vocabulary()), lowercase, lowercase, sequence_length)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]
