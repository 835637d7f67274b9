"""One training run from a `RunConfig`, whatever its examples are: the registry names the modality, which runs it.

The modality (`tl_keras.config.modalities`) is the one the config's data
source belongs to, or the one `--modality` names; each registered its own
run (`vision.run`, `text.run`, `audio.run`). Every run writes the same run
folder (`config.json`, `split.json`, `history.json`, `summary.json`,
checkpoints, `model.keras`) so any step can be inspected or repeated,
on the local disk or, through a local copy, on an object store.
"""

from __future__ import annotations

import dataclasses

from tl_keras.config.modalities import modality_for
from tl_keras.config.run_config import RunConfig
from tl_keras.io import atomic, storage
from tl_keras.io.mirror import as_remote, mirrored
from tl_keras.io.run_folder import RunFolder


def run_experiment(config: RunConfig) -> dict:
    """Trains, evaluates and exports per `config` through its modality; returns the run summary (also `<run_dir>/summary.json`).

    A `run_dir` on an object store is worked on through a local copy pushed after every saved state (`io.mirror`).
    """
    modality = modality_for(config)
    if not storage.is_remote(config.run_dir):
        return modality.run(config)
    with mirrored(config.run_dir) as run_dir:
        summary = as_remote(modality.run(dataclasses.replace(config, run_dir=run_dir)), run_dir, config.run_dir)
        atomic.write_json(RunFolder(run_dir).summary, summary)  # its paths name the store, not this machine's copy
        return summary
