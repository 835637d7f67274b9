"""What `RunConfig.validate` asks of a text run: one readable source, a text encoder, sane numbers.

Here rather than in `config/` so that the settings layer does not import the
text encoders: the text modality (`text/modality.py`) registers it as its validation.
"""

from __future__ import annotations


from tl_keras.io import storage
from tl_keras.config.settings import ConfigError
from tl_keras.config.validation import given_flags_among
from tl_keras.text.encoders import PRESET_PREFIX, TEXT_POOLINGS, is_text_backbone


# Settings only an image run reads. Given to a text run (by name, with a value other than the default) they are refused, not
# silently ignored: a user who set --refit=on or --flip believes it happened.
IMAGE_ONLY = (
    "image_dir", "validation_dir", "tfds", "data_check", "image_size", "alpha", "preprocessing", "backbone_cut_layer", "hub_signature",
    "hub_output_key", "cache", "tta", "flip", "rotation_degrees", "zoom", "translation", "contrast", "brightness", "mixup_alpha",
    "cutmix_alpha", "feature_cache_augment_passes", "refit",
)


def check_text_source(config) -> None:
    """What a text run needs: readable sources and a text encoder; image-only settings given to it are refused by name.

    The rules every run shares (splits, batch, epochs, rates, the run folder,
    the name) follow in `config.validation.check_shared`.
    """
    sources = [f for f in ("text_dir", "text_file", "text_tfds") if getattr(config, f)]
    if len(sources) > 1:
        raise ConfigError(f"pass one text source, not {' and '.join('--' + f for f in sources)}")
    if config.records and (config.validation_file or config.test_file):
        raise ConfigError("--records bring their own splits; --validation_file and --test_file go with --text_file or --text_dir")
    if config.text_tfds and (config.validation_file or config.test_file):
        raise ConfigError("--text_tfds brings its own splits; --validation_file and --test_file go with --text_file or --text_dir")
    for flag in [f for f in sources if f != "text_tfds"] + ["validation_file", "test_file"]:
        path = getattr(config, flag)
        if path and not storage.exists(path):
            raise ConfigError(f"--{flag}: not found: {path!r}")
    if config.text_dir and not storage.isdir(config.text_dir):
        raise ConfigError(f"--text_dir: {config.text_dir!r} is not a folder; pass a folder with one sub-folder of .txt files per class")
    if config.text_preprocessor:
        for flag in ("backbone", "text_preprocessor"):
            if not storage.isfile(storage.join(getattr(config, flag), "saved_model.pb")):
                raise ConfigError(f"--{flag}={getattr(config, flag)!r}: not a SavedModel folder (with --text_preprocessor, "
                                  "--backbone is a TF Hub-format encoder and --text_preprocessor its preprocessing model)")
    elif not is_text_backbone(config.backbone):
        raise ConfigError(
            f"--backbone={config.backbone!r} is not a text encoder; pass {PRESET_PREFIX}<preset> "
            f"(e.g. {PRESET_PREFIX}bert_base_en_uncased) or a local checkpoint folder (Hugging Face or keras-hub format)"
        )
    if config.pooling not in TEXT_POOLINGS:
        raise ConfigError(f"--pooling={config.pooling!r}: a text encoder pools with {', '.join(TEXT_POOLINGS)}")
    ignored = given_flags_among(config, IMAGE_ONLY)
    if ignored:
        one = len(ignored) == 1
        raise ConfigError(f"{', '.join(ignored)} {'applies' if one else 'apply'} to image runs; a text run does not read "
                          f"{'it: drop it' if one else 'them: drop them'}")
    if config.compare_scratch and config.text_preprocessor:
        raise ConfigError(
            f"--compare_scratch: --backbone={config.backbone!r} is a TF Hub-format encoder, which loads its own trained weights, so "
            "a 'from scratch' arm would be pretrained too; compare with scratch on a keras-hub or Hugging Face checkpoint"
        )
    if config.init_from:
        raise ConfigError(
            f"--init_from={config.init_from!r}: a text run starts from --backbone; to go on training a text classifier, point "
            "--backbone at the encoder and run again (continuing a text classifier is not supported yet)"
        )
    if config.max_sequence_length and config.max_sequence_length < 8:
        raise ConfigError(f"--max_sequence_length must be 0 (cover 99% of the texts) or at least 8, got {config.max_sequence_length}")
