"""TFLite variants: each converts and runs, agrees with Keras within its tolerance, and int8 is checked for collapse."""

import json

import keras
import numpy as np
import pytest

from tl_keras.vision import tflite
from tl_keras.vision.backbones import load_backbone
from tl_keras.models.builders import compile_classifier
from tl_keras.vision.classifier import build_classifier
from tl_keras.vision.serving import export_saved_model

CLASSES = ["red", "green", "blue"]
SIZE = 16


def _colour_images(n, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    base = np.array([(200, 40, 40), (40, 200, 40), (40, 40, 200)])[labels]
    noise = rng.integers(-40, 40, size=(n, SIZE, SIZE, 3))
    return np.clip(base[:, None, None, :] + noise, 0, 255).astype(np.uint8), labels.astype(np.int32)


@pytest.fixture(scope="module")
def trained_export(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_classifier(load_backbone("small_cnn", None, image_size=SIZE), 3, dropout=0.0)
    model.layers[3].trainable = True
    compile_classifier(model, "adam", 3e-3)
    images, labels = _colour_images(96, 0)
    model.fit(images, labels, epochs=6, batch_size=16, verbose=0)
    version = export_saved_model(model, tmp_path_factory.mktemp("exports"), "colours", CLASSES, warmup=False)
    held_images, held_labels = _colour_images(45, 1)
    return model, version, held_images, held_labels, images, labels


@pytest.fixture(scope="module")
def report(trained_export, tmp_path_factory):
    model, version, images, labels, train_images, train_labels = trained_export
    representative = tflite.representative_sample(train_images, train_labels, 60)
    out = tmp_path_factory.mktemp("tflite")
    return out, tflite.export_tflite(version, out, images, labels, CLASSES, representative=representative)


@pytest.mark.slow
def test_every_variant_converts_runs_and_stays_within_its_tolerance(report, trained_export):
    out, result = report
    model, _, images, labels, _, _ = trained_export
    rows = {r["variant"]: r for r in result["variants"]}
    assert list(rows) == list(tflite.VARIANTS)
    assert rows["float32"]["max_abs_diff"] < 1e-5
    for variant, row in rows.items():
        assert row["max_abs_diff"] <= tflite.PROBABILITY_TOLERANCE[variant], variant
        assert row["agreement"] >= tflite.DEFAULT_MIN_AGREEMENT[variant], variant
        assert row["keras_accuracy"] == pytest.approx(np.mean(model.predict(images, verbose=0).argmax(1) == labels))
    assert result["failures"] == []
    assert rows["float16"]["size_bytes"] < 0.6 * rows["float32"]["size_bytes"]
    assert rows["int8"]["size_bytes"] < 0.4 * rows["float32"]["size_bytes"]


@pytest.mark.slow
def test_report_sizes_match_the_files_and_sidecars_describe_them(report):
    out, result = report
    saved = json.loads((out / "tflite_report.json").read_text())
    assert saved["failures"] == [] and len(saved["variants"]) == 4
    for row in saved["variants"]:
        path = out / f"colours_{row['variant']}.tflite"
        assert path.stat().st_size == row["size_bytes"]
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["class_names"] == CLASSES and sidecar["input"]["shape"] == [1, SIZE, SIZE, 3]
    assert (out / "labels.txt").read_text().splitlines() == CLASSES


@pytest.mark.slow
def test_int8_input_output_types_and_quantisation(trained_export):
    model, version, images, labels, train_images, train_labels = trained_export
    representative = tflite.representative_sample(train_images, train_labels, 60)
    expected = model.predict(images, verbose=0)
    for io_type in ("uint8", "int8"):
        content = tflite.convert(version, "int8", SIZE, representative, int8_io=io_type)
        runner = tflite.TFLiteClassifier(content)
        assert runner.input_dtype == np.dtype(io_type) and runner.output_dtype == np.dtype(io_type)
        q = runner.quantization()
        # The input's real values are raw pixels over the full 0-255 range whatever the calibration photos
        # reached: scale 1 from zero point 0 (uint8) or -128 (int8), so an app feeds camera bytes as they are.
        assert q["input"]["scale"] == pytest.approx(1.0, rel=1e-6)
        assert q["input"]["zero_point"] == (0 if io_type == "uint8" else -128)
        raw = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)
        fed = runner._feed(raw)
        assert fed.dtype == np.dtype(io_type)
        np.testing.assert_array_equal(fed.astype(np.int32).reshape(raw.shape), raw.astype(np.int32) - (0 if io_type == "uint8" else 128))
        assert q["output"]["scale"] == pytest.approx(1 / 256, rel=0.02)
        probabilities = runner.predict(images)
        assert np.abs(probabilities - expected).max() < tflite.PROBABILITY_TOLERANCE["int8"]
        assert np.mean(probabilities.argmax(1) == expected.argmax(1)) >= 0.97


@pytest.mark.slow
def test_a_constant_calibration_image_is_flagged_as_a_collapse(trained_export):
    model, version, images, labels, _, _ = trained_export
    constant = np.full((1, SIZE, SIZE, 3), 128, np.uint8)
    content = tflite.convert(version, "int8", SIZE, constant, pin_input_range=False)  # the ramp alone would rescue it
    row = tflite.parity("int8", content, model.predict(images, verbose=0), images, labels, CLASSES)
    assert row["flagged"], row
    assert row["collapse"] or row["recall_dropped_over_10_points"]


@pytest.mark.slow
def test_int8_without_calibration_data_is_refused(trained_export):
    _, version, _, _, _, _ = trained_export
    with pytest.raises(ValueError, match="needs representative images"):
        tflite.convert(version, "int8", SIZE, None)
    with pytest.raises(ValueError, match="unknown TFLite variant"):
        tflite.convert(version, "int4", SIZE)


def test_representative_sample_covers_every_class():
    labels = np.repeat([0, 1, 2], [100, 10, 5])
    images = np.arange(len(labels))
    picked = tflite.representative_sample(images, labels, 30)
    # As even as the classes allow: the small classes give all they have, the large one fills the rest.
    assert np.bincount(labels[picked]).tolist() == [15, 10, 5]


@pytest.mark.slow
def test_a_photo_resized_as_the_sidecar_says_gives_the_served_models_answer(report, trained_export):
    """The sidecar claimed the resize was inside the file; at a fixed S x S input it is not, so it states how to resize."""
    import tensorflow as tf

    model, version, *_ = trained_export
    out, _ = report
    contract = json.loads((out / "colours_float32.json").read_text())["resize_contract"]
    assert contract["size"] == [SIZE, SIZE] and contract["method"] == "bilinear" and "no crop" in contract["geometry"]
    rng = np.random.default_rng(3)
    photo = np.clip(np.array([40, 40, 200]) + rng.integers(-60, 60, (37, 23, 3)), 0, 255).astype(np.uint8)  # not square
    fed = tf.image.resize(photo, contract["size"], method=contract["method"], antialias=contract["antialias"]).numpy()
    runner = tflite.TFLiteClassifier((out / "colours_float32.tflite").read_bytes())
    served = tf.saved_model.load(str(version)).signatures["serving_default"](image_bytes=tf.constant([tf.io.encode_png(photo).numpy()]))
    np.testing.assert_allclose(runner.predict(fed[None])[0], served["probabilities"].numpy()[0], atol=1e-4)


def test_a_variant_below_its_threshold_fails_and_is_flagged_alike_in_the_json_and_the_table():
    from tl_keras.export.tflite import add_ratios_to_float32, below_min_agreement, format_report

    common = {"collapse": False, "recall_dropped_over_10_points": [], "flagged": False, "accuracy": 0.9, "max_abs_diff": 0.01,
              "per_class_recall": {"a": {}, "b": {}}, "interpreter": "ai_edge_litert"}
    rows = [{**common, "variant": "string/float32", "form": "string", "precision": "float32", "size_bytes": 4000, "median_latency_ms": 2.0,
             "agreement": 1.0},
            {**common, "variant": "string/dynamic_range", "form": "string", "precision": "dynamic_range", "size_bytes": 1000,
             "median_latency_ms": 1.0, "agreement": 0.989},
            {**common, "variant": "ids/dynamic_range", "form": "ids", "precision": "dynamic_range", "size_bytes": 1000,
             "median_latency_ms": 1.0, "agreement": 0.995}]
    failures = [f for f in (below_min_agreement(row, 0.99) for row in rows) if f]
    add_ratios_to_float32(rows, group="form")
    assert failures == ["string/dynamic_range: agreement 0.9890 < 0.99"]
    assert rows[1]["flagged"] and rows[1]["below_min_agreement"] and not rows[2]["flagged"]
    assert rows[1]["size_vs_float32"] == 0.25 and rows[1]["speedup_vs_float32"] == 2.0 and "size_vs_float32" not in rows[2]
    table = format_report({"variants": rows}).splitlines()
    assert table[2].endswith("BELOW --min_agreement 0.99") and "0.25" in table[2]
    assert table[3].split()[2:3] == ["-"]  # no float32 file of the ids form to compare with: no ratio, not 1.00
