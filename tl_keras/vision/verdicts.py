"""The data check's verdict on each image, remembered across runs, keyed by path, size and modification time.

The check decodes every image (twice: Pillow and TensorFlow) and hashes it,
which at a million images is hours before training starts, and a rerun or
`--resume` on the same folder would pay it again for files it has already
judged. So each verdict goes into one SQLite file per user
(`$TL_KERAS_CACHE/data_checks.sqlite`, default `~/.cache/tl_keras`), and a
file whose path, size and modification time are unchanged is not opened
again. An edited file changes its size or time and is checked anew; a new
version of the checker (`CHECKER_VERSION`) judges everything again.
`TL_KERAS_CACHE=off` turns the store off.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import threading
from pathlib import Path

CHECKER_VERSION = 1  # raise when the check's rules or what a verdict records change


def cache_root() -> Path | None:
    """Where tl_keras keeps what it may rebuild; None when $TL_KERAS_CACHE is 'off'."""
    value = os.environ.get("TL_KERAS_CACHE", "")
    if value.lower() == "off":
        return None
    return Path(value) if value else Path.home() / ".cache" / "tl_keras"


class Verdicts:
    """A thread-safe SQLite table of (path, size, mtime) -> the check's verdict (a `FileCheck` as a dict, label aside)."""

    def __init__(self, path: str | os.PathLike):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=60)
        with self._lock, self._db:
            self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (path TEXT PRIMARY KEY, size INTEGER, mtime INTEGER, "
                             "version INTEGER, verdict TEXT)")

    def get(self, path: str, size: int, mtime: int) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT size, mtime, version, verdict FROM verdicts WHERE path = ?", (path,)).fetchone()
        if row is None or (row[0], row[1], row[2]) != (size, mtime, CHECKER_VERSION):
            return None
        return json.loads(row[3])

    def put(self, path: str, size: int, mtime: int, verdict) -> None:
        record = dataclasses.asdict(verdict) if dataclasses.is_dataclass(verdict) else dict(verdict)
        record.pop("label", None)  # the label belongs to the run's labels, not to the file
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)",
                             (path, size, mtime, CHECKER_VERSION, json.dumps(record)))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_verdicts() -> Verdicts | None:
    """The user's verdict store, or None when turned off or not writable (the check then simply runs)."""
    root = cache_root()
    if root is None:
        return None
    try:
        return Verdicts(root / "data_checks.sqlite")
    except (OSError, sqlite3.Error):
        return None
