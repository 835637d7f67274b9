"""Data sources and splits: stratified, seeded, recorded, and robust to unreadable files."""

import dataclasses
import json

import numpy as np
import pytest

from tl_keras.vision import data as data_lib


def test_stratified_split_keeps_class_proportions_and_is_seeded():
    labels = np.repeat(np.arange(3), [50, 30, 20])
    parts = data_lib.stratified_split(labels, 0.2, 0.1, seed=7)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(100)), "a partition"
    assert np.bincount(labels[parts["validation"]]).tolist() == [10, 6, 4]
    assert np.bincount(labels[parts["test"]]).tolist() == [5, 3, 2]
    again = data_lib.stratified_split(labels, 0.2, 0.1, seed=7)
    other = data_lib.stratified_split(labels, 0.2, 0.1, seed=8)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    assert not np.array_equal(parts["train"], other["train"])


def test_tiny_class_keeps_a_training_example():
    labels = np.array([0] * 10 + [1])
    parts = data_lib.stratified_split(labels, 0.3, 0.3, seed=0)
    assert 10 in parts["train"]


def test_digits_target_task_has_few_labels_and_disjoint_splits():
    splits = data_lib.load_builtin("digits_5_9", seed=3)
    assert splits.class_names == ["5", "6", "7", "8", "9"]
    assert splits.counts["train"] == {c: 20 for c in splits.class_names}
    record = splits.split_record
    assert not set(record["train"]) & set(record["test"]) and not set(record["validation"]) & set(record["test"])
    image, label = next(iter(splits.train))
    assert image.dtype.name == "uint8" and image.shape == (8, 8, 3) and 0 <= int(label) < 5


@pytest.mark.slow  # several seconds: the full suite runs it
def test_image_folder_split_is_reused_only_with_the_settings_that_made_it(image_folder, tmp_path):
    split_file = tmp_path / "run" / "split.json"
    first = data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=1, split_file=split_file)
    assert first.class_names == ["blue", "green", "red"]
    assert first.counts["validation"] == {"blue": 3, "green": 3, "red": 3}
    recorded = json.loads(split_file.read_text())
    assert (recorded["seed"], recorded["validation_fraction"], recorded["test_fraction"]) == (1, 0.25, 0.25)
    again = data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=1, split_file=split_file)
    assert again.split_record["test"] == recorded["test"]
    with pytest.raises(data_lib.SplitMismatchError, match=r"seed: recorded 1, now 99.*--overwrite"):
        data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=99, split_file=split_file)
    with pytest.raises(data_lib.SplitMismatchError, match=r"validation_fraction: recorded 0.25, now 0.3"):
        data_lib.load_image_folder(image_folder, 0.3, 0.25, seed=1, split_file=split_file)
    assert json.loads(split_file.read_text()) == recorded, "a refused reuse loses nothing"


def test_unreadable_files_are_skipped_even_without_the_data_check(image_folder):
    (image_folder / "red" / "broken.png").write_bytes(b"this is not a png")
    (image_folder / "red" / ".hidden.png").write_bytes(b"ignored entirely")
    splits = data_lib.load_image_folder(image_folder, 0.0, 0.0, seed=0, check=False)
    assert splits.size("train") == 37, "unchecked, the broken file is listed; the hidden one never is"
    batches = data_lib.make_batches(splits.train, 16, 8, num_examples=splits.size("train"))
    images = np.concatenate([x.numpy() for x, _ in batches])
    assert images.shape == (36, 16, 16, 3) and images.dtype == np.uint8


def test_folder_errors_name_the_folder(tmp_path):
    from conftest import write_png

    write_png(tmp_path / "loose.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="has 0 class folder.*the 1 image directly in it belongs in a sub-folder named after the class"):
        data_lib.scan_image_folder(tmp_path)
    (tmp_path / "loose.png").unlink()
    write_png(tmp_path / "only_class" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="has 1 class folder"):
        data_lib.scan_image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match=r"has 1 class folder.*\(empty: .*empty_class\)"):
        data_lib.scan_image_folder(tmp_path)
    write_png(tmp_path / "second" / "b.png", np.zeros((4, 4, 3), np.uint8))
    scan = data_lib.scan_image_folder(tmp_path)
    assert scan.class_names == ["only_class", "second"] and scan.empty_class_folders[0].endswith("empty_class")


