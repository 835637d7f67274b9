"""Sharded TFRecord files of labelled examples, with a manifest: the form a million images or texts travel in.

A folder of a million JPEGs is a million opens (a million requests on an
object store), and a CSV of ten million texts is one file no two workers
can split. `experiments/make_records.py` writes a source once, split as a
run would split it, into `<split>-NNNNN-of-MMMMM.tfrecord` shards of
`tf.train.Example`s:

    payload   bytes   the encoded image file as it was, or the UTF-8 text
    target    int64   a class index           (one label)
              float   one 0/1 per tag         (several tags)
              float   the value               (a number)
    source    bytes   where the example came from (path, or file:line)

and `manifest.json` beside them: the modality, the task and its names, the
examples and counts per split, the shard files, a SHA-256 of each split's
examples in order, and the settings of the split. `--records=FOLDER`
trains from them: each epoch reads the shards in an order fixed by
(seed, epoch), interleaved, through a seeded shuffle buffer, so a resumed
run sees the same batches, and TensorFlow can hand whole shards to workers.
Everything goes through `tf.io.gfile`, so the folder may be on a bucket.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf

from tl_keras.config.settings import ConfigError
from tl_keras.io import storage

MANIFEST = "manifest.json"
FORMAT = 1
SPLITS = ("train", "validation", "test")
PAYLOADS = ("image", "text")


def shard_name(split: str, index: int, total: int) -> str:
    return f"{split}-{index:05d}-of-{total:05d}.tfrecord"


def _example(payload: bytes, target, source: str) -> bytes:
    if isinstance(target, (int, np.integer)):
        target_feature = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(target)]))
    else:
        values = np.atleast_1d(np.asarray(target, np.float32)).tolist()
        target_feature = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    features = {
        "payload": tf.train.Feature(bytes_list=tf.train.BytesList(value=[payload])),
        "target": target_feature,
        "source": tf.train.Feature(bytes_list=tf.train.BytesList(value=[source.encode("utf-8")])),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def write_split(folder: str, split: str, examples: Iterable[tuple[bytes, object, str]], shards: int) -> dict:
    """Writes `examples` (payload, target, source) round-robin into `shards` files; returns the split's manifest entry."""
    names = [shard_name(split, i, shards) for i in range(shards)]
    writers = [tf.io.TFRecordWriter(storage.join(folder, name)) for name in names]
    digest, count = hashlib.sha256(), 0
    try:
        for payload, target, source in examples:
            writers[count % shards].write(_example(payload, target, source))
            digest.update(hashlib.sha256(payload).digest())
            digest.update(json.dumps(np.asarray(target).tolist()).encode() + b"\0" + source.encode("utf-8") + b"\n")
            count += 1
    finally:
        for writer in writers:
            writer.close()
    return {"examples": count, "shards": names, "sha256": digest.hexdigest()}


def shards_for(examples: int, train_examples: int, train_shards: int) -> int:
    """A held-out split's shard count: the training split's, scaled by size (at least one)."""
    return max(1, min(train_shards, math.ceil(train_shards * examples / max(train_examples, 1))))


def write_manifest(folder: str, manifest: dict) -> None:
    storage.write_bytes(storage.join(folder, MANIFEST), (json.dumps({"format": FORMAT, **manifest}, indent=1) + "\n").encode())


def read_manifest(folder: str, flag: str = "--records") -> dict:
    """The manifest of a records folder, checked: every split it names lists shards that exist.

    Raises:
        ConfigError: no manifest, one this version cannot read, or a shard missing (one line naming the folder).
    """
    path = storage.join(folder, MANIFEST)
    if not storage.isfile(path):
        raise ConfigError(f"{flag}={folder}: no {MANIFEST} there; write the folder with experiments/make_records.py")
    try:
        manifest = json.loads(storage.read_text(path))
    except (ValueError, UnicodeDecodeError) as error:
        raise ConfigError(f"{flag}={folder}: {MANIFEST} is not JSON ({error})") from None
    if manifest.get("format") != FORMAT or manifest.get("payload") not in PAYLOADS or "train" not in manifest.get("splits", {}):
        raise ConfigError(f"{flag}={folder}: {MANIFEST} is not a records manifest this version reads (format {FORMAT})")
    listed = set(storage.listdir(folder))
    for split, entry in manifest["splits"].items():
        missing = [name for name in entry["shards"] if name not in listed]
        if missing:
            raise ConfigError(f"{flag}={folder}: {split} shard {missing[0]} is missing ({len(missing)} of {len(entry['shards'])}); "
                              "copy the whole folder, or write it again")
    return manifest


