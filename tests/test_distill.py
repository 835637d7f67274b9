"""Knowledge distillation: the loss by hand, the Distiller trains only the student, the student exports."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tl_keras.training.run_steps import train_settings
from tl_keras.config.run_config import recipe_config
from tl_keras.vision import serving
from tl_keras.vision.backbones import load_backbone
from tl_keras.models.builders import compile_classifier
from tl_keras.vision.classifier import build_classifier
from tl_keras.distill import Distiller, distillation_loss, format_distillation, run_distillation
from tl_keras.training.freezing import unfreeze_backbone
from tl_keras.training.two_phase import train_two_phase


def test_distillation_loss_equals_a_hand_computed_value():
    student = np.array([[0.7, 0.2, 0.1]], np.float32)
    teacher = np.array([[0.5, 0.4, 0.1]], np.float32)
    temperature, alpha = 2.0, 0.3

    def soften(p):
        z = np.exp(np.log(p) / temperature)
        return z / z.sum()

    s, t = soften(student[0]), soften(teacher[0])
    kl = float(np.sum(t * (np.log(t) - np.log(s))))
    expected = alpha * -math.log(0.7) + (1 - alpha) * temperature**2 * kl
    got = float(distillation_loss(np.array([0]), student, teacher, temperature, alpha)[0])
    assert got == pytest.approx(expected, rel=1e-4)
    same = float(distillation_loss(np.array([1]), teacher, teacher, temperature, 0.0)[0])
    assert same == pytest.approx(0.0, abs=1e-5), "a student equal to its teacher has no soft loss"


def _tiny_data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    images = np.zeros((n, 16, 16, 3), np.uint8)
    for i, label in enumerate(labels):
        images[i, ..., label] = 200  # class = the bright channel
    images = np.clip(images + rng.integers(0, 40, size=images.shape), 0, 255).astype(np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(8)


@pytest.mark.slow
def test_distiller_updates_the_student_only_and_the_student_exports(tmp_path):
    keras.utils.set_random_seed(0)
    teacher = build_classifier(load_backbone("small_cnn", None, image_size=16), 3, name="teacher")
    student_backbone = load_backbone("small_cnn", None, image_size=16, alpha=0.5)
    student = build_classifier(student_backbone, 3, name="student")
    assert student.count_params() < teacher.count_params() / 3
    teacher_before = [w.numpy().copy() for w in teacher.weights]
    student_before = [w.numpy().copy() for w in student.trainable_weights]
    data = _tiny_data()
    distiller = Distiller(student, teacher, temperature=3.0, alpha=0.5)
    config = recipe_config("digits", frozen_epochs=1, fine_tune_epochs=1, verbose=0, seed=0, early_stopping_patience=0)
    result = train_two_phase(student, student_backbone.layer, data, data, train_settings(config), tmp_path, trainer=distiller)
    assert [p.name for p in result.phases] == ["frozen", "fine_tune"]
    assert all(np.array_equal(a, w.numpy()) for a, w in zip(teacher_before, teacher.weights)), "the teacher never changes"
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(student_before, student.trainable_weights))
    assert np.isfinite(result.phases[1].history["loss"]).all()

    exported = serving.export_saved_model(student, tmp_path / "exports", "student", ["a", "b", "c"], warmup=False)
    served = tf.saved_model.load(str(exported)).signatures["predict_pixels"]
    images = next(iter(data))[0]
    got = served(images=tf.cast(images, tf.float32))["probabilities"].numpy()
    np.testing.assert_allclose(got, student.predict(images, verbose=0), atol=1e-5)


def test_distiller_refuses_mismatched_classes_and_bad_settings():
    teacher = build_classifier(load_backbone("small_cnn", None, image_size=16), 3)
    student = build_classifier(load_backbone("small_cnn", None, image_size=16, alpha=0.5), 4)
    with pytest.raises(ValueError, match="3 classes and the student 4"):
        Distiller(student, teacher)
    same = build_classifier(load_backbone("small_cnn", None, image_size=16, alpha=0.5), 3)
    with pytest.raises(ValueError, match="--temperature"):
        Distiller(same, teacher, temperature=0)


@pytest.mark.slow
def test_distillation_run_reports_three_rows(tmp_path):
    keras.utils.set_random_seed(1)
    teacher = build_classifier(load_backbone("small_cnn", None, image_size=16), 5, name="teacher")
    compile_classifier(teacher, "adam", 1e-3)
    teacher.save(tmp_path / "teacher.keras")
    (tmp_path / "labels.txt").write_text("5\n6\n7\n8\n9\n")  # the teacher's classes: those of the data it distils on
    config = recipe_config("digits", weights="none", alpha=0.5, frozen_epochs=1, fine_tune_epochs=1, verbose=0, seed=2,
                       run_dir=str(tmp_path / "run"), export_dir=str(tmp_path / "saved_models"), name="student")
    report = run_distillation(config, str(tmp_path / "teacher.keras"), temperature=2.0, alpha=0.2)
    assert [r["model"] for r in report["rows"]] == ["teacher", "student (from labels)", "student (distilled)"]
    assert report["rows"][1]["parameters"] == report["rows"][2]["parameters"] < report["rows"][0]["parameters"]
    assert json.loads((tmp_path / "run" / "distillation.json").read_text())["settings"]["temperature"] == 2.0
    assert (tmp_path / "saved_models" / "student" / "1" / "saved_model.pb").is_file()
    assert "student (distilled)" in format_distillation(report)


class _Crash(RuntimeError):
    pass


@pytest.mark.slow
def test_distillation_interrupted_in_the_distilled_arm_resumes_to_the_same_student(tmp_path, monkeypatch):
    """Each arm keeps its own per-epoch state: a crash mid fine-tune of the distilled student, then --resume, loses nothing."""
    import dataclasses

    from tl_keras.training import phase as training

    keras.utils.set_random_seed(1)
    teacher = build_classifier(load_backbone("small_cnn", None, image_size=16), 5, name="teacher")
    compile_classifier(teacher, "adam", 1e-3)
    teacher.save(tmp_path / "teacher.keras")
    (tmp_path / "labels.txt").write_text("5\n6\n7\n8\n9\n")  # the teacher's classes: those of the data it distils on
    base = recipe_config("digits", weights="none", alpha=0.5, frozen_epochs=2, fine_tune_epochs=2, verbose=0, seed=2, export=False,
                         early_stopping_patience=0, name="student")

    def distil(run_dir, **changes):
        config = dataclasses.replace(base, run_dir=str(tmp_path / run_dir), **changes)
        return run_distillation(config, str(tmp_path / "teacher.keras"), temperature=2.0, alpha=0.2)

    straight = distil("straight")
    real_run_phase = training.run_phase

    class CrashMidEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 3:
                raise _Crash("power cut")

    def run_phase(model, name, *args, extra_callbacks=(), **kwargs):
        if name == "fine_tune" and str(args[5]).endswith("distilled"):
            extra_callbacks = (*extra_callbacks, CrashMidEpoch())
        return real_run_phase(model, name, *args, extra_callbacks=extra_callbacks, **kwargs)

    monkeypatch.setattr(training, "run_phase", run_phase)
    with pytest.raises(_Crash):
        distil("crashed")
    monkeypatch.setattr(training, "run_phase", real_run_phase)
    resumed = distil("crashed", resume=True)
    assert [r["accuracy"] for r in resumed["rows"]] == [r["accuracy"] for r in straight["rows"]]
    one = keras.saving.load_model(tmp_path / "straight" / "model.keras", compile=False)
    two = keras.saving.load_model(tmp_path / "crashed" / "model.keras", compile=False)
    for a, b in zip(one.weights, two.weights, strict=True):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=0, atol=1e-6, err_msg=a.path)
    history = json.loads((tmp_path / "crashed" / "distilled" / "history.json").read_text())
    assert [p["epochs_run"] for p in history["phases"]] == [2, 2]


def _one_step(optimizer, images, labels, sample_weight=None, seed=0):
    """One Distiller step from fixed weights; returns the student's weight change."""
    keras.utils.set_random_seed(seed)
    teacher = build_classifier(load_backbone("small_cnn", None, image_size=16), 3, dropout=0.0, name="teacher")
    student = build_classifier(load_backbone("small_cnn", None, image_size=16, alpha=0.5), 3, dropout=0.0, name="student")
    unfreeze_backbone(student.layers[3], "all")  # BatchNorm stays frozen, so examples stay independent
    distiller = Distiller(student, teacher, temperature=2.0, alpha=0.5)
    compile_classifier(distiller, "sgd", 0.1)
    if optimizer is not None:
        distiller.compile(optimizer=optimizer, loss=distiller.loss, metrics=["accuracy"])
    before = [w.numpy().copy() for w in student.trainable_weights]
    data = (images, labels) if sample_weight is None else (images, labels, sample_weight)
    distiller.train_step(tuple(tf.constant(x) for x in data))
    return [w.numpy() - b for w, b in zip(student.trainable_weights, before)]


