"""Shared fixtures: quiet TensorFlow, tiny real data written to tmp_path, the shared assets."""

import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# What tl_keras remembers between runs (the data check's verdicts) goes to a folder of this test session, not the user's.
os.environ.setdefault("TL_KERAS_CACHE", tempfile.mkdtemp(prefix="tl_keras_cache_"))

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_ASSETS = Path(os.environ.get("TL_KERAS_ASSETS", REPO.parent / "shared" / "assets"))


@pytest.fixture
def shared_assets() -> Path:
    """`../shared/assets`, or a skip saying it is absent (a user's fresh clone has none)."""
    if not SHARED_ASSETS.is_dir():
        pytest.skip(f"shared assets not found at {SHARED_ASSETS} (set TL_KERAS_ASSETS); they exist only on the team's machines")
    return SHARED_ASSETS


def write_png(path: Path, pixels: np.ndarray) -> Path:
    import tensorflow as tf

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return path


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """Three classes of 12 small PNGs each, told apart by colour, so a model can learn them."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    colours = {"red": (200, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 200)}
    for name, colour in colours.items():
        for i in range(12):
            size = (20 + i % 5, 24 + i % 3)  # differently sized, as real folders are
            noise = rng.integers(-25, 25, size=(*size, 3))
            pixels = np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)
            write_png(root / name / f"{name}_{i}.png", pixels)
    return root


@pytest.fixture
def tiny_batch() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 256, size=(2, 40, 48, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A 2-layer BERT saved as a keras-hub preset folder (random weights: the quick tests check wiring, not transfer)."""
    import keras
    import keras_hub

    from text_fixtures import WORDS

    folder = tmp_path_factory.mktemp("tiny_bert")
    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(WORDS), num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32, max_sequence_length=64
    )
    backbone.save_to_preset(str(folder))
    keras_hub.models.BertTokenizer(vocabulary=WORDS, lowercase=True).save_to_preset(str(folder))
    return folder
