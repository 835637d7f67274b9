"""A run folder on an object store, worked on through a local copy that is pushed after every saved state.

A run folder is a working folder: feature caches are memory-mapped `.npy`
files, checkpoints are rewritten every epoch, and a dozen writers (Keras,
NumPy, Matplotlib, our own JSON) expect a local path. So a run whose
`--run_dir` is `gs://...` works in a local copy (under
`$TL_KERAS_MIRRORS`, default `~/.cache/tl_keras/run_mirrors`), pulls the
remote folder into it first (what `--resume` on another machine needs),
and pushes every file that changed after each resume state is written and
when the run ends. A preempted worker loses no more than the steps since
the last saved state, as on a local disk. The decoded-image and feature
caches stay local: they are rebuilt where missing. Several workers of one
run each work in their own copy; only the chief writes into it (the others
write to a scratch folder, `training.distribute`), so only the chief's
changes reach the store.

`local_copy` is the read-only half: a backbone file, an encoder folder or
a finished run folder on a store, fetched once into a local cache for the
libraries that read only local files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterator

from absl import logging

from tl_keras.io import storage

LOCAL_ONLY = ("cache", "feature_cache")  # rebuilt where missing; too large to ship every epoch
MIRROR_RECORD = "mirror.json"
_ACTIVE: dict[str, "RunMirror"] = {}  # local root -> its mirror, for `push_if_mirrored`


def mirrors_root() -> Path:
    return Path(os.environ.get("TL_KERAS_MIRRORS", Path.home() / ".cache" / "tl_keras" / "run_mirrors"))


def _local_name(remote: str) -> str:
    return hashlib.sha256(remote.rstrip("/").encode()).hexdigest()[:16]


class RunMirror:
    """The local working copy of the remote run folder `remote`."""

    def __init__(self, remote: str):
        self.remote = remote.rstrip("/")
        self.local = mirrors_root() / _local_name(self.remote)
        self._pushed: dict[str, tuple[int, int]] = {}

    def pull(self) -> None:
        """The local copy made equal to the remote folder (the caches excepted); an empty copy where there is none yet."""
        if self.local.exists():
            for entry in self.local.iterdir():
                if entry.name not in LOCAL_ONLY:
                    shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        self.local.mkdir(parents=True, exist_ok=True)
        if storage.isdir(self.remote):
            for path in storage.files_under(self.remote):
                parts = storage.relative_parts(path, self.remote)
                if parts[0] not in LOCAL_ONLY:
                    storage.copy_file(path, self.local.joinpath(*parts))
        self._pushed = {str(path): self._stamp(path) for path in self._files()}
        storage.makedirs(self.remote)
        (self.local / MIRROR_RECORD).write_text(json.dumps({"remote": self.remote, "local": str(self.local)}, indent=1) + "\n")

    def push(self) -> int:
        """Every file written or changed since the last push, copied up (summary.json, the run's finished mark, last);
        files removed locally are removed remotely. Returns how many files were copied."""
        files = {str(path): self._stamp(path) for path in self._files()}
        changed = [path for path, stamp in files.items() if self._pushed.get(path) != stamp]
        changed.sort(key=lambda path: Path(path).name == "summary.json")
        for path in changed:
            storage.copy_file(path, storage.join(self.remote, *Path(path).relative_to(self.local).parts))
        for path in set(self._pushed) - set(files):
            storage.remove_tree(storage.join(self.remote, *Path(path).relative_to(self.local).parts))
        self._pushed = files
        return len(changed)

    def _files(self) -> Iterator[Path]:
        for path in sorted(self.local.rglob("*")):
            relative = path.relative_to(self.local)
            if (path.is_file() and relative.parts[0] not in LOCAL_ONLY and ".partial" not in path.name
                    and relative.parts != (MIRROR_RECORD,)):  # which machine's copy this is stays on that machine
                yield path

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        stat = path.stat()
        return int(stat.st_size), int(stat.st_mtime_ns)


@contextlib.contextmanager
def mirrored(run_dir: str) -> Iterator[str]:
    """The local folder a run with `run_dir` works in: `run_dir` itself when local; a pulled mirror of it when remote,
    pushed after every resume state (`push_if_mirrored`) and on the way out, even when the run fails."""
    if not storage.is_remote(run_dir):
        yield run_dir
        return
    mirror = RunMirror(run_dir)
    mirror.pull()
    logging.info("run folder %s: working in its local copy %s, pushed after every saved state", run_dir, mirror.local)
    _ACTIVE[str(mirror.local)] = mirror
    try:
        yield str(mirror.local)
    finally:
        _ACTIVE.pop(str(mirror.local), None)
        mirror.push()


def as_remote(value, local_root: str, remote: str):
    """`value` (a summary: dicts, lists, strings) with every path inside the local copy written as the remote path."""
    if isinstance(value, dict):
        return {key: as_remote(item, local_root, remote) for key, item in value.items()}
    if isinstance(value, list):
        return [as_remote(item, local_root, remote) for item in value]
    if isinstance(value, str) and (value == local_root or value.startswith(local_root + os.sep)):
        return storage.join(remote, *Path(value).relative_to(local_root).parts)
    return value


def push_if_mirrored(path: str | os.PathLike) -> None:
    """Pushes the run folder holding `path` when it is a mirror (called after each resume state is written)."""
    resolved = Path(path).resolve()
    for root, mirror in list(_ACTIVE.items()):
        if resolved == Path(root).resolve() or Path(root).resolve() in resolved.parents:
            mirror.push()


@contextlib.contextmanager
def working_copy(path: str) -> Iterator[str]:
    """What a script reads (and may write into) as a local path: `path` itself when local; for a run folder on a store,
    its mirror, pushed back when the script ends (an evaluation or TFLite folder written into the run lands on the
    store); for any other remote file or folder (an export, a .keras file), a fresh local copy."""
    if not storage.is_remote(path):
        yield path
    elif storage.isfile(storage.join(path, "config.json")):
        with mirrored(path) as local:
            yield local
    else:
        yield local_copy(path, refresh=True)


def local_copy(path: str, refresh: bool = False) -> str:
    """`path` itself when local; else a local copy of the remote file or folder, fetched into `<mirrors_root>/fetched/`
    once per path (a file again when its size or time changed; a folder again with `refresh`, as a run folder that
    may have moved on since)."""
    if not storage.is_remote(path) or not storage.exists(path):
        return path  # a missing path is left to its reader, whose error names it
    path = path.rstrip("/")
    stamp = storage.size_and_mtime(path) if storage.isfile(path) else (0, 0)
    target = mirrors_root() / "fetched" / hashlib.sha256(f"{path}|{stamp}".encode()).hexdigest()[:16] / storage.name_of(path)
    done = target.parent / ".complete"
    if refresh or not done.exists():
        if target.parent.exists():
            shutil.rmtree(target.parent)
        storage.fetch_tree(path, target)
        done.write_text(path + "\n")
    return str(target)
