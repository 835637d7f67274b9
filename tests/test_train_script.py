"""experiments/train.py end to end: bad flags stop early and clearly; a short real run exports."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = REPO / "experiments" / "train.py"


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
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "run").exists(), "nothing is written before the flags are valid"


def test_short_default_run_trains_exports_and_reruns_from_its_flagfile(tmp_path):
    flags = ["--frozen_epochs=2", "--fine_tune_epochs=1", "--verbose=0", f"--run_dir={tmp_path}/run",
             f"--export_dir={tmp_path}/saved_models", "--nocompare_scratch"]
    first = _run(*flags, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    run_dir = tmp_path / "run"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["classes"] == ["5", "6", "7", "8", "9"]
    assert summary["kept_phase"] in ("frozen", "fine_tune")
    assert 0.0 <= summary["transfer_accuracy"] <= 1.0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["frozen_epochs"] == 2 and config["name"] == "digits_5_9"
    assert (tmp_path / "saved_models" / "digits_5_9" / "1" / "saved_model.pb").is_file()
    assert f"SavedModel: {tmp_path}/saved_models/digits_5_9/1" in first.stdout
    card = json.loads((tmp_path / "saved_models/digits_5_9/1/assets.extra/model_card.json").read_text())
    assert card["config"] == config, "the resolved config travels with the export"

    # The saved flagfile reproduces the run; pretrained source weights are reused.
    second = _run(f"--flagfile={run_dir / 'flags.txt'}", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "reusing pretrained source weights" in second.stderr
    assert (tmp_path / "saved_models" / "digits_5_9" / "2").is_dir()
    assert json.loads((run_dir / "config.json").read_text()) == config
