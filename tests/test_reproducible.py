"""The same flags give the same numbers: a fresh folder, and a rerun with --overwrite in the same folder."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

pytestmark = pytest.mark.slow


def _train(*flags, cwd):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "train.py"), *flags], capture_output=True, text=True, env=env, cwd=cwd, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _outcome(run_dir):
    from tl_keras.export.reload import load_classifier

    summary = json.loads((run_dir / "summary.json").read_text())
    weights = load_classifier(run_dir).get_weights()
    return summary["transfer_accuracy"], summary["best_val_accuracy"], weights


def _assert_same(a, b):
    assert a[:2] == b[:2]
    assert len(a[2]) == len(b[2])
    for x, y in zip(a[2], b[2]):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("source", ["digits_5_9", "image_dir"])
def test_flagfile_in_a_fresh_folder_and_overwrite_rerun_give_identical_weights(source, image_folder, tmp_path):
    # digits_5_9 pretrains its source backbone first: the rerun reuses it, and must still start from the same head.
    data = (
        ["--dataset=digits_5_9"]
        if source == "digits_5_9"
        else [f"--image_dir={image_folder}", "--backbone=small_cnn", "--weights=none", "--image_size=16", "--unfreeze=all"]
    )
    flags = [*data, "--frozen_epochs=2", "--fine_tune_epochs=1", "--verbose=0", "--deterministic", "--noexport", "--nocompare_scratch"]
    first_dir = tmp_path / "first"
    _train(*flags, f"--run_dir={first_dir}", cwd=tmp_path)
    first = _outcome(first_dir)
    _train(*flags, f"--run_dir={first_dir}", "--overwrite", cwd=tmp_path)
    _assert_same(first, _outcome(first_dir))
    fresh_dir = tmp_path / "fresh"
    _train(f"--flagfile={first_dir / 'flags.txt'}", f"--run_dir={fresh_dir}", cwd=tmp_path)
    _assert_same(first, _outcome(fresh_dir))
