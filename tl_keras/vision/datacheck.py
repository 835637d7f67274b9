"""Decode every image once before training and say what is wrong with the bad ones.

TensorFlow's own decoder is the judge of what training can read (it is what
the input pipeline runs); Pillow reads headers to say *why* a file is odd:
CMYK, 16-bit, grayscale, alpha, animation, truncation. Files TensorFlow
decodes into RGB uint8 are kept (and the conversion is reported); files it
cannot decode are listed and skipped, so an epoch never dies on one.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Callable, Sequence

import tensorflow as tf
from absl import logging

from tl_keras.io import atomic, storage
from tl_keras.vision.orientation import decode_upright, exif_orientation
from tl_keras.vision.verdicts import open_verdicts
from tl_keras.vision.pixels import format_of

# Reasons a file is dropped.
EMPTY = "empty_file"
NOT_IMAGE = "not_an_image"
TRUNCATED = "truncated"
CORRUPT = "corrupt"
UNSUPPORTED = "format_tensorflow_cannot_decode"
SKIP_REASONS = (EMPTY, NOT_IMAGE, TRUNCATED, CORRUPT, UNSUPPORTED)
# Facts about files that are kept (TensorFlow converts them to RGB uint8).
CMYK = "cmyk"
SIXTEEN_BIT = "16_bit"
GRAYSCALE = "grayscale"
ALPHA = "alpha"
PALETTE = "palette"
ANIMATED = "animated_first_frame_used"
LARGE = "large"
ROTATED = "exif_orientation_applied"  # a phone photo stored sideways with a tag saying how to turn it
LARGE_SIDE = 4096


@dataclasses.dataclass
class FileCheck:
    path: str
    label: int
    ok: bool
    reason: str = ""  # why it is skipped, when not ok
    notes: tuple[str, ...] = ()  # conversions and warnings, when ok
    sha256: str = ""
    size: tuple[int, int] | None = None  # height, width as decoded


@dataclasses.dataclass
class DataReport:
    """What the check found; `to_dict` is what `data_report.json` holds."""

    class_names: list[str]
    checks: list[FileCheck]
    empty_class_folders: list[str] = dataclasses.field(default_factory=list)
    ignored_files: list[str] = dataclasses.field(default_factory=list)

    def good(self) -> list[FileCheck]:
        return [c for c in self.checks if c.ok]

    def class_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in self.class_names}
        for check in self.good():
            counts[self.class_names[check.label]] += 1
        return counts

    def duplicates(self, split_of: dict[str, str] | None = None) -> list[dict]:
        """Groups of byte-identical files; `across_splits` marks leaks between splits."""
        groups: dict[str, list[str]] = defaultdict(list)
        for check in self.good():
            groups[check.sha256].append(check.path)
        out = []
        for digest, paths in groups.items():
            if len(paths) > 1:
                splits = sorted({split_of.get(p, "?") for p in paths}) if split_of else []
                out.append({"sha256": digest, "paths": sorted(paths), "splits": splits, "across_splits": len(splits) > 1})
        return sorted(out, key=lambda g: g["paths"][0])

    def skipped(self) -> dict[str, list[str]]:
        """{reason: sorted paths} of the files left out, for each reason that occurred."""
        by_reason = {reason: sorted(c.path for c in self.checks if c.reason == reason) for reason in SKIP_REASONS}
        return {reason: paths for reason, paths in by_reason.items() if paths}

    def to_dict(self, split_of: dict[str, str] | None = None) -> dict:
        noted: dict[str, list[str]] = defaultdict(list)
        for check in self.good():
            for note in check.notes:
                noted[note].append(check.path)
        return {
            "class_names": self.class_names,
            "files_checked": len(self.checks),
            "files_usable": len(self.good()),
            "class_counts": self.class_counts(),
            "skipped": self.skipped(),
            "converted_or_noted": {k: sorted(v) for k, v in sorted(noted.items())},
            "duplicates": self.duplicates(split_of),
            "empty_class_folders": self.empty_class_folders,
            "ignored_files": self.ignored_files,
        }

    def write(self, path: str | os.PathLike, split_of: dict[str, str] | None = None) -> Path:
        return atomic.write_json(path, self.to_dict(split_of), indent=1)


def check_file(path: str, label: int) -> FileCheck:
    """Decodes one file as training will, and describes it."""
    data = storage.read_bytes(path)
    digest = hashlib.sha256(data).hexdigest()
    if not data:
        return FileCheck(path, label, ok=False, reason=EMPTY, sha256=digest)
    header = _describe_header(data)
    if header is None or not header["loads"]:
        # Pillow could not read it to the end: TensorFlow cannot either, and its JPEG decoder would print libjpeg's
        # own messages ("Input file read error", "Improper call to JPEG library") on stderr, past every log setting.
        return FileCheck(path, label, ok=False, reason=_unreadable_reason(data, header), sha256=digest)
    try:
        image = decode_upright(data)  # as training and serving decode it: upright
        shape = tuple(int(d) for d in image.shape[:2])
        orientation = int(exif_orientation(data))
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError):
        return FileCheck(path, label, ok=False, reason=UNSUPPORTED, sha256=digest)  # Pillow reads it (e.g. TIFF); TensorFlow cannot
    notes = list(header["notes"])
    if max(shape) >= LARGE_SIDE:
        notes.append(LARGE)
    if orientation != 1:
        notes.append(ROTATED)
    return FileCheck(path, label, ok=True, notes=tuple(notes), sha256=digest, size=shape)


def _unreadable_reason(data: bytes, header: dict | None) -> str:
    """Why a file Pillow could not read to the end is skipped: not an image, cut short, or corrupt."""
    signature = format_of(data)
    if header is None and signature is None:
        return NOT_IMAGE
    if (header is not None and header["truncated"]) or not _has_end_marker(signature, data):
        return TRUNCATED
    return CORRUPT


def _has_end_marker(signature: str | None, data: bytes) -> bool:
    """False when a JPEG/PNG/GIF stops before its end marker: it was cut short."""
    tail = data[-32:]
    if signature == "jpeg":
        return b"\xff\xd9" in tail
    if signature == "png":
        return b"IEND" in tail
    if signature == "gif":
        return tail.endswith(b";")
    return True


def _describe_header(data: bytes) -> dict | None:
    """Pillow's view of the file: None when it is not an image at all."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:  # over Pillow's pixel guard (about 180 megapixels): TensorFlow decides
        return {"mode": None, "format": None, "notes": [], "loads": True, "truncated": False}
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    mode = image.mode
    notes = []
    if mode == "CMYK":
        notes.append(CMYK)
    if mode.startswith("I;16") or mode in ("I", "F"):
        notes.append(SIXTEEN_BIT)
    if mode in ("L", "LA", "1", "I;16", "I;16B", "I;16L", "I"):
        notes.append(GRAYSCALE)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        notes.append(ALPHA)
    if mode == "P":
        notes.append(PALETTE)
    if getattr(image, "n_frames", 1) > 1:
        notes.append(ANIMATED)
    loads, truncated = True, False
    try:
        image.load()
    except Image.DecompressionBombError:
        pass
    except (OSError, SyntaxError, ValueError) as error:
        loads = False
        truncated = "truncated" in str(error).lower()
    return {"mode": mode, "format": image.format, "notes": notes, "loads": loads, "truncated": truncated}


