"""One training run from a `RunConfig`, whatever its examples are: the registry names the modality, which runs it.

The modality (`tl_keras.config.modalities`) is the one the config's data
source belongs to, or the one `--modality` names; each registered its own
run (`vision.run`, `text.run`, `audio.run`). Every run writes the same run
folder (`config.json`, `split.json`, `history.json`, `summary.json`,
checkpoints, `model.keras`) so any step can be inspected or repeated.
"""

from __future__ import annotations

from tl_keras.config.modalities import modality_for
from tl_keras.config.run_config import RunConfig


def run_experiment(config: RunConfig) -> dict:
    """Trains, evaluates and exports per `config` through its modality; returns the run summary (also `<run_dir>/summary.json`)."""
    return modality_for(config).run(config)
