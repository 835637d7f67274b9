"""The scripts on tags and values: train.py decides the task from the labels, evaluate.py and predict.py answer in its terms."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from test_task_runs import patches, write_csv

pytestmark = pytest.mark.slow


def script(name, *flags):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, str(REPO / "experiments" / name), *flags], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.parametrize("column", [1, 2], ids=["tags", "values"])
def test_train_evaluate_and_predict_scripts_on_a_labels_file(tmp_path, column):
    root = tmp_path / "images"
    labels = write_csv(tmp_path / "labels.csv", patches(root), (0, column))
    run_dir, export_dir = tmp_path / "run", tmp_path / "sm"
    trained = script("train.py", f"--image_dir={root}", f"--labels_file={labels}", "--backbone=small_cnn", "--weights=none",
                     "--image_size=16", "--fine_tune_epochs=1", "--fine_tune_min_steps=0", "--batch_size=8", f"--run_dir={run_dir}",
                     f"--export_dir={export_dir}", "--name=patches", "--verbose=0")
    assert trained.returncode == 0, trained.stderr[-2000:]
    decided = "tags joined by '|'" if column == 1 else "every label is a number, some with a fraction"
    assert decided in trained.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert "constant:" in trained.stdout and "frozen probe" in trained.stdout
    checked = script("check_data.py", f"--image_dir={root}", f"--labels_file={labels}", f"--report={tmp_path / 'check.json'}")
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert ("multi-label over 3 tags" if column == 1 else "regression of value") in checked.stdout
    evaluated = script("evaluate.py", f"--model={run_dir}", "--split=test")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    headline = "map" if column == 1 else "mae"
    assert f"test: {headline} {summary[f'transfer_{headline}']:.4f}" in evaluated.stdout
    assert (run_dir / "evaluation_test" / "report.html").is_file()
    predicted = script("predict.py", f"--saved_model={export_dir / 'patches'}", f"--image={root / 'p0.png'}")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    line = predicted.stdout.strip().splitlines()[-1]
    assert line.startswith(f"{root / 'p0.png'}: ")
    if column == 2:
        assert line.split(": ")[1].startswith("value ")
    else:
        assert "value" not in line and ("red" in line or "no tag above" in line)


@pytest.mark.parametrize("column", [1, 2], ids=["tags", "values"])
def test_a_fresh_process_with_only_tensorflow_serves_what_keras_computes(tmp_path, column):
    import keras
    import numpy as np
    import tensorflow as tf

    from tl_keras.config.run_config import RunConfig
    from tl_keras.run import run_experiment

    root = tmp_path / "images"
    labels = write_csv(tmp_path / "labels.csv", patches(root), (0, column))
    summary = run_experiment(RunConfig(
        image_dir=str(root), labels_file=str(labels), backbone="small_cnn", weights="none", image_size=16, fine_tune_epochs=1,
        fine_tune_min_steps=0, batch_size=8, run_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "sm"), verbose=0, seed=1,
    ))
    photos = [root / f"p{i}.png" for i in range(4)]
    model = keras.saving.load_model(summary["model_keras"], compile=False)
    expected = np.concatenate([model.predict(tf.io.decode_png(p.read_bytes(), channels=3)[None], verbose=0) for p in photos])
    code = (
        "import json, sys, tensorflow as tf\n"
        f"serve = tf.saved_model.load({summary['export']!r}).signatures['serving_default']\n"
        f"out = serve(image_bytes=tf.constant([open(p, 'rb').read() for p in {[str(p) for p in photos]!r}]))\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items() if v.dtype != tf.string}))\n"
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    served = json.loads(done.stdout.strip().splitlines()[-1])
    if column == 1:
        np.testing.assert_allclose(served["scores"], expected, atol=1e-5)
        thresholds = np.array(summary["task"]["thresholds"])
        assert served["above_threshold"] == (expected >= thresholds).tolist()
    else:
        np.testing.assert_allclose(served["value"], expected[:, 0], atol=1e-4)
