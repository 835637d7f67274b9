"""TFLite files of tag and value models: converted from the export, read as the sidecar says, parity in the task's terms."""

import json

import numpy as np
import pytest

from test_task_runs import patches, run, scored, tagged, write, write_csv
from tl_keras.config.run_config import RunConfig

pytestmark = pytest.mark.slow  # conversions take tens of seconds


@pytest.mark.parametrize("column", [1, 2], ids=["tags", "values"])
def test_image_tflite_of_tags_or_values_agrees_with_keras_in_the_tasks_terms(tmp_path, column):
    from tl_keras.run import run_experiment
    from tl_keras.vision import data as data_lib
    from tl_keras.vision import tflite

    root = tmp_path / "images"
    labels = write_csv(tmp_path / "labels.csv", patches(root), (0, column))
    config = RunConfig(image_dir=str(root), labels_file=str(labels), backbone="small_cnn", weights="none", image_size=16,
                       fine_tune_epochs=1, fine_tune_min_steps=0, batch_size=8, run_dir=str(tmp_path / "run"),
                       export_dir=str(tmp_path / "sm"), verbose=0, seed=1)
    summary = run_experiment(config)
    splits = data_lib.load_recorded(data_lib.DataSettings(image_dir=str(root), labels_file=str(labels), seed=1), tmp_path / "run")
    images, trained = data_lib.sample_arrays(splits, "test", 16, 20)
    targets = splits.target.user_targets(trained)
    report = tflite.export_tflite(summary["export"], tmp_path / "tfl", images, targets, summary["classes"], representative=images,
                                  variants=("float32", "dynamic_range"))
    measure = "map" if column == 1 else "mae"
    float32 = report["variants"][0]
    assert report["task"] == summary["task"]["kind"] and float32["measure"] == measure
    assert float32["agreement"] == 1.0 and float32["accuracy"] == pytest.approx(float32["keras_accuracy"], abs=1e-4)
    sidecar = json.loads(next((tmp_path / "tfl").glob("*_float32.json")).read_text())
    assert sidecar["output"]["name"] == ("scores" if column == 1 else "value")
    assert ("threshold" in sidecar["output"]["meaning"]) == (column == 1)
    assert measure in tflite.format_report(report).splitlines()[0]


@pytest.mark.parametrize("kind", ["tags", "values"])
def test_text_tflite_of_tags_or_values_agrees_with_keras_in_the_tasks_terms(tmp_path, tiny_encoder, kind):
    from tl_keras.text import tflite as text_tflite

    rows, header = (tagged, "text\ttags") if kind == "tags" else (scored, "text\tvalue")
    train, test = write(tmp_path / "train.tsv", header, rows(80)), write(tmp_path / "test.tsv", header, rows(24, 5))
    summary = run(tmp_path, tiny_encoder, train, test)
    texts = [text for text, _ in rows(12, 7)]
    targets = (np.array([[float(t in label.split("|")) for t in summary["classes"]] for _, label in rows(12, 7)]) if kind == "tags"
               else np.array([float(label) for _, label in rows(12, 7)]))
    report = text_tflite.export_text_tflite(summary["export"], tmp_path / "tfl", texts, targets, summary["classes"], forms=("ids",),
                                            variants=("float32",))
    row = report["variants"][0]
    assert row["measure"] == ("map" if kind == "tags" else "mae") and row["agreement"] == 1.0
    assert row["max_abs_diff"] < 1e-4
