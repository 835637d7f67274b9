"""The text modality as the registry sees it: text files, folders and TFDS text sets, run by `text.run`."""

from __future__ import annotations

from tl_keras.config.modalities import Modality, register
from tl_keras.text import scripts
from tl_keras.text.checks import check_text_source
from tl_keras.text.run import run_text_experiment

TEXT = register(Modality(
    name="text", noun="texts", sources=("text_dir", "text_file", "text_tfds"), run=run_text_experiment, validate=check_text_source,
    recipe=lambda config: "text", hooks=scripts.HOOKS,
))
