"""The evaluation folder: every file is written from one pass, and report.html renders in a real browser."""

import json
import shutil
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.vision.backbones import Backbone, small_cnn
from tl_keras.vision.classifier import build_classifier
from tl_keras.evaluation.predictions import SplitReport
from tl_keras.vision.inspection import inspect_split

CLASSES = ["cat", "dog", "fox"]
SECTIONS = ("metrics", "curves", "confusion", "per-class", "errors", "grad-cam", "calibration", "tta")


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A small untrained classifier evaluated on 40 coloured images: plenty of mistakes to show."""
    keras.utils.set_random_seed(0)
    model = build_classifier(Backbone("cnn", small_cnn(input_shape=(24, 24, 3), alpha=0.25), 24, "zero_one"), 3, dropout=0.0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 24, 24, 3)).astype(np.uint8)
    labels = rng.integers(0, 3, 40)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    out = tmp_path_factory.mktemp("evaluation")
    metrics = inspect_split(model, batches, CLASSES, out, SplitReport("test", "tiny <test> & co", temperature=1.7), tta="flip")
    return out, metrics


@pytest.mark.slow  # several seconds: the full suite runs it
def test_every_evaluation_file_is_written(evaluated):
    out, metrics = evaluated
    written = ("metrics.json", "per_class.csv", "confusion_matrix.png", "per_class.png", "errors.png", "grad_cam.png", "reliability.png")
    for name in (*written, "report.html"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "errors").glob("*.png")), "per-class mistake grids"
    stored = json.loads((out / "metrics.json").read_text())
    assert stored["examples"] == 40 and stored["calibration"]["temperature"] == 1.7
    assert stored["calibration"]["top1_unchanged"] and stored["tta"]["views"] == 2
    assert stored["explained_with"] == "grad_cam"
    assert metrics["report"] == str(out / "report.html")


def test_the_page_is_self_contained_and_escapes_names(evaluated):
    page = (evaluated[0] / "report.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert "tiny &lt;test&gt; &amp; co" in page
    assert "src=\"http" not in page and "<script" not in page
    assert page.count("data:image/png;base64,") >= 6


def _chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(
    _chromium() is None, reason="no Chromium on PATH (Debian: apt-get install chromium); the page is checked without a browser above"
)
def test_report_renders_in_headless_chromium(evaluated, tmp_path):
    page = evaluated[0] / "report.html"
    shot = tmp_path / "report.png"
    browser = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--window-size=1200,2400",
    ]
    subprocess.run([*browser, f"--screenshot={shot}", page.as_uri()], check=True, capture_output=True, timeout=120)
    pixels = tf.io.decode_png(shot.read_bytes(), channels=3).numpy()
    assert pixels.shape[:2] == (2400, 1200)
    assert pixels.std() > 20, "the screenshot is blank"
    assert (pixels.reshape(-1, 3) < 128).all(axis=1).mean() > 0.01, "no text or pictures drawn"
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=120).stdout
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    assert dom.count("<img") >= 6


def test_a_text_page_counts_texts_and_shows_only_what_a_text_run_has(tmp_path):
    import numpy as np

    from tl_keras.text.evaluate import evaluate_text_split

    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6]], np.float32)
    texts = ["good film", "awful", "a <b>bold</b> claim", "fine"]
    metrics = evaluate_text_split(probabilities, np.array([0, 1, 1, 0]), texts, ["neg", "pos"], tmp_path, SplitReport("test"))
    page = (tmp_path / "report.html").read_text()
    assert "<td>texts</td><td>4</td>" in page and "<td>images</td>" not in page
    assert 'href="#grad-cam"' not in page and 'href="#tta"' not in page and "Grad-CAM" not in page
    assert "top 2 accuracy" not in page  # always 1 with two classes
    assert '<td class="text">a &lt;b&gt;bold&lt;/b&gt; claim</td>' in page and "td.text { text-align: left; }" in page
    assert metrics["examples"] == 4
