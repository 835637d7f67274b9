"""Paths on any filesystem TensorFlow reads: a local folder, `gs://`, `s3://`, `hdfs://`, or `ram://` in tests.

`pathlib` collapses `gs://bucket` into `gs:/bucket` and `open()` knows only
the local disk, so every place a user's path goes (data, backbone files,
the run folder, the export) asks this module instead. Local paths keep
the standard library's behaviour (symlinks, permissions, error messages);
any path with a scheme goes through `tf.io.gfile`. Paths stay strings:
`name_of` and `suffix_of` read a remote name without mangling it.

On an object store a folder is a key prefix: renaming one is a copy of
every object (`ram://` renames only the prefix itself), so `publish_tree`
copies a finished local folder into place with the files a reader waits
for written last, instead of relying on a rename being atomic.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
from pathlib import Path
from typing import Iterable, Iterator, Sequence

LOCAL_SCHEME = "file://"


def is_remote(path: str | os.PathLike) -> bool:
    """True for a path with a scheme other than file:// (gs://, s3://, hdfs://, ram://)."""
    text = str(path)
    return "://" in text and not text.startswith(LOCAL_SCHEME)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def local(path: str | os.PathLike) -> Path:
    """A local path as a Path (file:// stripped); remote paths are refused, since a Path would mangle them."""
    text = str(path)
    if is_remote(text):
        raise ValueError(f"{text!r} is not on the local filesystem")
    return Path(text[len(LOCAL_SCHEME):] if text.startswith(LOCAL_SCHEME) else text)


def normal(path: str | os.PathLike) -> str:
    """A path as a string in one spelling: a local one as pathlib writes it (no trailing or doubled '/'), a remote one
    without a trailing '/'."""
    return str(path).rstrip("/") if is_remote(path) else str(local(path))


