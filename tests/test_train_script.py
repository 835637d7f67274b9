"""experiments/train.py end to end: bad flags stop early and clearly; a short real run exports."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "experiments" / "train.py"
pytestmark = pytest.mark.slow


def _run(*flags, cwd=None, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(SCRIPT), *flags], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--backbone=mobilenet2"], "--backbone: unknown backbone 'mobilenet2'; known:"),
        (["--num_classes=1"], "--num_classes must be 0 (take it from the data) or at least 2"),
        (["--frozen_epochs=-1"], "--frozen_epochs must be >= 0"),
        (["--image_dir=/no/such/folder"], "--image_dir: folder not found: '/no/such/folder'"),
        (["--weights=/no/such/weights.h5"], "--weights: file not found"),
        (["--unfreeze=some"], "--unfreeze 'some' is not understood"),
    ],
)
def test_bad_flags_stop_with_a_message_naming_the_flag(flags, message, tmp_path):
    result = _run(*flags, f"--run_dir={tmp_path}/run")
    assert result.returncode == 2, "bad input exits with status 2"
    assert message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and result.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not (tmp_path / "run").exists(), "nothing is written before the flags are valid"


def test_short_default_run_trains_exports_and_reruns_from_its_flagfile(tmp_path):
    flags = ["--dataset=digits_5_9", "--frozen_epochs=2", "--fine_tune_epochs=1", "--verbose=0", f"--run_dir={tmp_path}/run",
             f"--export_dir={tmp_path}/saved_models", "--nocompare_scratch"]
    first = _run(*flags, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["classes"] == ["5", "6", "7", "8", "9"]
    assert summary["kept_phase"] in ("frozen", "fine_tune")
    metrics = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
    # metrics.json and the model card describe the exported model: the refit on train + validation when --refit chose it.
    assert summary["exported_accuracy"] == metrics["accuracy"] and metrics["split"] == summary["evaluated_on"]
    assert summary["transfer_accuracy"] >= 0.6  # five classes: chance is 0.2; features pretrained on 0-4 transfer to 5-9
    assert {"adopted", "fitted_temperature", "likelihood_ratio", "critical_value"} <= set(summary["calibration"])
    assert "calibration: " in first.stdout, "the temperature decision is printed, whichever way it went"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["frozen_epochs"] == 2 and config["name"] == "digits_5_9"
    assert (tmp_path / "saved_models" / "digits_5_9" / "1" / "saved_model.pb").is_file()
    assert f"SavedModel: {tmp_path}/saved_models/digits_5_9/1" in first.stdout
    card = json.loads((tmp_path / "saved_models/digits_5_9/1/assets.extra/model_card.json").read_text())
    assert card["config"] == config, "the resolved config travels with the export"
    assert card["metrics"][f"{summary['evaluated_on']}_accuracy"] == summary["exported_accuracy"]

    # The saved flagfile reproduces the run; pretrained source weights are reused.
    second = _run(f"--flagfile={run_dir / 'flags.txt'}", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reusing pretrained source weights" in second.stderr
    assert (tmp_path / "saved_models" / "digits_5_9" / "2").is_dir()
    assert json.loads((run_dir / "config.json").read_text()) == config

    # Other settings in the same run folder are refused unless --overwrite.
    changed = _run(f"--flagfile={run_dir / 'flags.txt'}", "--dropout=0.5", cwd=tmp_path)
    assert changed.returncode != 0 and "holds a run with different settings (--dropout)" in changed.stderr


def _script(name, *flags, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / name), *flags], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )


def test_export_serve_config_predict_and_init_from_scripts(tmp_path):
    import numpy as np
    import tensorflow as tf
    from sklearn.datasets import load_digits

    run_dir, exports = tmp_path / "run", tmp_path / "saved_models"
    trained = _run(
        "--dataset=digits_5_9",
        "--frozen_epochs=2",
        "--fine_tune_epochs=1",
        "--head_init=logistic",
        "--verbose=0",
        f"--run_dir={run_dir}",
        f"--export_dir={exports}",
        "--nocompare_scratch",
        "--noexport",
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert not exports.exists()

    # The kept frozen head was refitted on training + validation: a score on validation would not be held out.
    assert json.loads((run_dir / "summary.json").read_text())["refit"]["include_test"] is False
    refused = _script("evaluate.py", f"--model={run_dir}", "--split=validation")
    assert refused.returncode == 2 and "--split=validation: " in refused.stderr and "was refitted on the validation split" in refused.stderr
    evaluated = _script("evaluate.py", f"--model={run_dir}", "--split=test")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    test_images = len(json.loads((run_dir / "split.json").read_text())["test"])
    assert "test: accuracy" in evaluated.stdout and f"on {test_images} images" in evaluated.stdout
    assert (run_dir / "evaluation_test" / "confusion_matrix.png").is_file()

    # A folder with only some of the model's classes (labels 0, 1, 2 there are classes 5, 7, 9 of the model): scored by name.
    digits = load_digits()
    partial = tmp_path / "partial"
    for digit in (5, 7, 9):
        for i in np.flatnonzero(digits.target == digit)[-15:]:
            pixels = np.round(digits.images[i] * 255 / 16).astype(np.uint8)
            (partial / str(digit)).mkdir(parents=True, exist_ok=True)
            (partial / str(digit) / f"{i}.png").write_bytes(tf.io.encode_png(np.repeat(pixels[..., None], 3, axis=-1)).numpy())
    by_name = _script("evaluate.py", f"--model={run_dir}", f"--image_dir={partial}", f"--output_dir={tmp_path}/eval_partial")
    assert by_name.returncode == 0, by_name.stderr[-3000:]
    assert "no images of class '6'" in by_name.stderr and "no images of class '8'" in by_name.stderr
    scored = json.loads((tmp_path / "eval_partial" / "metrics.json").read_text())
    assert scored["accuracy"] > 0.6, "matched by position, 7 and 9 would be scored as 6 and 7"
    assert scored["per_class"]["9"]["support"] == 15 and scored["per_class"]["6"]["support"] == 0
    (partial / "x").mkdir()
    (partial / "x" / "a.png").write_bytes((partial / "5").iterdir().__next__().read_bytes())
    extra = _script("evaluate.py", f"--model={run_dir}", f"--image_dir={partial}")
    assert extra.returncode == 2 and f"--image_dir {partial} has classes the model does not predict: x" in extra.stderr

    exported = _script("export.py", f"--model={run_dir}", f"--export_dir={exports}", "--top_k=2")
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert f"SavedModel: {exports}/digits_5_9/1" in exported.stdout
    refused = _script("export.py", f"--model={run_dir}", f"--export_dir={exports}", "--version=1")
    assert refused.returncode != 0 and "never overwritten" in refused.stderr

    tflite_flags = [f"--run_dir={run_dir}", f"--saved_model={exports}/digits_5_9", "--variants=float32,int8",
                    "--representative_count=50", "--max_images=100"]
    strict = _script("export_tflite.py", *tflite_flags, "--min_agreement=1.0")
    strict_report = json.loads((run_dir / "tflite_v1" / "tflite_report.json").read_text())
    if any(r["agreement"] < 1.0 for r in strict_report["variants"]):  # int8 rarely agrees on every image
        assert strict.returncode != 0 and "error: below --min_agreement: int8: agreement" in strict.stderr
    else:
        assert strict.returncode == 0
    converted = _script("export_tflite.py", *tflite_flags, "--min_agreement=0.8")
    assert converted.returncode == 0, converted.stderr[-3000:]
    tflite_report = json.loads((run_dir / "tflite_v1" / "tflite_report.json").read_text())
    assert [r["variant"] for r in tflite_report["variants"]] == ["float32", "int8"]
    assert tflite_report["variants"][0]["agreement"] == 1.0 and tflite_report["variants"][0]["images"] == 100
    assert (run_dir / "tflite_v1" / "digits_5_9_int8.tflite").is_file()

    config = _script("serve_config.py", f"--export_dir={exports}", f"--output={tmp_path}/models.config")
    assert config.returncode == 0, config.stderr[-2000:]
    assert 'base_path: "/models/digits_5_9"' in (tmp_path / "models.config").read_text()

    seven = np.round(load_digits().images[7] * 255 / 16).astype(np.uint8)
    image = tmp_path / "seven.png"
    image.write_bytes(tf.io.encode_png(np.repeat(seven[..., None], 3, axis=-1)).numpy())
    predicted = _script("predict.py", f"--saved_model={exports}/digits_5_9", f"--image={image}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    line = predicted.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{image}: ") and len(line.split(", ")) == 2, "top_k=2 classes with scores"
    unreachable = _script("predict.py", "--url=http://127.0.0.1:9/v1/models/x:predict", f"--image={image}", "--timeout=2")
    assert unreachable.returncode != 0 and "cannot reach --url" in unreachable.stderr

    resumed = _run(
        "--dataset=digits_5_9",
        "--init_from=" + str(exports / "digits_5_9"),
        "--frozen_epochs=1",
        "--fine_tune_epochs=1",
        "--verbose=0",
        f"--run_dir={tmp_path}/resumed",
        f"--export_dir={exports}",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads((tmp_path / "resumed" / "summary.json").read_text())
    assert summary["backbone"] == "small_cnn" and "scratch_accuracy" not in summary
    assert (exports / "digits_5_9" / "2").is_dir()


def test_lr_find_script_writes_its_plot_and_curves_and_leaves_the_runs_own_record(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recorded = '{"fine_tune": {"rate": 0.0001}}'
    (run_dir / "lr_find.json").write_text(recorded)  # an auto-LR run's record, which a resume reads back
    done = _script("lr_find.py", "--dataset=digits_5_9", "--weights=none", "--lr_find_steps=30", f"--run_dir={run_dir}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    curves = json.loads((run_dir / "lr_range_test.json").read_text())
    assert len(curves) == 2 and all(len(c["losses"]) > 5 for c in curves.values()), list(curves)
    assert (run_dir / "lr_find.png").stat().st_size > 1000
    assert (run_dir / "lr_find.json").read_text() == recorded
    assert done.stdout.count("suggested learning rate") == 2
