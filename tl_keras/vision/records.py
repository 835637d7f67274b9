"""Images to and from sharded TFRecords (`data.records`): the folder's split written once, trained on from the shards.

Writing reads the source as a run would (the data check, the same seeded
split), so a run on the records sees the classes, the splits and the counts
a run on the folder sees. Each image goes in as its file's bytes, decoded
(upright, as the export decodes) when read; targets go in the user's units
(a value as given, not standardised). Reading gives `DataSplits` whose
training epochs read the shards in a seeded order through a seeded shuffle
buffer (`epoch_sources`), so an epoch is a function of (seed, epoch) and a
run resumes exactly; a split that fits the image cache is decoded once into
it, as a folder's is.
"""

from __future__ import annotations

import json
from pathlib import Path

import tensorflow as tf
from absl import logging

from tl_keras.config.settings import DataSettings
from tl_keras.data import records as records_lib
from tl_keras.data.epochs import seeded_shuffle
from tl_keras.data.splits import DataSplits, SplitMismatchError
from tl_keras.io import storage
from tl_keras.tasks import SINGLE_LABEL, TargetSpec
from tl_keras.vision.orientation import decode_upright
from tl_keras.vision.pipeline import resize_uint8

SHUFFLE_BUFFER = 4096  # encoded examples mixed across the interleaved shards of an epoch


def write_image_records(splits: DataSplits, data: DataSettings, folder: str, shards: int) -> dict:
    """Writes the splits of an image folder (optionally with a labels file), as `vision.data.load_data` read them from
    `data`, to `folder`. Returns the manifest.
    """
    spec = splits.target or TargetSpec(SINGLE_LABEL, list(splits.class_names))
    storage.makedirs(folder)
    entries = {}
    train_count = len(splits.indexed["train"])
    for split in ("train", "validation", "test"):
        indexed = splits.indexed.get(split)
        if indexed is None or not len(indexed):
            continue
        targets = spec.user_targets(indexed.labels) if spec.kind != SINGLE_LABEL else indexed.labels

        def examples(indexed=indexed, targets=targets):
            for path, target in zip(indexed.keys, targets):
                yield storage.read_bytes(str(path)), (int(target) if spec.kind == SINGLE_LABEL else target), str(path)

        entry = records_lib.write_split(folder, split, examples(), records_lib.shards_for(len(indexed), train_count, shards))
        entry["counts"] = splits.counts.get(split, {})
        entries[split] = entry
        logging.info("records: %s: %d images in %d shard(s)", split, entry["examples"], len(entry["shards"]))
    manifest = {
        "payload": "image", "target": records_lib.target_kind(spec.kind), "names": list(spec.names), "task": spec.to_dict(),
        "splits": entries, "source": {"image_dir": data.image_dir, "labels_file": data.labels_file},
        "split_settings": {k: v for k, v in splits.split_record.items() if k not in ("train", "validation", "test")},
    }
    records_lib.write_manifest(folder, manifest)
    return manifest


def load_image_records(folder: str, seed: int, split_file: Path | None = None) -> DataSplits:
    """The splits a records folder holds, as `DataSplits` (targets as `fit` sees them), with seeded training epochs.

    Raises:
        ConfigError: no readable manifest or a missing shard.
        SplitMismatchError: `split_file` records other records (their content hashes differ).
    """
    manifest = records_lib.read_manifest(folder)
    if manifest["payload"] != "image":
        raise ValueError(f"--records={folder} holds {manifest['payload']}s, not images")
    spec = TargetSpec.from_dict(manifest["task"], manifest["names"])
    record = {"source": f"records:{storage.normal(folder)}", "seed": seed, "class_names": list(spec.names),
              "records_sha256": {split: entry["sha256"] for split, entry in manifest["splits"].items()}}
    _check_recorded(split_file, record, folder)

    def decoded(payload, target):
        image = decode_upright(payload)
        if spec.kind == "regression":
            target = (target - spec.mean) / spec.std
        return image, target

    def read(split: str):
        if split not in manifest["splits"]:
            return None
        return records_lib.split_dataset(folder, manifest, split).map(decoded, num_parallel_calls=tf.data.AUTOTUNE)

    def train_epoch(epoch, image_size: int | None = None):
        """Epoch `epoch`: shuffled while still encoded (tens of KB an image, not the megabytes it decodes to), then decoded
        (and resized to `image_size`, in the same parallel step) in parallel."""
        shards = records_lib.split_dataset(folder, manifest, "train", seed=seed, epoch=epoch, parse=False)
        parse = records_lib.parsed(manifest["target"], len(manifest["names"]))

        def prepared(serialized):  # parsed, decoded and resized in one parallel step
            image, target = decoded(*parse(serialized))
            return (image, target) if image_size is None else resize_uint8(image, target, image_size)

        return seeded_shuffle(shards, SHUFFLE_BUFFER, seed, epoch).map(prepared, num_parallel_calls=tf.data.AUTOTUNE)

    counts = {split: entry["counts"] for split, entry in manifest["splits"].items()}
    return DataSplits(
        train=read("train"), validation=read("validation"), test=read("test"), class_names=list(spec.names), counts=counts,
        split_record=record, train_labels=None, target=None if spec.kind == SINGLE_LABEL else spec,
        epoch_sources={"train": train_epoch},
    )


def _check_recorded(split_file: Path | None, record: dict, folder: str) -> None:
    """A run resumed or repeated on records that were written again (other images, other split) is refused by name."""
    if split_file is None or not Path(split_file).is_file():
        return
    recorded = json.loads(Path(split_file).read_text(encoding="utf-8"))
    if recorded.get("records_sha256") not in (None, record["records_sha256"]):
        raise SplitMismatchError(f"--records={folder} changed since {split_file} was written (its examples differ); "
                                 "the run's split and weights belong to the records it read: pass --overwrite to start again")

