"""Labelled clips as a run reads them: checked, split, at the model's rate and one clip length, in arrays.

Every clip is read once; the data check (`ClipCheck`) reports by name the
files that are unreadable, silent or too short (left out), and those that
are clipped, multi-channel or at another rate (kept: mixed down and
resampled). The clip length is the 95th percentile of the training clips'
durations unless `--clip_seconds` sets it, and is reported. The split is
stratified by class (or the task's own rule for tags and values), or the
table's own `split` column when it has one (a speaker-independent split, for
instance), and is recorded in split.json with the source's content hash, so
a rerun or `--resume` on edited data is refused by name.

Arrays suit clips: a second of 16 kHz sound is 64 kB, so 3,000 clips are
under 200 MB. Streaming from sharded records is the road for millions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from pathlib import Path

import numpy as np
from absl import logging

from tl_keras.io import storage
from tl_keras.audio import clips as clips_lib
from tl_keras.audio.sources import FoundClips, clips_in_folder, clips_in_table
from tl_keras.config.settings import ConfigError
from tl_keras.data.splits import recorded_split, split_settings, stratified_split
from tl_keras.tasks import SINGLE_LABEL, TargetSpec, spec_for_training, with_scale

MODEL_RATE = 16000
SILENT_PEAK = 1e-4  # below -80 dBFS: nothing was recorded
MIN_SECONDS = 0.05
CLIPPED_SHARE = 0.001  # a clip with 0.1% of its samples at full scale is reported as clipped
MAX_AUTO_SECONDS = 10.0
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class AudioSplits:
    """The clips of each split as (examples, samples) float32 arrays at `sample_rate`, their targets and file paths."""

    waves: dict[str, np.ndarray]
    targets: dict[str, np.ndarray]  # the user's units: class ids, tag rows or values
    paths: dict[str, list[str]]
    target: TargetSpec
    sample_rate: int
    clip_samples: int
    record: dict
    report: dict
    problems: list[str]

    @property
    def class_names(self) -> list[str]:
        return self.target.names

    @property
    def counts(self) -> dict[str, dict[str, int]]:
        return {s: self.target.task.counts(self.targets[s], self.target.names) for s in SPLITS if self.has(s)}

    def has(self, split: str) -> bool:
        return split in self.waves and len(self.waves[split]) > 0


def load_audio_splits(
    source: str, *, table: bool, task: str = "auto", validation_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 42,
    clip_seconds: float = 0.0, min_seconds: float = 0.0, floor_seconds: float = 0.0, max_train_per_class: int = 0,
    split_file: Path | None = None, progress=None,
) -> AudioSplits:
    """Reads, checks and splits the clips of `source` (a class-per-folder tree, or a table when `table`).

    (Twelve parameters: the source and the split's settings, each a flag of its own.) `min_seconds`:
    the shortest clip length a backbone accepts (the speech encoder's window); a shorter `--clip_seconds` is refused.
    `floor_seconds`: the shortest length the automatic choice takes (the backbone's preference).

    Raises:
        ConfigError: a bad source, nothing usable left, a too-short `clip_seconds`, or fewer than two classes.
        SplitMismatchError: `split_file` was made from other data or settings.
    """
    found = clips_in_table(source) if table else clips_in_folder(source)
    flag = "--audio_file" if table else "--audio_dir"
    spec, targets, kept, problems = _targets(found, task if table else SINGLE_LABEL, flag, source, table)
    paths = [found.paths[i] for i in kept]
    assigned = [found.splits[i] for i in kept] if found.splits is not None else None
    waves, infos, kept_reading, check = _read_all(paths, progress)
    problems = found.problems + problems + check["problems"]
    paths = [paths[i] for i in kept_reading]
    targets = targets[kept_reading]
    assigned = [assigned[i] for i in kept_reading] if assigned else None
    for problem in problems[:20]:
        logging.warning("audio data: %s", problem)
    if len(problems) > 20:
        logging.warning("audio data: %d more problems (all in data_report.json)", len(problems) - 20)
    if not paths:
        raise ConfigError(f"{flag}={source}: no usable clip (see the problems above)")
    settings = {**split_settings(f"{flag[2:]}:{source}", seed, validation_fraction, test_fraction, None),
                "source_sha256": _content_hash(source, paths, table)}
    parts = recorded_split(split_file, settings, spec.names if spec.kind != SINGLE_LABEL else _class_names(found), paths)
    if parts is None:
        parts = _parts(spec, targets, assigned, validation_fraction, test_fraction, seed)
        if max_train_per_class and spec.kind == SINGLE_LABEL:
            parts["train"] = _limited(parts["train"], targets, max_train_per_class, seed)
    spec = with_scale(spec, targets[parts["train"]])
    seconds = clip_seconds or _auto_seconds([infos[i].seconds for i in parts["train"]], max(min_seconds, floor_seconds))
    if seconds < min_seconds:
        raise ConfigError(f"--clip_seconds={clip_seconds}: the backbone needs clips of at least {min_seconds:.3f} s")
    length = int(round(seconds * MODEL_RATE))
    arrays = {s: np.stack([clips_lib.prepare(waves[i], infos[i].rate, MODEL_RATE, length) for i in idx]) if len(idx)
              else np.zeros((0, length), np.float32) for s, idx in parts.items()}
    longer = sum(1 for info in infos if info.seconds > seconds)
    check["clip_length"] = {"seconds": seconds, "samples": length, "sample_rate": MODEL_RATE,
                            "chosen": "--clip_seconds" if clip_seconds else "95th percentile of the training clips",
                            "cropped": longer, "padded": len(infos) - longer}
    logging.info("audio: %d clips at %d Hz, %.2f s each (%s): %d cropped about their loudest part, %d padded with silence",
                 len(paths), MODEL_RATE, seconds, check["clip_length"]["chosen"], longer, len(infos) - longer)
    record = {**settings, "class_names": spec.names, **{s: [paths[i] for i in idx] for s, idx in parts.items()},
              "task": {k: v for k, v in spec.to_dict().items() if k != "thresholds"}, "clip_samples": length,
              "sample_rate": MODEL_RATE}
    return AudioSplits(
        waves=arrays, targets={s: targets[idx] for s, idx in parts.items()}, paths={s: [paths[i] for i in idx] for s, idx in parts.items()},
        target=spec, sample_rate=MODEL_RATE, clip_samples=length, record=record, report=check, problems=problems,
    )


def _targets(found: FoundClips, task: str, flag: str, source: str, table: bool):
    """(spec, targets, positions kept, problems) for the labels as written; class names sorted for one label per clip."""
    try:
        spec, targets, kept, problems = spec_for_training(found.labels, found.where, task)
    except ValueError as error:
        raise ConfigError(f"{flag}={source}: {error}") from None
    if spec.kind == SINGLE_LABEL:
        names = sorted(set(found.labels))
        if len(names) < 2:
            raise ConfigError(f"{flag}={source}: one class ({names[0]!r}); a classifier needs two or more")
        spec = TargetSpec(SINGLE_LABEL, names, decided="" if not table else spec.decided)
        targets, kept, problems = spec.encode(found.labels, found.where)
    return spec, targets, kept, problems


def _class_names(found: FoundClips) -> list[str]:
    return sorted(set(found.labels))


def _read_all(paths: list[str], progress):
    """Each clip read once: (samples, infos) of the usable ones, their positions in `paths`, and the data check's report."""
    waves, infos, kept, problems = [], [], [], []
    notes = {"clipped": [], "multi_channel": [], "resampled_from": {}}
    for i, path in enumerate(paths):
        if progress is not None:
            progress(i + 1, len(paths))
        try:
            samples, info = clips_lib.read_wav(path)
        except ValueError as error:
            problems.append(f"{path}: {error}; skipped")
            continue
        if info.seconds < MIN_SECONDS:
            problems.append(f"{path}: {info.seconds * 1000:.0f} ms long, too short to hold a sound; skipped")
            continue
        if info.peak < SILENT_PEAK:
            problems.append(f"{path}: silent (peak {info.peak:.1e}); skipped")
            continue
        if info.clipped_share >= CLIPPED_SHARE:
            notes["clipped"].append(path)
        if info.channels > 1:
            notes["multi_channel"].append(path)
        if info.rate != MODEL_RATE:
            notes["resampled_from"][str(info.rate)] = notes["resampled_from"].get(str(info.rate), 0) + 1
        waves.append(samples)
        infos.append(info)
        kept.append(i)
    for key, words in (("clipped", "clipped (samples at full scale), kept"), ("multi_channel", "several channels, mixed to mono")):
        if notes[key]:
            logging.info("audio data: %d clips %s, e.g. %s", len(notes[key]), words, notes[key][0])
    for rate, count in notes["resampled_from"].items():
        logging.info("audio data: %d clips at %s Hz, resampled to %d Hz", count, rate, MODEL_RATE)
    durations = [info.seconds for info in infos]
    report = {"files_checked": len(paths), "files_usable": len(kept), "problems": problems, **notes,
              "seconds": {"min": min(durations, default=0.0), "median": float(np.median(durations)) if durations else 0.0,
                          "max": max(durations, default=0.0)}}
    return waves, infos, kept, report


def _auto_seconds(durations: list[float], min_seconds: float) -> float:
    """The 95th percentile of the training clips' durations, rounded up to 10 ms, within [min_seconds, 10 s]."""
    p95 = float(np.percentile(durations, 95)) if durations else 1.0
    return max(min_seconds, min(MAX_AUTO_SECONDS, math.ceil(p95 * 100) / 100))


def _parts(spec: TargetSpec, targets, assigned, validation_fraction, test_fraction, seed) -> dict[str, np.ndarray]:
    """The split: the table's own split column where it has one (clips whose cell is empty split by the fractions), else the task's
    rule."""
    if assigned and any(assigned):
        unknown = sorted({a for a in assigned if a and a not in SPLITS})
        if unknown:
            raise ConfigError(f"--audio_file: split column values {unknown} are not train, validation or test (or empty)")
        parts = {s: [i for i, a in enumerate(assigned) if a == s] for s in SPLITS}
        open_rows = np.array([i for i, a in enumerate(assigned) if not a], np.int64)
        if len(open_rows):  # the named splits stand; the fractions divide the rest (no test share if test clips are named)
            rest = _task_split(spec, np.asarray(targets)[open_rows], validation_fraction, 0.0 if parts["test"] else test_fraction, seed)
            for split in SPLITS:
                parts[split] += open_rows[rest[split]].tolist()
        parts = {s: np.sort(np.array(v, np.int64)) for s, v in parts.items()}
        if not len(parts["validation"]):
            raise ConfigError("--audio_file: its split column names no validation clip and leaves none to split (best epochs and "
                              "phases are chosen on validation)")
        return parts
    return _task_split(spec, targets, validation_fraction, test_fraction, seed)


def _task_split(spec: TargetSpec, targets, validation_fraction: float, test_fraction: float, seed: int) -> dict[str, np.ndarray]:
    if spec.kind == SINGLE_LABEL:
        return stratified_split(np.asarray(targets), validation_fraction, test_fraction, seed)
    return spec.task.split(targets, validation_fraction, test_fraction, seed)


def _limited(train: np.ndarray, targets: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """At most `per_class` training clips of each class (seeded): the label budgets of the benchmarks and of users who test one."""
    rng = np.random.default_rng(seed)
    kept = [rng.permutation(train[targets[train] == c])[:per_class] for c in np.unique(targets[train])]
    return np.sort(np.concatenate(kept))


def _content_hash(source: str, paths: list[str], table: bool) -> str:
    """What the split stands for: the table's bytes, or each clip's path, size and modification time for a folder."""
    digest = hashlib.sha256()
    if table:
        digest.update(storage.read_bytes(source))
    for path in paths:
        size, mtime_ns = storage.size_and_mtime(path)
        digest.update(f"{path}\0{size}\0{mtime_ns // 10**9}\n".encode())
    return digest.hexdigest()

