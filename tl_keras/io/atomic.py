"""The one crash-safe way to write a file that a resume, a rerun or a server reads.

Every such file is written beside its final name as `<stem>.partial.<ext>`,
flushed to disk, and renamed into place with `os.replace`, which is atomic
on one file system: a reader sees the old file or the new one, never half
of either. A process killed mid-write leaves only the partial file, under a
fixed name, so the next write of the same file replaces it instead of
leaving one more behind (weights and resume states are megabytes). Only
one process writes a run folder (the chief), so the name needs no process
id. Standard library only, so the lowest layers can use it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable


def partial_path(path: str | os.PathLike) -> Path:
    """Where the half-written version of `path` lives until it is complete.

    The file's own extensions stay last, because Keras and NumPy pick the
    format from them (`frozen.weights.h5` -> `frozen.partial.weights.h5`).
    """
    path = Path(path)
    stem, dot, suffix = path.name.partition(".")
    return path.with_name(f"{stem}.partial{dot}{suffix}")


def write_with(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Calls `write(partial)` and renames the partial file to `path` once `write` returns.

    For writers that insist on a file name of their own (`save_weights`,
    NumPy, Pillow). If `write` raises, the partial file is removed and
    `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        write(partial)
        _flush_to_disk(partial)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    _flush_to_disk(path.parent)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes `text` (UTF-8) to `path` atomically."""
    return write_with(path, lambda partial: partial.write_text(text, encoding="utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to `path` atomically."""
    return write_with(path, lambda partial: partial.write_bytes(data))


def write_json(path: str | os.PathLike, payload: Any, indent: int = 2) -> Path:
    """Writes `payload` as JSON atomically; values JSON cannot hold are written as their `str`."""
    return write_text(path, json.dumps(payload, indent=indent, default=str))


def _flush_to_disk(path: Path) -> None:
    """fsync a file (its bytes) or a folder (the rename), so a power cut cannot undo a finished write."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return  # some platforms cannot open a folder; the rename is still atomic
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
