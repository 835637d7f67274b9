"""The package's layout holds: layer folders imported only downward, modalities that never import each other."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "import_cycles.py"


def _check(package: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), f"--package={package}"], capture_output=True, text=True, timeout=60)


def test_no_cycle_and_no_upward_import_in_the_package():
    """Deferred imports included: a cycle or an upward import hidden inside a function is still a dependency."""
    done = _check(ROOT / "tl_keras")
    assert done.returncode == 0, done.stdout


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's contracts (pyproject.toml) over the package at `root`, run as a user would run `lint-imports`."""
    pytest.importorskip("importlinter", reason="import-linter is in the test extra (pip install -e '.[test]')")
    script = ("import sys; from importlinter.cli import lint_imports_command; "
              "sys.argv[1:] = ['--no-cache']; sys.exit(lint_imports_command())")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_import_linter_contracts_hold():
    """Layers downward only, and vision and text as siblings that never import each other (relative imports included)."""
    done = _lint_imports(ROOT)
    assert done.returncode == 0 and "BROKEN" not in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize("module, wrong_import, expected", [
    ("text/model.py", "from tl_keras.vision import pixels", "tl_keras.text.model -> tl_keras.vision.pixels"),
    ("vision/pixels.py", "from ..text import tokenizer", "tl_keras.vision.pixels -> tl_keras.text.tokenizer"),
    ("audio/frontend.py", "from tl_keras.vision import backbones", "tl_keras.audio.frontend -> tl_keras.vision.backbones"),
    ("data/splits.py", "from tl_keras.export import signatures", "tl_keras.data.splits -> tl_keras.export.signatures"),
])
def test_import_linter_catches_a_modality_importing_its_sibling_or_a_layer_importing_upward(tmp_path, module, wrong_import, expected):
    shutil.copytree(ROOT / "tl_keras", tmp_path / "tl_keras", ignore=shutil.ignore_patterns("assets", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "tl_keras" / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # noqa\n")
    done = _lint_imports(tmp_path)
    assert done.returncode != 0 and "BROKEN" in done.stdout and expected in done.stdout, done.stdout[-3000:]


@pytest.mark.parametrize("module, wrong_import, expected", [
    ("io/atomic.py", "from tl_keras.run import run_experiment", "tl_keras.io.atomic (io) imports tl_keras.run (top)"),
    ("data/splits.py", "    from tl_keras.training import two_phase", "tl_keras.data.splits (data) imports tl_keras.training.two_phase"),
    ("config/settings.py", "from tl_keras.models.anatomy import anatomy", "tl_keras.config.settings (config) imports tl_keras.models"),
    # The modality seam: the core layers never reach up into the image code.
    ("training/two_phase.py", "from tl_keras.vision.backbones import BACKBONES",
     "tl_keras.training.two_phase (training) imports tl_keras.vision.backbones (vision)"),
])
def test_a_deliberately_wrong_import_is_caught_and_named(tmp_path, module, wrong_import, expected):
    copy = tmp_path / "tl_keras"
    shutil.copytree(ROOT / "tl_keras", copy, ignore=shutil.ignore_patterns("assets", "__pycache__"))
    target = copy / module
    if wrong_import.startswith("    "):  # inside a function: deferred imports count too
        target.write_text(target.read_text() + "\n\ndef _late():\n" + wrong_import + "\n")
    else:
        target.write_text(wrong_import + "\n" + target.read_text())
    done = _check(copy)
    assert done.returncode == 1
    assert expected in done.stdout


def test_a_cycle_inside_one_layer_is_caught(tmp_path):
    copy = tmp_path / "tl_keras"
    shutil.copytree(ROOT / "tl_keras", copy, ignore=shutil.ignore_patterns("assets", "__pycache__"))
    (copy / "io" / "run_folder.py").write_text("from tl_keras.io import atomic\n" + (copy / "io" / "run_folder.py").read_text())
    (copy / "io" / "atomic.py").write_text("from tl_keras.io import run_folder\n" + (copy / "io" / "atomic.py").read_text())
    done = _check(copy)
    assert done.returncode == 1 and "cycle: tl_keras.io.atomic <-> tl_keras.io.run_folder" in done.stdout