def _batch():
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (6, 16, 16, 3), dtype=np.uint8), np.array([0, 1, 2, 0, 1, 2])


def test_distiller_scales_the_loss_for_a_loss_scale_optimizer():
    """Review M6: without scale_loss, a LossScaleOptimizer (mixed_float16's) would shrink every step by its scale."""
    images, labels = _batch()
    plain = _one_step(None, images, labels)
    scaled = _one_step(keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(0.1), initial_scale=2.0**15), images, labels)
    for a, b in zip(plain, scaled):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-6)
    assert max(float(np.abs(a).max()) for a in plain) > 1e-4, "the step moved the student"


def test_distiller_honours_sample_weights_and_soft_labels():
    images, labels = _batch()
    weights = np.array([1, 1, 1, 0, 0, 0], np.float32)
    weighted = _one_step(None, images, labels, weights)
    # Zero-weighted examples contribute nothing: the same step as the first three alone, at half the batch's mean.
    first_half = _one_step(None, images[:3], labels[:3])
    for a, b in zip(first_half, weighted):
        np.testing.assert_allclose(b, 0.5 * a, rtol=1e-3, atol=1e-6)
    one_hot = np.eye(3, dtype=np.float32)[labels]
    for a, b in zip(_one_step(None, images, labels), _one_step(None, images, one_hot)):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-7)