_IN_FLIGHT = 4096  # files submitted to the decoding threads at a time


def _from_record(record: dict, label: int) -> FileCheck:
    fields = {**record, "label": label, "notes": tuple(record.get("notes") or ())}
    fields["size"] = tuple(fields["size"]) if fields.get("size") else None
    return FileCheck(**fields)


def check_files(
    paths: Sequence[str],
    labels: Sequence[int],
    class_names: Sequence[str],
    *,
    workers: int = 4,
    progress: Callable[[int, int], None] | None = None,
    remember: bool = True,
) -> DataReport:
    """Checks every file (in parallel threads: decoding releases the GIL), or reuses its verdict when the file is
    unchanged since an earlier check (`vision.verdicts`).

    Args:
        paths, labels: the files and their class indices.
        class_names: names for the indices.
        workers: decoding threads.
        progress: called as progress(done, total) after each file.
        remember: read and write the user's verdict store.
    """
    total = len(paths)
    results: list[FileCheck | None] = [None] * total
    store = open_verdicts() if remember else None
    reused = done = 0

    def judged(path: str, label: int) -> tuple[FileCheck, bool]:
        """The file's verdict, from the store when the file is unchanged since it was judged; (verdict, reused)."""
        if store is None:
            return check_file(path, label), False
        try:
            size, mtime = storage.size_and_mtime(path)
        except Exception:  # gone or unreadable (each filesystem raises its own kind): the check itself says why
            return check_file(path, label), False
        known = store.get(path, size, mtime)
        if known is not None:
            return _from_record(known, label), True
        verdict = check_file(path, label)
        store.put(path, size, mtime, verdict)
        return verdict, False

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for start in range(0, total, _IN_FLIGHT):  # a bounded number of futures, not one per file of a million at once
                futures = {pool.submit(judged, p, int(l)): start + i
                           for i, (p, l) in enumerate(zip(paths[start:start + _IN_FLIGHT], labels[start:start + _IN_FLIGHT]))}
                for future in concurrent.futures.as_completed(futures):
                    results[futures[future]], was_known = future.result()
                    reused += was_known
                    done += 1
                    if progress:
                        progress(done, total)
    finally:
        if store is not None:
            store.close()
    if reused:
        logging.info("data check: %d of %d files unchanged since they were checked (verdicts reused, %s)", reused, total,
                     "TL_KERAS_CACHE=off checks every file again")
    return DataReport(list(class_names), [r for r in results if r is not None])
