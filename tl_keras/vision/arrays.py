"""Source: images already in memory (NumPy arrays or an .npz file)."""

from __future__ import annotations

import os

import numpy as np

from tl_keras.vision.pipeline import IndexedSplit
from tl_keras.data.splits import DataSplits, splits_by_index, stratified_split
from tl_keras.vision.pixels import to_uint8_array


def load_arrays(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str] | None = None,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 42,
) -> DataSplits:
    """In-memory images (N, H, W, 3 or N, H, W) and integer labels, split stratified.

    Float images are taken as [0, 1] when their maximum is at most 1, else
    as [0, 255]; grayscale is repeated to RGB. Pixels become uint8, as every
    other source gives them.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).astype(np.int32).reshape(-1)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"images must be (N, H, W), (N, H, W, 1), (N, H, W, 3) or (N, H, W, 4); got shape {images.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    images = images[..., :3]
    if images.dtype != np.uint8:
        images = _to_uint8(images)
    num_classes = int(labels.max()) + 1 if labels.size else 0
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be integers from 0")
    class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    if num_classes > len(class_names):
        raise ValueError(f"labels go up to {num_classes - 1} but only {len(class_names)} class names were given")
    parts = stratified_split(labels, validation_fraction, test_fraction, seed)
    return in_memory_splits(images, labels, parts, class_names, {"source": "arrays", "seed": seed}, test_carved=True)


def load_npz(path: str | os.PathLike, validation_fraction: float = 0.2, test_fraction: float = 0.1, seed: int = 42) -> DataSplits:
    """An `.npz` with `images` (or `x`) and `labels` (or `y`), and optional `class_names`."""
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        image_key = "images" if "images" in keys else "x" if "x" in keys else None
        label_key = "labels" if "labels" in keys else "y" if "y" in keys else None
        if image_key is None or label_key is None:
            raise ValueError(f"{path} needs arrays named images (or x) and labels (or y); it has {sorted(keys)}")
        names = [str(n) for n in archive["class_names"]] if "class_names" in keys else None
        return load_arrays(archive[image_key], archive[label_key], names, validation_fraction, test_fraction, seed)


def in_memory_splits(
    images: np.ndarray, labels: np.ndarray, parts: dict[str, np.ndarray], class_names: list[str], record: dict, *,
    test_carved: bool = False,
) -> DataSplits:
    """Splits of in-memory uint8 images by index arrays; the indices are the split record (`test_carved`: see `DataSplits`)."""
    return splits_by_index(
        IndexedSplit.from_arrays(images, labels), parts, class_names, {**record, **{k: idx.tolist() for k, idx in parts.items()}},
        test_carved=test_carved,
    )


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """Pixels as uint8 0-255 from 0-255, 0-1 or -1-1 floats (the range told by the values); anything else refused.

    The models normalise raw 0-255 pixels themselves, so an array already
    normalised for a backbone is mapped back rather than clipped: clipping
    [-1, 1] at 0 silently dropped half its range.
    """
    if not images.size:
        return images.astype(np.uint8)
    low, high = float(np.nanmin(images)), float(np.nanmax(images))
    if low >= 0.0 and high <= 1.0:
        scaled = images.astype(np.float64) * 255.0
    elif low >= -1.0 and high <= 1.0:
        scaled = (images.astype(np.float64) + 1.0) * 127.5
    elif low >= 0.0 and high <= 255.0:
        scaled = images.astype(np.float64)
    else:
        raise ValueError(
            f"image values run from {low:g} to {high:g}; pass pixels as uint8 or floats in 0-255, 0-1 or -1-1 "
            "(the model normalises them itself)"
        )
    return to_uint8_array(scaled)