def test_a_folder_of_split_folders_is_refused_with_the_flags_that_read_it(image_folder, tmp_path):
    """photos/{train,val,test}/<class>/ read as classes would train "train" against "test"; the error says what to pass."""
    import shutil

    root = tmp_path / "photos"
    for split in ("train", "val", "test"):
        shutil.copytree(image_folder, root / split)
    with pytest.raises(ValueError, match=(
        rf"--image_dir={root}: its sub-folders test, train, val are splits holding class folders \(blue, green, red\), not classes; "
        rf"pass --image_dir={root / 'train'} --validation_dir={root / 'val'}; then experiments/evaluate.py .*--image_dir={root / 'test'}"
    )):
        data_lib.scan_image_folder(root)
    splits = data_lib.load_image_folder(root / "train", 0.2, 0.0, validation_dir=root / "val", check=False)  # what it advises works
    assert splits.class_names == ["blue", "green", "red"]
    # A class that happens to be called "train" (a locomotive) beside other classes is a class.
    shutil.copytree(image_folder / "red", tmp_path / "vehicles" / "train")
    shutil.copytree(image_folder / "blue", tmp_path / "vehicles" / "bus")
    assert data_lib.scan_image_folder(tmp_path / "vehicles").class_names == ["bus", "train"]


def test_unknown_builtin_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="known: flowers, digits_0_4, digits_5_9, digits"):
        data_lib.load_builtin("mnist")


def test_arrays_and_npz_become_uint8_rgb_splits(tmp_path):
    rng = np.random.default_rng(0)
    floats = rng.random((30, 10, 12)).astype(np.float32)  # grayscale in [0, 1]
    labels = np.repeat([0, 1, 2], 10)
    splits = data_lib.load_arrays(floats, labels, ["a", "b", "c"], 0.2, 0.0, seed=0)
    image, _ = next(iter(splits.train))
    assert image.dtype.name == "uint8" and image.shape == (10, 12, 3)
    assert splits.counts["validation"] == {"a": 2, "b": 2, "c": 2}
    np.savez(tmp_path / "d.npz", x=(floats * 255).astype(np.uint8), y=labels, class_names=np.array(["a", "b", "c"]))
    from_npz = data_lib.load_npz(tmp_path / "d.npz", 0.2, 0.0, seed=0)
    assert from_npz.class_names == ["a", "b", "c"] and from_npz.size("train") == 24
    with pytest.raises(ValueError, match="needs arrays named images"):
        np.savez(tmp_path / "bad.npz", pixels=floats)
        data_lib.load_npz(tmp_path / "bad.npz")


def test_float_arrays_keep_their_whole_range():
    """[-1, 1] arrays (already normalised for a backbone) were clipped at 0, losing half their range."""
    from tl_keras.vision.arrays import _to_uint8

    ramp = np.linspace(-1.0, 1.0, 5, dtype=np.float32).reshape(1, 1, 5, 1)
    assert _to_uint8(ramp).ravel().tolist() == [0, 64, 128, 191, 255]
    assert _to_uint8(np.array([[[[0.0, 0.5, 1.0]]]])).ravel().tolist() == [0, 128, 255]
    assert _to_uint8(np.array([[[[0.0, 127.4, 255.0]]]])).ravel().tolist() == [0, 127, 255]
    with pytest.raises(ValueError, match="run from -3 to 300"):
        _to_uint8(np.array([[[[-3.0, 300.0]]]]))


def test_balanced_class_weights():
    weights = data_lib.balanced_class_weights({"a": 30, "b": 10}, ["a", "b"])
    assert weights == pytest.approx({0: 40 / 60, 1: 40 / 20})
    with pytest.raises(ValueError, match=r"\['b'\] have no training examples"):
        data_lib.balanced_class_weights({"a": 3}, ["a", "b"])


def test_disk_cache_is_written_and_reused(image_folder, tmp_path):
    splits = data_lib.load_image_folder(image_folder, 0.0, 0.0, seed=0)
    path = tmp_path / "cache" / "train"
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "train.images.npy.partial").write_bytes(b"left by a killed run")
    first = [x.numpy() for x, _ in data_lib.make_batches(splits.train, 16, 64, cache="disk", cache_path=path)]
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["train.images.npy", "train.labels.npy"]
    stamp = (tmp_path / "cache" / "train.images.npy").stat().st_mtime_ns
    second = [x.numpy() for x, _ in data_lib.make_batches(splits.train, 16, 64, cache="disk", cache_path=path)]
    np.testing.assert_array_equal(np.concatenate(first), np.concatenate(second))
    assert (tmp_path / "cache" / "train.images.npy").stat().st_mtime_ns == stamp, "the complete store is reused, not rewritten"


