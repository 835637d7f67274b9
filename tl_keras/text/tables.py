"""Labelled texts that do not start as files: a TFDS text dataset, or lists from Python, written as JSON Lines once.

A text run's contract (split.json with the data's hash, resume, the
TFLite parity check reading the held-out split again) is built on files, so
these sources become `<folder>/<split>.jsonl` (`{"text": ..., "label": ...}`
per line), streamed out one example at a time, and the run reads them like
any `--text_file`. TFDS rows whose label is -1 (GLUE's unlabelled test
splits) are left out, and a split with no labelled row is treated as absent.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

from tl_keras.io import atomic
from tl_keras.config.settings import ConfigError

SPLIT_FILES = ("train", "validation", "test")


def write_jsonl(path: str | os.PathLike, rows: Iterable[tuple[str, str]]) -> int:
    """Writes (text, label) rows as JSON Lines, atomically; returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = atomic.partial_path(path)
    count = 0
    with open(partial, "w", encoding="utf-8") as out:
        for text, label in rows:
            out.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
            count += 1
    os.replace(partial, path)
    return count


def lists_to_files(
    folder: str | os.PathLike, train: tuple[Sequence[str], Sequence], validation: tuple[Sequence[str], Sequence] | None = None,
    test: tuple[Sequence[str], Sequence] | None = None,
) -> dict[str, str]:
    """Writes (texts, labels) pairs (lists or arrays; labels as names, numbers or lists of tags) as JSON Lines; returns {split: path}.

    Raises:
        ValueError: texts and labels differ in length, or a text is not a string.
    """
    paths = {}
    for split, pair in (("train", train), ("validation", validation), ("test", test)):
        if pair is None:
            continue
        texts, labels = pair
        if len(texts) != len(labels):
            raise ValueError(f"{split}: {len(texts)} texts but {len(labels)} labels")
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise ValueError(f"{split}: text {bad} is a {type(texts[bad]).__name__}, not a str")
        paths[split] = str(Path(folder) / f"{split}.jsonl")
        write_jsonl(paths[split], zip(texts, (_label_text(label) for label in labels)))
    return paths


def _label_text(label) -> str:
    """A label as the file holds it: a class name or a number as written, a list of tags joined by `|`."""
    if isinstance(label, (list, tuple, set, frozenset)):
        return "|".join(str(tag) for tag in label)
    return str(label)


def tfds_to_files(name: str, folder: str | os.PathLike, data_dir: str | None = None, *, text_key: str = "", label_key: str = "") -> dict:
    """A TFDS text-classification dataset's labelled splits as JSON Lines in `folder` (kept: written once); returns {split: path}.

    Raises:
        ConfigError: the dataset has no text feature or no class label (named), or could not be prepared.
    """
    import tensorflow_datasets as tfds

    from tl_keras.data.tfds_prepare import prepare

    folder = Path(folder)
    done = folder / "tfds_source.json"
    asked = {"dataset": name, "text_key_asked": text_key, "label_key_asked": label_key}
    if done.is_file():
        written = json.loads(done.read_text())
        if all(written.get(key) == value for key, value in asked.items()):
            return written["files"]
        shutil.rmtree(folder)  # written for another dataset or other columns: never train on those
    builder = tfds.builder(name, data_dir=data_dir)
    prepare(builder, name, flag="--text_tfds")
    text_key, label_key = text_feature_keys(builder, text_key, label_key)
    names = builder.info.features[label_key].names
    files = {}
    for split in SPLIT_FILES:
        if split not in builder.info.splits:
            continue
        rows = _labelled_rows(tfds.as_numpy(builder.as_dataset(split=split)), text_key, label_key, names)
        path = folder / f"{split}.jsonl"
        if write_jsonl(path, rows):
            files[split] = str(path)
        else:
            path.unlink()
    if "train" not in files:
        raise ConfigError(f"--text_tfds={name}: no labelled train split")
    atomic.write_json(done, {**asked, "text_key": text_key, "label_key": label_key, "class_names": list(names), "files": files})
    return files


def tfds_class_order(folder: str | os.PathLike) -> list[str] | None:
    """The ClassLabel names of the dataset written in `folder`, in the dataset's own order (output k is label k), if recorded."""
    done = Path(folder) / "tfds_source.json"
    return json.loads(done.read_text()).get("class_names") if done.is_file() else None


def _labelled_rows(examples, text_key: str, label_key: str, names: list[str]):
    for example in examples:
        label = int(example[label_key])
        if label >= 0:
            yield example[text_key].decode("utf-8", errors="replace"), names[label]


def text_feature_keys(builder, text_key: str = "", label_key: str = "") -> tuple[str, str]:
    """(text feature, label feature): as given, else the supervised keys, else the only Text / ClassLabel feature.

    Raises:
        ConfigError: not found, or ambiguous (the candidates are named).
    """
    import tensorflow_datasets as tfds

    features = builder.info.features
    supervised = builder.info.supervised_keys or ()
    text_supervised = len(supervised) == 2 and supervised[0] in features and isinstance(features[supervised[0]], tfds.features.Text)
    if text_supervised and not (text_key or label_key):
        return supervised[0], supervised[1]
    found = {}
    for kind, given, wanted in (("text", text_key, tfds.features.Text), ("label", label_key, tfds.features.ClassLabel)):
        candidates = [k for k, f in features.items() if isinstance(f, wanted)]
        if given:
            if given not in features:
                raise ConfigError(f"--text_tfds={builder.name}: no feature {given!r}; features: {sorted(features)}")
            found[kind] = given
        elif len(candidates) == 1:
            found[kind] = candidates[0]
        else:
            raise ConfigError(f"--text_tfds={builder.name}: {len(candidates)} {kind} features {candidates}; name one with --{kind}_column")
    return found["text"], found["label"]
