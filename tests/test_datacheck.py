"""The data check on a folder of every kind of bad file: each reported right, training runs, nothing raises."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tl_keras.config.run_config import recipe_config
from tl_keras.vision import datacheck
from tl_keras.vision import data as data_lib
from tl_keras.run import run_experiment


def _save(path, image, fmt, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def messy_folder(tmp_path):
    """Two usable classes holding one of each troublesome file, an empty class and a hidden file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "messy"

    def rgb(colour):
        noise = rng.integers(-20, 20, size=(28, 28, 3))
        return Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8))

    for name, colour in (("cats", (200, 60, 60)), ("dogs", (60, 60, 200))):
        for i in range(6):
            _save(root / name / f"good_{i}.jpg", rgb(colour), "JPEG")
    cats = root / "cats"
    good_jpeg = (cats / "good_0.jpg").read_bytes()
    (cats / "truncated.jpg").write_bytes(good_jpeg[: len(good_jpeg) // 3])
    (cats / "zero.jpg").write_bytes(b"")
    (cats / "text.png").write_text("not an image at all")
    _save(cats / "cmyk.jpg", rgb((200, 60, 60)).convert("CMYK"), "JPEG")
    _save(cats / "deep.png", Image.fromarray((rng.integers(0, 65535, size=(28, 28))).astype(np.uint16)), "PNG")
    _save(cats / "gray.png", rgb((200, 60, 60)).convert("L"), "PNG")
    _save(cats / "alpha.png", rgb((200, 60, 60)).convert("RGBA"), "PNG")
    frames = [rgb((200, 60, 60)).convert("P"), rgb((60, 200, 60)).convert("P")]
    frames[0].save(cats / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    _save(cats / "bitmap.bmp", rgb((200, 60, 60)), "BMP")
    _save(root / "dogs" / "huge.jpg", Image.new("RGB", (8000, 8000), (60, 60, 200)), "JPEG", quality=50)
    _save(root / "dogs" / "copy_of_cat.jpg", Image.open(io.BytesIO(good_jpeg)), "JPEG")
    (root / "dogs" / "copy_exact.jpg").write_bytes((root / "dogs" / "good_0.jpg").read_bytes())
    (root / "birds").mkdir()
    (cats / ".DS_Store").write_bytes(b"\x00\x01finder junk")
    return root


def test_each_bad_file_is_reported_for_what_it_is(messy_folder, tmp_path):
    report_file = tmp_path / "run" / "data_report.json"
    splits = data_lib.load_image_folder(
        messy_folder, 0.25, 0.0, seed=0, report_file=report_file, split_file=tmp_path / "run" / "split.json"
    )
    report = json.loads(report_file.read_text())
    skipped = {reason: sorted(p.split("/")[-1] for p in paths) for reason, paths in report["skipped"].items()}
    assert skipped == {"empty_file": ["zero.jpg"], "not_an_image": ["text.png"], "truncated": ["truncated.jpg"]}
    noted = {note: sorted(p.split("/")[-1] for p in paths) for note, paths in report["converted_or_noted"].items()}
    assert noted["cmyk"] == ["cmyk.jpg"]
    assert noted["16_bit"] == ["deep.png"]
    assert "gray.png" in noted["grayscale"] and "deep.png" in noted["grayscale"]
    assert noted["alpha"] == ["alpha.png"]
    assert noted["animated_first_frame_used"] == ["animated.gif"]
    assert noted["large"] == ["huge.jpg"]
    assert report["empty_class_folders"][0].endswith("birds")
    assert any(p.endswith(".DS_Store") for p in report["ignored_files"])
    assert report["class_counts"] == {"cats": 12, "dogs": 9}
    assert splits.class_names == ["cats", "dogs"], "the empty folder is not a class"
    exact = [g for g in report["duplicates"] if any(p.endswith("copy_exact.jpg") for p in g["paths"])]
    assert len(exact) == 1 and len(exact[0]["paths"]) == 2


def test_kept_files_decode_to_rgb_uint8(messy_folder):
    checks = {c.path.split("/")[-1]: c for c in datacheck.check_files(
        [str(p) for p in sorted((messy_folder / "cats").iterdir())], [0] * 16, ["cats"]
    ).checks}
    assert checks["bitmap.bmp"].ok and checks["bitmap.bmp"].size == (28, 28)
    splits = data_lib.load_image_folder(messy_folder, 0.0, 0.0, seed=0)
    batches = data_lib.make_batches(splits.train, 16, 8, num_examples=splits.size("train"))
    images = np.concatenate([x.numpy() for x, _ in batches])
    assert images.shape == (21, 16, 16, 3) and images.dtype == np.uint8


@pytest.mark.slow
def test_training_on_a_messy_folder_runs_on_the_good_files(messy_folder, tmp_path):
    config = recipe_config("digits",
        image_dir=str(messy_folder), backbone="small_cnn", weights="none", image_size=16, frozen_epochs=1, fine_tune_epochs=1,
        batch_size=4, validation_fraction=0.25, test_fraction=0.0, compare_scratch=False, export=False, verbose=0,
        run_dir=str(tmp_path / "run"),
    )
    summary = run_experiment(config)
    assert summary["classes"] == ["cats", "dogs"]
    assert sum(summary["counts"]["train"].values()) + sum(summary["counts"]["validation"].values()) == 21
    assert (tmp_path / "run" / "data_report.json").is_file()


def test_too_few_usable_images_stops_naming_the_folder(messy_folder):
    with pytest.raises(ValueError, match=r"class folder .*dogs has 9 usable image\(s\); need at least 10"):
        data_lib.load_image_folder(messy_folder, min_images_per_class=10)


def test_duplicates_across_splits_are_flagged(image_folder):
    source = image_folder / "red" / "red_0.png"
    (image_folder / "red" / "red_dup.png").write_bytes(source.read_bytes())
    report = datacheck.check_files([str(source), str(image_folder / "red" / "red_dup.png")], [0, 0], ["red"])
    groups = report.duplicates({str(source): "train", str(image_folder / "red" / "red_dup.png"): "test"})
    assert groups and groups[0]["across_splits"] is True


@pytest.mark.slow
def test_check_data_script_writes_the_report(messy_folder, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import REPO

    report = tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "check_data.py"), f"--image_dir={messy_folder}", f"--report={report}"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "21 of 24 files usable" in result.stdout
    assert json.loads(report.read_text())["skipped"]["truncated"][0].endswith("truncated.jpg")
    missing = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "check_data.py")], capture_output=True, text=True, env=env, timeout=120
    )
    assert missing.returncode == 2 and "--text_dir, --audio_dir or --audio_file is required" in missing.stderr


