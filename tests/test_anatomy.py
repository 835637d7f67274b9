"""Layer handles from the graph: every shape of tl_keras model is found, saved or not, and exports to TFLite by the real path."""

import keras
import numpy as np
import pytest

from tl_keras.vision import tflite
from tl_keras.models.anatomy import ENSEMBLE, FUSION, SINGLE, anatomy
from tl_keras.vision.backbones import load_backbone
from tl_keras.vision.classifier import build_classifier, build_fusion_classifier
from tl_keras.models.ensemble import build_ensemble
from tl_keras.vision.serving import export_saved_model
from tl_keras.training.features import feature_extractor, head_on_features
from tl_keras.vision.backbones import backbone_of

CLASSES = ["a", "b", "c"]


def _single(size=16, alpha=1.0, name="small_cnn"):
    backbone = load_backbone("small_cnn", None, image_size=size, alpha=alpha)
    backbone.layer.name = name
    return build_classifier(backbone, 3, name=f"{name}_classifier")


def _fusion():
    a = load_backbone("small_cnn", None, image_size=16)
    b = load_backbone("small_cnn", None, image_size=24, alpha=0.5, preprocessing="tf")
    b.layer.name = "small_cnn_b"
    return build_fusion_classifier([a, b], 3, combine="concat")


def test_single_classifier_parts_survive_a_save(tmp_path):
    keras.utils.set_random_seed(0)
    model = _single()
    model.save(tmp_path / "m.keras")
    for candidate in (model, keras.models.load_model(tmp_path / "m.keras")):
        parts = anatomy(candidate)
        assert parts.kind == SINGLE and parts.backbone.name == "small_cnn"
        assert [r.height for r in parts.resizes] == [16] and parts.preprocessing_modes() == ["zero_one"]
        assert parts.features.shape[-1] == parts.head.kernel.shape[0]


def test_fusion_branches_are_found_without_their_names():
    keras.utils.set_random_seed(0)
    model = _fusion()
    parts = anatomy(model)
    assert parts.kind == FUSION
    assert [b.name for b in parts.backbones] == ["small_cnn", "small_cnn_b"]
    assert sorted(r.height for r in parts.resizes) == [16, 24] and len(parts.pools) == 2
    assert parts.preprocessing_modes() == ["zero_one", "tf"]
    images = np.random.default_rng(0).integers(0, 256, (2, 20, 20, 3), dtype=np.uint8)
    # The head on cached features, fed the extractor's output, is the whole model.
    through = head_on_features(model)(feature_extractor(model)(images))
    np.testing.assert_allclose(np.asarray(through), model.predict(images, verbose=0), atol=1e-4)
    with pytest.raises(ValueError, match="is a fusion model, not a single-backbone classifier"):
        backbone_of(model)


def test_ensemble_members_are_found_and_a_foreign_model_is_refused():
    keras.utils.set_random_seed(0)
    ensemble = build_ensemble([_single(), _single(24, 0.5, "other")])
    parts = anatomy(ensemble)
    assert parts.kind == ENSEMBLE and len(parts.members) == 2 and parts.preprocessing_modes() == ["zero_one", "zero_one"]
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    with pytest.raises(ValueError, match="not fed by a dropout layer"):
        anatomy(plain)


@pytest.mark.slow
@pytest.mark.parametrize("kind", [FUSION, ENSEMBLE])
def test_fusion_and_ensemble_exports_convert_to_tflite_by_the_real_path(kind, tmp_path):
    """`export_tflite` (what experiments/export_tflite.py runs) once needed a single backbone (review M12)."""
    keras.utils.set_random_seed(0)
    model = _fusion() if kind == FUSION else build_ensemble([_single(), _single(24, 0.5, "other")])
    version = export_saved_model(model, tmp_path / "exports", kind, CLASSES, warmup=False)
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8)
    labels = np.arange(6) % 3
    report = tflite.export_tflite(version, tmp_path / "tflite", images, labels, CLASSES, representative=images, variants=("float32",))
    row = report["variants"][0]
    assert row["max_abs_diff"] < 1e-5 and row["agreement"] == 1.0
    sidecar = (tmp_path / "tflite" / f"{kind}_float32.json").read_text()
    assert "zero_one" in sidecar
