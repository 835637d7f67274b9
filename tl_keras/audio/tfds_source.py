"""A TFDS audio dataset by name (`--audio_tfds=speech_commands`) as WAV files and a table, written once into the run folder.

The clips are written as 16-bit PCM WAV at the dataset's own rate, with a
`path,label,split` table, so every later step (the data check, the split
record, `evaluate.py`, resume) reads them like any `--audio_file`. The
dataset's own train, validation and test splits are kept; when it has no
validation split, the split cells of its training clips are left empty and
`--validation_fraction` takes them (stratified by class).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np

from tl_keras.config.settings import ConfigError
from tl_keras.io import atomic

SPLITS = ("train", "validation", "test")


def tfds_to_table(name: str, folder: str | Path, data_dir: str | None = None) -> Path:
    """The TFDS dataset `name` as WAV files and `folder/clips.csv` (kept: written once per dataset); returns the table's path.

    Raises:
        ConfigError: the dataset has no audio feature or no class label (named), no train split, or could not be prepared.
    """
    import tensorflow_datasets as tfds

    from tl_keras.audio.export import wav_bytes
    from tl_keras.data.tfds_prepare import prepare

    folder = Path(folder)
    done = folder / "tfds_source.json"
    if done.is_file():
        written = json.loads(done.read_text())
        if written.get("dataset") == name:
            return folder / written["table"]
        shutil.rmtree(folder)  # written for another dataset: never train on it
    builder = tfds.builder(name, data_dir=data_dir)
    prepare(builder, name, flag="--audio_tfds")
    audio_key, label_key = _feature_keys(builder, name)
    rate = int(getattr(builder.info.features[audio_key], "sample_rate", 0) or 16000)
    names = builder.info.features[label_key].names
    splits = [s for s in SPLITS if s in builder.info.splits]
    if "train" not in splits:
        raise ConfigError(f"--audio_tfds={name}: no train split (it has {', '.join(builder.info.splits)})")
    rows = []
    for split in splits:
        for i, example in enumerate(tfds.as_numpy(builder.as_dataset(split=split))):
            label = int(example[label_key])
            if label < 0:
                continue
            samples = np.asarray(example[audio_key], np.float32)
            if np.issubdtype(np.asarray(example[audio_key]).dtype, np.integer):
                samples = samples / 32768.0
            path = folder / split / names[label] / f"{i}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(wav_bytes(samples.reshape(-1) if samples.ndim == 1 else samples.mean(axis=-1), rate))
            rows.append((str(path.relative_to(folder)), names[label], split if "validation" in splits or split != "train" else ""))
    table = folder / "clips.csv"
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "split"])
        writer.writerows(rows)
    atomic.write_json(done, {"dataset": name, "audio_key": audio_key, "label_key": label_key, "sample_rate": rate,
                             "class_names": list(names), "table": table.name})
    return table


def _feature_keys(builder, name: str) -> tuple[str, str]:
    """(audio feature, label feature): the supervised keys, else the only Audio and ClassLabel features."""
    import tensorflow_datasets as tfds

    features = builder.info.features
    supervised = builder.info.supervised_keys or ()
    if len(supervised) == 2 and isinstance(features[supervised[0]], tfds.features.Audio):
        return supervised[0], supervised[1]
    audio = [k for k, f in features.items() if isinstance(f, tfds.features.Audio)]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if len(audio) != 1 or len(labels) != 1:
        raise ConfigError(f"--audio_tfds={name}: needs one Audio and one ClassLabel feature; it has audio {audio} and labels {labels}")
    return audio[0], labels[0]