@pytest.mark.slow  # a subprocess
def test_check_data_script_reports_texts_as_training_would_read_and_split_them(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import REPO

    rows = [f"review number {i} {'was great fun' if i % 2 else 'was dull'}" for i in range(40)]
    (tmp_path / "train.csv").write_text("text,label\n" + "".join(f"{t},{'pos' if i % 2 else 'neg'}\n" for i, t in enumerate(rows))
                                        + "a row without its label,\n")
    (tmp_path / "test.csv").write_text(f"text,label\n{rows[1]},pos\nsomething new and dull,neg\n")
    report = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "check_data.py"), f"--text_file={tmp_path / 'train.csv'}",
         f"--test_file={tmp_path / 'test.csv'}", f"--report={report}"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    written = json.loads(report.read_text())
    assert written["skipped"] == [f"{tmp_path / 'train.csv'}:42: missing label; skipped"]
    assert written["counts"]["test"] == {"neg": 1, "pos": 1} and written["duplicates_in_train"]["test"] == 1
    assert sum(sum(c.values()) for c in written["counts"].values()) == 42  # 40 read from train (split 80:20), 2 from test
    assert written["lengths"]["train"]["percentiles"]["100"] == 6 and written["length_unit"] == "words"
    assert "test: 1 text also in train" in result.stdout and "42 texts usable, 1 line skipped" in result.stdout
    assert "W1" not in result.stderr  # the skipped row is printed once, not logged again


def test_a_truncated_photo_is_reported_without_the_decoders_stderr(tmp_path, capfd):
    """A cut-short JPEG is named in the report, and libjpeg's own messages ("Improper call to JPEG library") stay off the terminal."""
    photo = _save(tmp_path / "photo.jpg", Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")
    for length in (600, photo.stat().st_size // 2):
        cut = tmp_path / f"cut_{length}.jpg"
        cut.write_bytes(photo.read_bytes()[:length])
        capfd.readouterr()
        check = datacheck.check_file(str(cut), 0)
        assert (check.ok, check.reason) == (False, "truncated")
        assert "JPEG" not in capfd.readouterr().err


def test_skipped_files_are_announced_in_the_log(messy_folder, tmp_path, caplog):
    """The run's log says how many files were skipped and why, not only data_report.json."""
    caplog.set_level("WARNING")
    data_lib.load_image_folder(messy_folder, 0.25, 0.0, seed=0, report_file=tmp_path / "r" / "data_report.json",
                               split_file=tmp_path / "r" / "split.json")
    line = next(r.getMessage() for r in caplog.records if "files skipped" in r.getMessage())
    assert line.startswith("3 of ") and "1 empty file, 1 not an image, 1 truncated" in line and "data_report.json" in line


def test_an_unchanged_file_is_judged_once_and_an_edited_one_again(tmp_path, image_folder, monkeypatch):
    """The verdicts are remembered by path, size and modification time: a rerun opens only what changed."""
    from tl_keras.vision import datacheck

    monkeypatch.setenv("TL_KERAS_CACHE", str(tmp_path / "cache"))
    paths = sorted(str(p) for p in image_folder.rglob("*.png"))
    first = datacheck.check_files(paths, [0] * len(paths), ["any"])
    opened = []
    original = datacheck.check_file

    def counting(path, label):
        opened.append(path)
        return original(path, label)

    monkeypatch.setattr(datacheck, "check_file", counting)
    again = datacheck.check_files(paths, [1] * len(paths), ["a", "b"])
    assert opened == []
    assert [(c.path, c.ok, c.sha256, c.size) for c in again.checks] == [(c.path, c.ok, c.sha256, c.size) for c in first.checks]
    assert {c.label for c in again.checks} == {1}  # the label is the caller's, never the store's
    Path(paths[0]).write_bytes(b"not an image any more")
    edited = datacheck.check_files(paths, [0] * len(paths), ["any"])
    assert opened == [paths[0]] and not edited.checks[0].ok
    monkeypatch.setenv("TL_KERAS_CACHE", "off")
    datacheck.check_files(paths[:2], [0, 0], ["any"])
    assert opened[1:] == paths[:2]
