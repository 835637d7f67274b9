"""`RunFolder`: the one place that knows where a run keeps each file.

A run folder holds everything a run decided or measured, so any step can
be repeated alone and an interrupted run resumed:

    config.json, flags.txt     the resolved settings (flags.txt reruns them: --flagfile)
    split.json                 which file went to which split, keyed to the settings that made it
    data_report.json           what the data check skipped or converted, and why
    checkpoints/               best weights of each phase; resume_state.npz after every epoch
    cache/, feature_cache/     decoded images and backbone features (rebuilt if missing)
    history.json, curves.png   both phases and the kept one
    lr_find.json               the rates an LR range test chose (reused on resume)
    evaluation/                metrics.json, report.html and the pictures
    model.keras                the trained classifier
    scratch/                   the --compare_scratch arm, itself a run folder
    summary.json               written last: its presence marks the run finished

Scripts and library code ask this class for paths instead of joining
strings, so the layout can change in one place. Standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

RESUME_STATE = "checkpoints/resume_state.npz"


class _File:
    """A path inside the run folder, declared once: `config = _File("config.json")` reads as `folder.config`."""

    def __init__(self, relative: str):
        self.relative = relative

    def __get__(self, folder: "RunFolder", owner=None) -> Path:
        return self if folder is None else folder.root / self.relative


@dataclasses.dataclass(frozen=True)
class RunFolder:
    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    def __fspath__(self) -> str:
        return str(self.root)

    # Settings and data.
    config = _File("config.json")
    flags = _File("flags.txt")
    split = _File("split.json")
    data_report = _File("data_report.json")
    # Training.
    checkpoints = _File("checkpoints")
    resume_state = _File(RESUME_STATE)
    feature_cache = _File("feature_cache")
    history = _File("history.json")
    curves = _File("curves.png")
    lr_find = _File("lr_find.json")
    pretrained = _File("pretrained")
    tensorboard = _File("tensorboard")
    # Results.
    evaluation = _File("evaluation")
    model = _File("model.keras")
    summary = _File("summary.json")

    def checkpoint(self, name: str) -> Path:
        """Best-epoch weights of phase (or head) `name`."""
        return self.checkpoints / f"{name}.weights.h5"

    def image_cache(self, split: str, image_size: int, fingerprint: str) -> Path:
        """Decoded images of one split at one size, for one set of settings (another run's cache is never reused)."""
        return self.root / "cache" / f"{split}_{image_size}px_{fingerprint}"

    @property
    def scratch(self) -> "RunFolder":
        """The --compare_scratch arm, itself a run folder."""
        return RunFolder(self.root / "scratch")

    # Questions about the run.
    def is_run(self) -> bool:
        """Whether this folder holds a run of ours (its config was recorded)."""
        return self.config.is_file()

    def is_finished(self) -> bool:
        return self.summary.is_file()

    def is_interrupted(self) -> bool:
        """Epochs were recorded but the run never wrote its summary: `--resume` continues it."""
        return self.resume_state.is_file() and not self.is_finished()

    def read_config(self) -> dict:
        """config.json as a mapping (`RunConfig.from_dict` makes it a config again)."""
        return json.loads(self.config.read_text())

    def read_summary(self) -> dict:
        if not self.is_finished():
            raise ValueError(f"{self.root} has no summary.json: the run did not finish (resume it with --resume)")
        return json.loads(self.summary.read_text())

    def class_names(self) -> list[str] | None:
        """The classes the run's model predicts, in output order: from summary.json, else split.json; None if neither says."""
        for path, key in ((self.summary, "classes"), (self.split, "class_names")):
            if path.is_file():
                try:
                    names = json.loads(path.read_text()).get(key)
                except (OSError, ValueError):
                    continue
                if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
                    return names
        return None
