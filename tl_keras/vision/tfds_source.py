"""Source: a TFDS image-classification dataset, with its own splits where it has them.

Splits the source lacks are carved out of `train` by a stratified, seeded
split of example indices. Records are selected while their images are still
encoded bytes and only the kept ones are decoded, so carving a 10% test
split out of `train` does not decode the other 90%.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tl_keras.data.subsets import select_positions
from tl_keras.data.splits import DataSplits, counts_by_class, stratified_split
from tl_keras.data.tfds_prepare import prepare


def load_tfds(
    name: str,
    data_dir: str | None = None,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.1,
    seed: int = 42,
    *,
    label_key: str = "",
    image_key: str = "",
) -> DataSplits:
    """Loads a TFDS image-classification dataset; downloads unless `data_dir` already holds it prepared.

    (Sixty lines: reading a TFDS builder's splits, features and labels is one sequence of checks, each with its own error.)

    Args:
        label_key, image_key: feature names; empty finds them (the dataset's
            supervised keys, else its only ClassLabel / Image feature).
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    prepare(builder, name)
    image_key, label_key = _feature_keys(builder, image_key, label_key)
    image_feature = builder.info.features[image_key]
    class_names = list(builder.info.features[label_key].names)
    available = builder.info.splits
    need_validation = "validation" not in available
    need_test = "test" not in available and test_fraction > 0
    record: dict = {"source": f"tfds:{name}", "data_dir": data_dir, "seed": seed, "validation_fraction": validation_fraction,
                    "test_fraction": test_fraction, "label_key": label_key, "image_key": image_key, "class_names": class_names}
    encoded: dict[str, tf.data.Dataset | None] = {"validation": None, "test": None}
    labels = _labels(builder, "train", label_key)
    if need_validation or need_test:
        parts = stratified_split(labels, validation_fraction if need_validation else 0.0, test_fraction if need_test else 0.0, seed)
        counts = counts_by_class(labels, parts, class_names)
        for key, idx in parts.items():
            if key == "train" or len(idx):
                encoded[key] = select_positions(_records(builder, "train"), idx, len(labels))
                record[key] = {"split": "train", "indices": idx.tolist()}
        train_labels = labels[parts["train"]]
    else:
        encoded["train"] = _records(builder, "train")
        record["train"] = "train"
        counts = {"train": {c: int(np.sum(labels == i)) for i, c in enumerate(class_names)}}
        train_labels = labels
    for key in ("validation", "test"):
        if key in available:
            encoded[key] = _records(builder, key)
            record[key] = key
            split_labels = _labels(builder, key, label_key)
            counts[key] = {c: int(np.sum(split_labels == i)) for i, c in enumerate(class_names)}

    def decoded(example):
        image = decode_image(image_feature, example[image_key])
        # Grayscale (and gray+alpha) to RGB by repeating the gray channel; drop alpha.
        image = tf.cond(tf.shape(image)[-1] < 3, lambda: tf.tile(image[..., :1], [1, 1, 3]), lambda: image[..., :3])
        return tf.cast(image, tf.uint8), tf.cast(example[label_key], tf.int32)

    mapped = {k: (ds.map(decoded, num_parallel_calls=tf.data.AUTOTUNE) if ds is not None else None) for k, ds in encoded.items()}
    return DataSplits(
        train=mapped["train"], validation=mapped["validation"], test=mapped["test"], class_names=class_names,
        counts=counts, split_record=record, train_labels=train_labels, test_carved=need_test and mapped["test"] is not None,
    )


def decode_image(feature, encoded: tf.Tensor) -> tf.Tensor:
    """One record's image bytes to pixels, with the dataset's own decoder (a seam tests use to count decodes)."""
    return feature.decode_example(encoded)


def _feature_keys(builder, image_key: str, label_key: str) -> tuple[str, str]:
    import tensorflow_datasets as tfds

    features = builder.info.features
    supervised = builder.info.supervised_keys or (None, None)
    if not image_key:
        images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
        image_key = supervised[0] if supervised[0] in features else images[0] if len(images) == 1 else "image"
    if not label_key:
        classes = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
        label_key = supervised[1] if supervised[1] in features else classes[0] if len(classes) == 1 else "label"
    for key, what in ((image_key, "image"), (label_key, "label")):
        if key not in features:
            raise ValueError(f"--tfds={builder.name}: no {what} feature {key!r}; features: {sorted(features)}")
    if not isinstance(features[label_key], tfds.features.ClassLabel):
        raise ValueError(f"--tfds={builder.name}: feature {label_key!r} is not a ClassLabel; pick the label feature by name")
    return image_key, label_key


def _records(builder, split: str) -> tf.data.Dataset:
    """A split's examples with their images still encoded (nothing decoded yet)."""
    return builder.as_dataset(split=split, shuffle_files=False, decoders=_skip_images(builder))


def _skip_images(builder) -> dict:
    import tensorflow_datasets as tfds

    return {k: tfds.decode.SkipDecoding() for k, f in builder.info.features.items() if isinstance(f, tfds.features.Image)}


def _labels(builder, split: str, label_key: str) -> np.ndarray:
    """Labels of a TFDS split, read without decoding a single image."""
    return np.array([int(example[label_key]) for example in _records(builder, split).as_numpy_iterator()], dtype=np.int32)