def test_limit_train_per_class_keeps_the_budget_and_the_held_out_splits():
    splits = data_lib.load_builtin("digits_5_9", seed=0)
    limited = data_lib.limit_train_per_class(splits, 5, seed=1)
    labels = np.array([int(y) for _, y in limited.train])
    assert np.bincount(labels).tolist() == [5] * 5
    assert limited.counts["train"] == {c: 5 for c in splits.class_names}
    assert limited.counts["test"] == splits.counts["test"] and limited.validation is splits.validation
    again = data_lib.limit_train_per_class(splits, 5, seed=1)
    assert again.split_record["train_kept_positions"] == limited.split_record["train_kept_positions"]
    assert data_lib.limit_train_per_class(splits, 0) is splits


@pytest.mark.slow  # several seconds: the full suite runs it
def test_separate_validation_tree_trains_on_all_of_image_dir(image_folder, tmp_path):
    import shutil

    held = tmp_path / "held"
    for class_dir in image_folder.iterdir():
        (held / class_dir.name).mkdir(parents=True)
        for png in sorted(class_dir.iterdir())[:10]:
            shutil.copy(png, held / class_dir.name / f"held_{png.name}")
    (held / "red" / "broken.png").write_bytes(b"not a png")
    splits = data_lib.load_image_folder(image_folder, 0.5, 0.2, seed=0, validation_dir=held)
    record = splits.split_record
    assert len(record["train"]) == 36 and all(str(image_folder) in p for p in record["train"])
    assert len(record["validation"]) == 24 and len(record["test"]) == 6, "test_fraction of the 30 readable held-out files"
    assert all(str(held) in p for p in record["validation"] + record["test"])
    assert splits.counts["test"] == {"red": 2, "green": 2, "blue": 2}
    (held / "purple").mkdir()
    shutil.copy(next((held / "red").glob("held_*")), held / "purple" / "x.png")
    with pytest.raises(ValueError, match="--validation_dir .* has class folders"):
        data_lib.load_image_folder(image_folder, 0.5, 0.2, seed=0, validation_dir=held)


@pytest.mark.slow
def test_a_rerun_with_overwrite_after_the_folder_changed_trains_on_the_new_images(image_folder, tmp_path):
    """The disk image cache was reused by settings alone: a changed folder trained and tested on the old arrays."""
    from tl_keras.config.run_config import recipe_config
    from tl_keras.run import run_experiment

    config = recipe_config("digits",
        image_dir=str(image_folder), backbone="small_cnn", weights="none", image_size=16, frozen_epochs=1, fine_tune_epochs=1,
        batch_size=4, validation_fraction=0.25, test_fraction=0.0, cache="disk", compare_scratch=False, export=False, verbose=0,
        run_dir=str(tmp_path / "run"),
    )
    first = run_experiment(config)
    for path in sorted((image_folder / "red").iterdir())[:6]:
        path.unlink()
    second = run_experiment(dataclasses.replace(config, overwrite=True))
    assert second["counts"]["train"]["red"] < first["counts"]["train"]["red"]
    labels_files = sorted((tmp_path / "run" / "cache").glob("train_*.labels.npy"))
    assert len(labels_files) == 1  # the first run's arrays went with --overwrite
    cached = np.load(labels_files[0])
    assert np.bincount(cached, minlength=3).tolist() == [second["counts"]["train"][c] for c in second["classes"]]


@pytest.mark.slow  # several seconds: the full suite runs it
def test_files_added_after_the_split_was_recorded_are_named_not_silently_dropped(image_folder, tmp_path, caplog):
    split_file = tmp_path / "run" / "split.json"
    data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=1, split_file=split_file)
    (image_folder / "red" / "red_new.png").write_bytes((image_folder / "green" / "green_1.png").read_bytes())
    with caplog.at_level("WARNING"):
        again = data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=1, split_file=split_file)
    assert sum(again.counts["train"].values()) == 18  # the recorded split, as before
    messages = [r.getMessage() for r in caplog.records]
    assert any("1 usable file(s)" in m and "red_new.png" in m and "--overwrite" in m for m in messages), messages


def test_byte_identical_images_in_two_splits_are_warned_about_in_the_log(image_folder, tmp_path, caplog):
    for i in range(12):
        (image_folder / "blue" / f"copy_{i}.png").write_bytes((image_folder / "blue" / f"blue_{i}.png").read_bytes())
    with caplog.at_level("WARNING"):
        data_lib.load_image_folder(image_folder, 0.25, 0.25, seed=1, report_file=tmp_path / "data_report.json")
    assert any("byte-identical images sit in more than one split" in r.getMessage() for r in caplog.records)
