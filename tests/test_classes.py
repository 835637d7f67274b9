"""Folder labels reach a model by class name, never by position."""

import json

import numpy as np
import pytest

from tl_keras.export.classes import ClassMismatchError, absent_classes, align, classes_or_error, model_classes, require_same_classes


def test_align_maps_by_name_whatever_the_folder_holds():
    model = ["cat", "dog", "fox"]
    np.testing.assert_array_equal(align(model, ["cat", "dog", "fox"]), [0, 1, 2])
    np.testing.assert_array_equal(align(model, ["cat", "fox"]), [0, 2], err_msg="a missing class must not shift the next one")
    np.testing.assert_array_equal(align(model, ["fox", "cat"]), [2, 0])
    assert absent_classes(model, ["cat", "fox"]) == ["dog"]
    refusal = r"--image_dir /x has classes the model does not predict: owl \(the model's classes: cat, dog, fox\)"
    with pytest.raises(ClassMismatchError, match=refusal):
        align(model, ["cat", "owl"], data="--image_dir /x")


def test_model_classes_come_from_what_the_model_was_saved_with(tmp_path):
    export = tmp_path / "saved_models" / "pets"
    (export / "3" / "assets.extra").mkdir(parents=True)
    (export / "3" / "assets.extra" / "labels.txt").write_text("dog\ncat\n")
    (export / "3" / "saved_model.pb").write_bytes(b"")
    assert model_classes(export) == ["dog", "cat"], "a model folder means its latest version"
    assert model_classes(export / "3" / "assets.extra" / "model.keras") == ["dog", "cat"]
    run = tmp_path / "run"
    run.mkdir()
    (run / "split.json").write_text(json.dumps({"class_names": ["b", "a"]}))
    assert model_classes(run) == ["b", "a"]
    (run / "summary.json").write_text(json.dumps({"classes": ["a", "b"]}))
    assert model_classes(run) == ["a", "b"], "the finished run's summary comes first"
    lone = tmp_path / "lone" / "model.keras"
    lone.parent.mkdir()
    lone.write_bytes(b"")
    with pytest.raises(ClassMismatchError, match="--model: cannot tell which classes .* write labels.txt"):
        classes_or_error(lone, "--model")


def test_a_teacher_or_init_model_must_have_the_datas_classes_not_just_their_count(tmp_path):
    """A 5-class flower model was accepted for any 5-class folder (--teacher, --init_from), and a reordered head silently."""
    (tmp_path / "labels.txt").write_text("daisy\ndandelion\nroses\nsunflowers\ntulips\n")
    flowers = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    require_same_classes(tmp_path / "model.keras", flowers, "--teacher")
    both_lists = r"^--teacher: .* predicts \[daisy, dandelion, .*\] but the data's classes are \[a, b, c, d, e\]"
    with pytest.raises(ClassMismatchError, match=both_lists):
        require_same_classes(tmp_path / "model.keras", ["a", "b", "c", "d", "e"], "--teacher")
    with pytest.raises(ClassMismatchError, match="same classes in the same order"):
        require_same_classes(tmp_path / "model.keras", flowers[::-1], "--init_from")


def test_labels_files_are_read_one_way_everywhere(tmp_path):
    """labels.txt was read four ways (blank lines kept by one reader, dropped by another)."""
    from tl_keras.export.saved_model import read_labels

    version = tmp_path / "pets" / "1"
    (version / "assets.extra").mkdir(parents=True)
    (version / "assets.extra" / "labels.txt").write_text("cat\r\n\ndog \n")
    (version / "saved_model.pb").write_bytes(b"")
    assert read_labels(version) == model_classes(tmp_path / "pets") == ["cat", "dog"]