def join(base: str | os.PathLike, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(str(base).rstrip("/"), *parts)
    return str(local(base).joinpath(*parts))


def name_of(path: str | os.PathLike) -> str:
    return posixpath.basename(str(path).rstrip("/"))


def suffix_of(path: str | os.PathLike) -> str:
    return posixpath.splitext(name_of(path))[1]


def parent_of(path: str | os.PathLike) -> str:
    if is_remote(path):
        return posixpath.dirname(str(path).rstrip("/"))
    return str(local(path).parent)


def exists(path: str | os.PathLike) -> bool:
    return _gfile().exists(str(path)) if is_remote(path) else local(path).exists()


def isdir(path: str | os.PathLike) -> bool:
    return _gfile().isdir(str(path)) if is_remote(path) else local(path).is_dir()


def isfile(path: str | os.PathLike) -> bool:
    if is_remote(path):
        return _gfile().exists(str(path)) and not _gfile().isdir(str(path))
    return local(path).is_file()


def listdir(path: str | os.PathLike) -> list[str]:
    """Names directly inside a folder, sorted (an object store's trailing '/' on sub-folders removed)."""
    if is_remote(path):
        return sorted({name.rstrip("/") for name in _gfile().listdir(str(path))})
    return sorted(p.name for p in local(path).iterdir())


def files_under(root: str | os.PathLike) -> Iterator[str]:
    """Every file below `root`, as full paths, in sorted order (folders walked in sorted order too)."""
    if not is_remote(root):
        for folder, dirs, files in os.walk(local(root), followlinks=True):
            dirs.sort()
            for name in sorted(files):
                yield os.path.join(folder, name)
        return
    for folder, dirs, files in _gfile().walk(str(root)):
        dirs.sort()
        for name in sorted(files):
            yield posixpath.join(str(folder).rstrip("/"), name)


def relative_parts(path: str, root: str) -> tuple[str, ...]:
    """The names from `root` down to `path` (both as given by `files_under`)."""
    if is_remote(root):
        return tuple(part for part in str(path)[len(str(root).rstrip("/")) + 1:].split("/") if part)
    return Path(path).relative_to(local(root)).parts


def size_and_mtime(path: str | os.PathLike) -> tuple[int, int]:
    """(bytes, modification time in ns); an object store's mtime is its upload time (0 where it keeps none)."""
    if is_remote(path):
        stat = _gfile().stat(str(path))
        return int(stat.length), int(stat.mtime_nsec)
    stat = local(path).stat()
    return int(stat.st_size), int(stat.st_mtime_ns)


def read_bytes(path: str | os.PathLike) -> bytes:
    if is_remote(path):
        with _gfile().GFile(str(path), "rb") as handle:
            return handle.read()
    return local(path).read_bytes()


def read_text(path: str | os.PathLike, encoding: str = "utf-8", errors: str = "strict") -> str:
    return read_bytes(path).decode(encoding, errors)


@contextlib.contextmanager
def open_text(path: str | os.PathLike, encoding: str = "utf-8-sig") -> Iterator[Iterable[str]]:
    """Lines of a text file, newlines kept as written (what `csv.reader` wants), streamed on any filesystem; a UTF-8
    byte-order mark is dropped as `utf-8-sig` drops it locally."""
    if not is_remote(path):
        with open(local(path), newline="", encoding=encoding) as handle:
            yield handle
        return
    with _gfile().GFile(str(path), "rb") as handle:
        # Split on b"\n" before decoding: in UTF-8 that byte is never part of another character.
        yield (line.decode(encoding if number == 0 else encoding.replace("-sig", ""))
               for number, line in enumerate(_split_lines(handle)))


@contextlib.contextmanager
def binary_lines(path: str | os.PathLike) -> Iterator[Iterable[bytes]]:
    """The raw lines of a file (each ending in b"\\n" but the last), streamed on any filesystem, for readers that decode
    line by line and report the lines that do not decode."""
    if not is_remote(path):
        with open(local(path), "rb") as handle:
            yield handle
        return
    with _gfile().GFile(str(path), "rb") as handle:
        yield _split_lines(handle)


def _split_lines(handle) -> Iterator[bytes]:
    pending = b""
    while True:
        block = handle.read(1 << 20)
        pending += block
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line + b"\n"
        if not block:
            break
    if pending:
        yield pending


def open_binary(path: str | os.PathLike):
    """A readable binary file object: the local file, or a remote file's bytes (read once; Pillow and SciPy seek)."""
    if is_remote(path):
        return io.BytesIO(read_bytes(path))
    return open(local(path), "rb")


def makedirs(path: str | os.PathLike) -> None:
    if is_remote(path):
        _gfile().makedirs(str(path))
    else:
        local(path).mkdir(parents=True, exist_ok=True)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Writes a whole file. Remote: one object upload, which a reader sees whole or not at all."""
    if is_remote(path):
        makedirs(parent_of(path))
        with _gfile().GFile(str(path), "wb") as handle:
            handle.write(data)
        return
    from tl_keras.io import atomic

    atomic.write_bytes(local(path), data)


def remove_tree(path: str | os.PathLike) -> None:
    if is_remote(path):
        if _gfile().exists(str(path)):
            _gfile().rmtree(str(path)) if _gfile().isdir(str(path)) else _gfile().remove(str(path))
    elif local(path).is_dir():
        shutil.rmtree(local(path))
    elif local(path).exists():
        local(path).unlink()


def copy_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    if not is_remote(source) and not is_remote(target):
        local(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(local(source), local(target))
        return
    makedirs(parent_of(target))
    _gfile().copy(str(source), str(target), overwrite=True)


def publish_tree(source: str | os.PathLike, target: str | os.PathLike, last: Sequence[str] = ()) -> None:
    """Copies the finished folder `source` to `target` (which must not exist), files named in `last` after all others.

    A reader that polls for `target` (TF Serving watching an export folder)
    and waits for one file in it (`saved_model.pb`) never loads a half-copied
    version. Locally the folder is copied beside `target` and renamed, which
    is atomic.
    """
    if exists(target):
        raise FileExistsError(f"{target} already exists")
    if not is_remote(target) and not is_remote(source):
        staging = local(target).parent / f".{local(target).name}.incoming"
        if staging.exists():
            shutil.rmtree(staging)
        shutil.copytree(local(source), staging)
        os.replace(staging, local(target))
        return
    files = list(files_under(source))
    ordered = [f for f in files if name_of(f) not in last] + [f for f in files if name_of(f) in last]
    for path in ordered:
        copy_file(path, join(target, *relative_parts(path, str(source))))


def fetch_tree(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Copies the remote folder or file `source` to the local `target` (a folder for a folder, a file for a file)."""
    if isdir(source):
        for path in files_under(source):
            copy_file(path, join(target, *relative_parts(path, str(source))))
    else:
        copy_file(source, target)
