"""Where labelled clips come from: a folder of class sub-folders of WAV files, or a table of clip paths and labels.

Each source gives the clip paths, their labels as written and where each
label was found (a folder, or a file and line), so a problem can be named
by place. Other audio formats are reported by name instead of being passed
over in silence: the model reads WAV (the serving signature decodes 16-bit
PCM WAV), and converting is the user's one-line fix.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tl_keras.io import storage
from tl_keras.config.settings import ConfigError
from tl_keras.data.labelled_table import read_labelled_table

WAV_EXTENSIONS = (".wav", ".wave")
OTHER_AUDIO = (".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus", ".aiff", ".aif", ".wma", ".webm")
PATH_COLUMNS = ("path", "file", "filename", "clip", "audio", "wav", "file_name")
LABEL_COLUMNS = ("label", "labels", "tags", "class", "value", "target", "score", "category")


@dataclasses.dataclass
class FoundClips:
    """Clip paths in a stable order, each clip's label as written and where it is said, and what was left out and why; for a
    table with a `split` column, each clip's cell (lowercased; "" leaves it to the fractions), else None."""

    paths: list[str]
    labels: list[str]
    where: list[str]
    problems: list[str]
    splits: list[str] | None = None


def clips_in_folder(folder: str | Path) -> FoundClips:
    """The WAV files under each class sub-folder of `folder` (the sub-folder's name is the label), sorted by path.

    Raises:
        ConfigError: not a folder, or no class sub-folder holds a WAV file.
    """
    root = storage.normal(folder)
    if not storage.isdir(root):
        raise ConfigError(f"--audio_dir={folder}: folder not found; pass a folder with one sub-folder of WAV clips per class")
    found = FoundClips([], [], [], [])
    for name in storage.listdir(root):
        class_dir = storage.join(root, name)
        if name.startswith(".") or not storage.isdir(class_dir):
            continue
        files = sorted((p for p in storage.files_under(class_dir) if not storage.name_of(p).startswith(".")),
                       key=lambda p: storage.relative_parts(p, class_dir))
        other = [p for p in files if storage.suffix_of(p).lower() in OTHER_AUDIO]
        if other:
            found.problems.append(f"{class_dir}: {len(other)} clips in another format than WAV are not used, e.g. "
                                  f"{storage.name_of(other[0])} (convert them, e.g. ffmpeg -i clip.mp3 -ar 16000 -ac 1 clip.wav)")
        for path in (p for p in files if storage.suffix_of(p).lower() in WAV_EXTENSIONS):
            found.paths.append(path)
            found.labels.append(name)
            found.where.append(class_dir)
    if not found.paths:
        raise ConfigError(f"--audio_dir={folder}: no WAV clip in any class sub-folder (expected {root}/<class>/<clip>.wav)")
    return found


def clips_in_table(table: str | Path) -> FoundClips:
    """The rows of a CSV or TSV whose header names a clip path column and a label column; paths are relative to the table.

    The label cell holds one class, tags joined by `|` or `;`, or a number
    (the task decides which, `tasks.targets`). Rows with another number of
    cells than the header, no file or an empty label are reported by line.

    Raises:
        ConfigError: no such file, a header without both columns, or no usable row.
    """
    table = storage.normal(table)
    if not storage.isfile(table):
        raise ConfigError(f"--audio_file={table}: file not found")
    delimiter = "\t" if storage.suffix_of(table).lower() in (".tsv", ".tab") else ","
    read = read_labelled_table(table, "--audio_file", PATH_COLUMNS, LABEL_COLUMNS, file_noun="clip", example="path,label",
                               delimiter=delimiter, split_column="split")
    found = FoundClips([], [], [], [], [] if read.has_split else None)
    seen: set[str] = set()
    for row in read.rows:
        where, name, label = row.where, row.file, row.label
        absolute = storage.is_remote(name) or Path(name).is_absolute()
        path = storage.normal(name) if absolute else storage.join(storage.parent_of(table), name) if name else ""
        if row.problem:
            found.problems.append(row.problem)
        elif path in seen:
            found.problems.append(f"{where}: {name} is labelled twice; this row skipped")
        elif not path or not storage.isfile(path):
            found.problems.append(f"{where}: no clip {path}; skipped")
        elif storage.suffix_of(path).lower() not in WAV_EXTENSIONS:
            found.problems.append(f"{where}: {storage.name_of(path)} is not a WAV file; skipped (convert it to WAV)")
        elif not label:
            found.problems.append(f"{where}: empty label; skipped")
        else:
            seen.add(path)
            found.paths.append(path)
            found.labels.append(label)
            found.where.append(where)
            if found.splits is not None:
                found.splits.append(row.split)
    if not found.paths:
        raise ConfigError(f"--audio_file={table}: no row names a WAV clip that exists")
    return found