def target_kind(task_kind: str) -> str:
    """What a manifest's "target" says for a task kind: "class", "tags" or "value"."""
    return {"single_label": "class", "multi_label": "tags", "regression": "value"}[task_kind]


def summary_lines(manifest: dict, folder: str, noun: str, train_flags: str = "") -> list[str]:
    """What make_records prints: each split's examples and shards, where the manifest is, and the command that trains."""
    lines = [f"{split}: {entry['examples']} {noun} in {len(entry['shards'])} shard{'s' if len(entry['shards']) > 1 else ''}"
             for split, entry in manifest["splits"].items()]
    return lines + [f"manifest: {folder}/manifest.json", f"train from them: python experiments/train.py --records={folder}{train_flags}"]


def parsed(target_kind: str, width: int) -> "callable":
    """serialized Example -> (payload bytes, target): an int32 class, or `width` float32 tags, or one float32 value."""
    if target_kind == "class":
        target = tf.io.FixedLenFeature([], tf.int64)
    else:
        target = tf.io.FixedLenFeature([width] if target_kind == "tags" else [], tf.float32)
    spec = {"payload": tf.io.FixedLenFeature([], tf.string), "target": target}

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, spec)
        value = tf.cast(example["target"], tf.int32) if target_kind == "class" else example["target"]
        return example["payload"], value

    return parse


def _written_order(folder: str, manifest: dict, split: str) -> tf.data.Dataset:
    """The serialized examples of a split in the order they were written: example i went to shard i % n, so one record
    from each shard in turn (an interleave over all of them, one record per visit) gives them back in order."""
    names = manifest["splits"][split]["shards"]
    files = tf.data.Dataset.from_tensor_slices([storage.join(folder, name) for name in names])
    return files.interleave(tf.data.TFRecordDataset, cycle_length=len(names), block_length=1)  # sequential: in order


def split_dataset(folder: str, manifest: dict, split: str, *, seed: int | None = None, epoch=None,
                  cycle: int = 16, parse: bool = True) -> tf.data.Dataset:
    """(payload, target) of one split: in written order, or with `seed` and `epoch` its shards in an order fixed by
    them, `cycle` at a time, interleaved (what a training epoch reads before its shuffle buffer). `parse=False` leaves
    the serialized examples for the caller to parse (with `parsed`) in a step of its own pipeline."""
    parser = parsed(manifest["target"], len(manifest["names"]))
    if seed is None:
        return _written_order(folder, manifest, split).map(parser, num_parallel_calls=tf.data.AUTOTUNE)
    names = manifest["splits"][split]["shards"]
    files = tf.constant([storage.join(folder, name) for name in names])
    key = tf.stack([tf.cast(seed, tf.int64), tf.cast(epoch, tf.int64)])
    order = tf.argsort(tf.random.stateless_uniform([len(names)], seed=key))
    shuffled = tf.data.Dataset.from_tensor_slices(tf.gather(files, order))
    records = shuffled.interleave(tf.data.TFRecordDataset, cycle_length=min(cycle, len(names)),
                                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return records.map(parser, num_parallel_calls=tf.data.AUTOTUNE) if parse else records


def examples_of(folder: str, manifest: dict, split: str, batch: int = 1024) -> Iterator[tuple[bytes, np.ndarray, str]]:
    """Every (payload, target, source) of a split, in written order, on the host (texts, which a text run holds in
    memory), parsed a batch at a time."""
    spec = {"payload": tf.io.FixedLenFeature([], tf.string), "source": tf.io.FixedLenFeature([], tf.string),
            "target": tf.io.FixedLenFeature([len(manifest["names"])] if manifest["target"] == "tags" else [],
                                            tf.int64 if manifest["target"] == "class" else tf.float32)}
    batches = _written_order(folder, manifest, split).batch(batch).map(lambda rows: tf.io.parse_example(rows, spec))
    for parsed_batch in batches.as_numpy_iterator():
        for payload, target, source in zip(parsed_batch["payload"], parsed_batch["target"], parsed_batch["source"]):
            yield bytes(payload), target, source.decode("utf-8")
