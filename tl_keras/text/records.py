"""Texts to and from sharded TFRecords (`data.records`): a table's split written once, a run reading it back.

Writing reads the text source as a run would (the same rows skipped, the
same seeded split, the separate validation and test files), and writes each
split's texts as UTF-8 with their targets in the user's units. Reading gives
the `TextSplits` a run on the table would have had, so the two runs train on
the same texts, split alike. A text run holds its texts in memory (their
token ids are what it batches), so records move texts between machines and
workers; they do not bound a text run's memory.
"""

from __future__ import annotations

import numpy as np
from absl import logging

from tl_keras.data import records as records_lib
from tl_keras.io import storage
from tl_keras.tasks import SINGLE_LABEL, TargetSpec
from tl_keras.text.data import SPLITS, TextSplits


def write_text_records(splits: TextSplits, folder: str, shards: int) -> dict:
    """Writes `splits` (as `text.run.read_splits` read them) to `folder`; returns the manifest."""
    spec = splits.target
    storage.makedirs(folder)
    entries = {}
    train_count = len(splits.texts["train"])
    for split in SPLITS:
        texts, targets = splits.texts[split], splits.labels[split]
        if not texts:
            continue
        where = splits.record.get("source", {}).get(split) or splits.record.get("source", {}).get("train", "")

        def examples(texts=texts, targets=targets, where=where):
            for index, (text, target) in enumerate(zip(texts, targets)):
                yield text.encode("utf-8"), (int(target) if spec.kind == SINGLE_LABEL else target), f"{where}#{index}"

        entry = records_lib.write_split(folder, split, examples(), records_lib.shards_for(len(texts), train_count, shards))
        entry["counts"] = splits.counts.get(split, {})
        entries[split] = entry
        logging.info("records: %s: %d texts in %d shard(s)", split, entry["examples"], len(entry["shards"]))
    manifest = {
        "payload": "text", "target": records_lib.target_kind(spec.kind),
        "names": list(spec.names), "task": spec.to_dict(), "splits": entries,
        "source": splits.record.get("source", {}),
        "split_settings": {k: splits.record.get(k) for k in ("seed", "validation_fraction", "test_fraction", "max_train_per_class")},
    }
    records_lib.write_manifest(folder, manifest)
    return manifest


def text_splits_from_records(folder: str) -> TextSplits:
    """The texts, targets (user's units) and task a records folder holds, as a run on its source would have read them."""
    manifest = records_lib.read_manifest(folder)
    if manifest["payload"] != "text":
        raise ValueError(f"--records={folder} holds {manifest['payload']}s, not texts")
    spec = TargetSpec.from_dict(manifest["task"], manifest["names"])
    texts: dict[str, list[str]] = {}
    labels: dict[str, np.ndarray] = {}
    for split in SPLITS:
        rows = list(records_lib.examples_of(folder, manifest, split)) if split in manifest["splits"] else []
        texts[split] = [payload.decode("utf-8") for payload, _, _ in rows]
        targets = [target for _, target, _ in rows]
        if spec.kind == SINGLE_LABEL:
            labels[split] = np.asarray(targets, np.int64).reshape(-1)
        elif spec.kind == "regression":
            labels[split] = np.asarray(targets, np.float64).reshape(-1)
        else:
            labels[split] = np.asarray(targets, np.float32).reshape(len(rows), len(spec.names))
    digests = {split: entry["sha256"] for split, entry in manifest["splits"].items()}
    record = {
        "source": {"train": f"records:{storage.normal(folder)}"}, **(manifest.get("split_settings") or {}),
        "class_names": list(spec.names), "data_sha256": digests["train"], "data_sha256_by_split": {"train": digests["train"]},
        "records_sha256": digests, "counts": {split: entry["counts"] for split, entry in manifest["splits"].items()},
        "task": {k: v for k, v in spec.to_dict().items() if k != "thresholds"},
    }
    return TextSplits(list(spec.names), texts, labels, record, [], spec)
