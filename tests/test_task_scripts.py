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