def test_resuming_a_distillation_with_another_teacher_or_temperature_is_refused(tmp_path):
    """The teacher, T and alpha are outside the run's fingerprint: --resume with other ones continued silently."""
    import json

    from tl_keras.distill import check_distillation_resume
    from tl_keras.config.settings import ConfigError

    flags_file = tmp_path / "distill_flags.json"
    recorded = {"teacher": "runs/flowers", "temperature": 4.0, "distill_alpha": 0.1}
    flags_file.write_text(json.dumps(recorded))
    check_distillation_resume(flags_file, recorded, resuming=True)
    check_distillation_resume(flags_file, {**recorded, "temperature": 2.0}, resuming=False)  # a new run may change them
    with pytest.raises(ConfigError, match=r"temperature: recorded 4.0, now 2.0"):
        check_distillation_resume(flags_file, {**recorded, "temperature": 2.0}, resuming=True)


@pytest.mark.slow
@pytest.mark.parametrize("flags, expected", [
    ([], "flowers_student 128 runs/flowers_student"),  # the embedded pair: the student at 128 px beside runs/flowers
    (["--image_dir={folder}"], "images_student 0 runs/images_student"),  # a user's folder: its name, the recipe's size
    (["--image_dir={folder}", "--name=mine", "--image_size=96"], "mine 96 runs/mine"),
])
def test_the_distill_script_names_and_sizes_the_student_from_the_data(image_folder, flags, expected):
    import subprocess
    import sys

    from conftest import REPO

    argv = ["distill.py", *[f.format(folder=image_folder) for f in flags]]
    code = (
        "import sys; sys.path.insert(0, 'experiments'); import distill; from absl import flags; "
        f"flags.FLAGS({argv!r}); c = distill.student_config(flags.FLAGS).resolved(); print(c.name, c.image_size, c.run_dir)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == expected
