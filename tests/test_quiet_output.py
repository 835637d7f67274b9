"""A script's whole output, piped to a file as a log would be, fits on a screen and holds nothing of TensorFlow's internals."""

import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

# TensorFlow's C++ lines ("I0000 00:00:... port.cc:153] ..."), its Python INFO lines, and Python warnings our own calls cause.
INTERNALS = re.compile(
    r"(^[IWEF]\d{4} [\d:.]+\s+\d+ \w+\.cc:\d+\])|InitializeLog|oneDNN|cuInit|cudart|signature_serialization|functional_saver"
    r"|Assets written|fingerprinting|UserWarning|shuffle=True|Skipping variable loading|contains input name|\x1b\["
    r"|XNNPACK delegate"
)


def _script(name, *flags, cwd):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the default a user gets
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, str(REPO / "experiments" / name), *flags], capture_output=True, text=True, env=env,
                            cwd=cwd, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def assert_quiet(result, max_lines):
    lines = (result.stdout + result.stderr).splitlines()
    assert len(lines) <= max_lines, "\n".join(lines)
    assert not [line for line in lines if len(line) > 200], "\n".join(line for line in lines if len(line) > 200)
    noisy = [line for line in lines if INTERNALS.search(line)]
    assert not noisy, "\n".join(noisy)


@pytest.mark.slow
def test_the_main_scripts_are_quiet_when_piped(tmp_path, image_folder):
    run = tmp_path / "run"
    # Photos decoded from files (the path a user's folder takes, with its data check and EXIF handling), not arrays.
    trained = _script("train.py", f"--image_dir={image_folder}", "--backbone=small_cnn", "--weights=none", "--image_size=32",
                      "--frozen_epochs=2", "--fine_tune_epochs=1", f"--run_dir={run}", f"--export_dir={tmp_path / 'saved_models'}",
                      cwd=tmp_path)
    assert_quiet(trained, 25)
    table = [line for line in trained.stdout.splitlines() if line.startswith(("transfer", "same network"))]
    # The accuracy column lines up (right-aligned: a number and an unscored "-" end at the same place).
    assert len({line.rindex(" " + line.split()[-2] + " ") + len(line.split()[-2]) for line in table}) == 1
    assert re.search(r"^the test split holds [34] images: one of them moves accuracy by 0\.(333|250)", trained.stdout, re.M)
    assert_quiet(_script("evaluate.py", f"--model={run}", f"--image_dir={image_folder}", cwd=tmp_path), 25)  # its test split trained it
    assert_quiet(_script("export_tflite.py", f"--run_dir={run}", "--variants=float32,dynamic_range", cwd=tmp_path), 25)
    assert_quiet(_script("check_data.py", f"--image_dir={image_folder}", f"--report={tmp_path / 'report.json'}", cwd=tmp_path), 25)
