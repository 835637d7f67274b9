"""Sharded records: a source written once, split as a run splits it, read back with the same classes, splits and counts."""

import json
import uuid

import numpy as np
import pytest

from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import ConfigError, DataSettings
from tl_keras.data import records as records_lib


def _write_images(image_folder, folder, shards=3):
    from tl_keras.vision.records import write_image_records

    from tl_keras.vision.data import load_data

    data = DataSettings(image_dir=str(image_folder), seed=3)
    return write_image_records(load_data(data), data, str(folder), shards)


def test_image_records_hold_the_folders_split_and_read_back_as_it(tmp_path, image_folder):
    from tl_keras.vision.data import load_data
    from tl_keras.vision.records import load_image_records

    manifest = _write_images(image_folder, tmp_path / "records")
    folder_splits = load_data(DataSettings(image_dir=str(image_folder), seed=3))
    assert manifest["names"] == folder_splits.class_names == ["blue", "green", "red"]
    assert {s: e["counts"] for s, e in manifest["splits"].items()} == folder_splits.counts
    assert len(manifest["splits"]["train"]["shards"]) == 3
    read = load_image_records(str(tmp_path / "records"), seed=3)
    assert read.counts == folder_splits.counts and read.class_names == folder_splits.class_names
    for split in ("train", "validation", "test"):
        ours = [(image.shape, int(label)) for image, label in getattr(read, split).as_numpy_iterator()]
        theirs = [(image.shape, int(label)) for image, label in getattr(folder_splits, split).as_numpy_iterator()]
        assert ours == theirs, split  # the same images in the same order, decoded alike
    epochs = {e: [int(y) for _, y in read.epoch_sources["train"](e).as_numpy_iterator()] for e in (0, 1)}
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(int(y) for _, y in read.train.as_numpy_iterator())
    assert epochs[0] != epochs[1]
    assert epochs[0] == [int(y) for _, y in read.epoch_sources["train"](0).as_numpy_iterator()]  # a function of (seed, epoch)


def test_a_records_folder_with_a_missing_shard_is_refused_in_one_line(tmp_path, image_folder):
    manifest = _write_images(image_folder, tmp_path / "records")
    (tmp_path / "records" / manifest["splits"]["train"]["shards"][1]).unlink()
    with pytest.raises(ConfigError, match=r"--records=.*train shard .* is missing \(1 of 3\)"):
        records_lib.read_manifest(str(tmp_path / "records"))
    with pytest.raises(ConfigError, match="no manifest.json"):
        RunConfig(records=str(tmp_path)).resolved().validate()


def test_text_records_read_back_as_the_table_splits(tmp_path):
    from text_fixtures import sentences
    from tl_keras.text.records import text_splits_from_records, write_text_records
    from tl_keras.text.run import read_splits

    table = tmp_path / "reviews.tsv"
    table.write_text("sentence\tlabel\n" + "".join(f"{t}\t{label}\n" for t, label in sentences(50)))
    splits = read_splits(RunConfig(text_file=str(table), seed=4))
    write_text_records(splits, str(tmp_path / "records"), shards=4)
    back = text_splits_from_records(str(tmp_path / "records"))
    assert back.class_names == splits.class_names and back.counts == splits.counts
    for split in ("train", "validation", "test"):
        assert back.texts[split] == splits.texts[split], split
        np.testing.assert_array_equal(back.labels[split], splits.labels[split])


@pytest.mark.slow
def test_a_run_on_records_in_a_bucket_matches_the_run_on_the_folder(tmp_path, image_folder, monkeypatch):
    """Records written to an object store (ram://) train a run with the folder run's classes and counts; both learn."""
    from tl_keras.run import run_experiment

    monkeypatch.setenv("TL_KERAS_MIRRORS", str(tmp_path / "mirrors"))
    bucket = f"ram://{uuid.uuid4().hex}"
    _write_images(image_folder, f"{bucket}/records", shards=4)
    common = dict(backbone="small_cnn", weights="none", image_size=16, fine_tune_epochs=1, fine_tune_min_steps=0, frozen_epochs=2,
                  batch_size=8, export=False, verbose=0, seed=3)
    on_folder = run_experiment(RunConfig(image_dir=str(image_folder), run_dir=str(tmp_path / "folder"), **common))
    on_records = run_experiment(RunConfig(records=f"{bucket}/records", run_dir=str(tmp_path / "records"), name="images", **common))
    assert on_records["classes"] == on_folder["classes"] and on_records["counts"] == on_folder["counts"]
    assert on_folder["transfer_accuracy"] >= 0.8 and on_records["transfer_accuracy"] >= 0.8
    split = json.loads((tmp_path / "records" / "split.json").read_text())
    assert split["source"] == f"records:{bucket}/records"


@pytest.mark.slow
def test_make_records_writes_a_folder_once_and_refuses_to_write_over_it(tmp_path, image_folder):
    import subprocess
    import sys

    from conftest import REPO

    command = [sys.executable, str(REPO / "experiments" / "make_records.py"), f"--image_dir={image_folder}",
               f"--output_dir={tmp_path / 'records'}", "--shards=2"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "train: 27 images in 2 shards" in done.stdout and f"--records={tmp_path / 'records'}" in done.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode != 0 and "is not empty" in again.stderr


def test_tags_and_values_from_a_labels_file_go_into_records_in_the_users_units_and_come_back_as_trained(tmp_path, image_folder):
    """A labels file's values are written as the user wrote them; read back, they are the standardised targets a run trains
    on, with the spec (names, mean, spread) of the folder's run."""
    from tl_keras.vision.data import load_data
    from tl_keras.vision.records import load_image_records, write_image_records

    files = sorted(p.relative_to(image_folder).as_posix() for p in image_folder.rglob("*.png"))
    labels = tmp_path / "values.csv"
    labels.write_text("filename,value\n" + "".join(f"{name},{1.5 * i}\n" for i, name in enumerate(files)))
    data = DataSettings(image_dir=str(image_folder), labels_file=str(labels), seed=2)
    splits = load_data(data)
    manifest = write_image_records(splits, data, str(tmp_path / "records"), shards=2)
    assert manifest["target"] == "value" and manifest["task"]["kind"] == "regression"
    back = load_image_records(str(tmp_path / "records"), seed=2)
    assert back.target.kind == "regression" and back.target.mean == pytest.approx(splits.target.mean)
    ours = np.array([float(y) for _, y in back.train.as_numpy_iterator()])
    theirs = np.array([float(y) for _, y in splits.train.as_numpy_iterator()])
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
