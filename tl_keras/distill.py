"""Knowledge distillation: a trained teacher teaches a smaller student.

The student learns from a mix of the true labels and the teacher's
temperature-softened class probabilities (Hinton et al., 2015). Softening
shows the student which wrong classes the teacher finds *plausible*, which
carries more information per image than a one-hot label; on few labels that
is the point. Our classifiers output probabilities, so logits are recovered
as log-probabilities (a softmax is unchanged by the constant they lack).

The `Distiller` is only the training model: it shares the student's
weights, so the student that is evaluated, exported and converted to TFLite
is a plain classifier with no trace of the teacher.
"""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from tl_keras.io.run_folder import RunFolder
from tl_keras.io import atomic

_EPSILON = 1e-7


def distillation_loss(labels, student_probabilities, teacher_probabilities, temperature: float, alpha: float):
    """Per-example `alpha * CE(labels, student) + (1 - alpha) * T^2 * KL(teacher_T || student_T)`.

    Args:
        labels: integer class labels, shape (batch,), or per-class targets,
            shape (batch, classes): one-hot, smoothed, or mixed by mixup/CutMix.
        student_probabilities, teacher_probabilities: softmax outputs, (batch, classes).
        temperature: T > 0; higher spreads the teacher's probability over more classes.
        alpha: weight of the hard-label term, in [0, 1]. The T^2 factor keeps
            the soft term's gradients on the same scale as T changes.
    """
    student_probabilities = tf.cast(student_probabilities, tf.float32)
    teacher_probabilities = tf.cast(teacher_probabilities, tf.float32)
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 2 and labels.shape[-1] == student_probabilities.shape[-1]:  # soft targets
        hard = keras.losses.categorical_crossentropy(tf.cast(labels, tf.float32), student_probabilities)
    else:
        hard = keras.losses.sparse_categorical_crossentropy(tf.cast(tf.reshape(labels, (-1,)), tf.int32), student_probabilities)
    student_log_t = tf.nn.log_softmax(tf.math.log(student_probabilities + _EPSILON) / temperature, axis=-1)
    teacher_log_t = tf.nn.log_softmax(tf.math.log(teacher_probabilities + _EPSILON) / temperature, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_t) * (teacher_log_t - student_log_t), axis=-1)
    return alpha * hard + (1.0 - alpha) * temperature**2 * kl


class Distiller(keras.Model):
    """Training model: `call` is the student; `train_step` adds the teacher's soft targets.

    Augmentation (if any) is applied once per batch, and teacher and student
    see the same augmented images. Validation (`test_step`, the compiled
    loss and metrics) measures the student on true labels alone.

    The training step follows Keras's own contract, so every `fit` option
    holds: per-example weights (`class_weight`, sample weights) weight the
    loss as the compiled loss would (sum over the batch size), soft labels
    (mixup, CutMix) train the hard term, and the loss is scaled by the
    optimizer before the gradient (`scale_loss`; a `LossScaleOptimizer`
    under mixed_float16 unscales in `apply`). Build and compile it inside the
    distribution strategy's scope, like any model.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, *, temperature: float = 4.0, alpha: float = 0.1,
                 augmentation: keras.Model | None = None, **kwargs):
        super().__init__(name=f"{student.name}_distiller", **kwargs)
        if temperature <= 0:
            raise ValueError(f"--temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"--distill_alpha must be in [0, 1], got {alpha}")
        teacher_classes, student_classes = int(teacher.outputs[0].shape[-1]), int(student.outputs[0].shape[-1])
        if teacher_classes != student_classes:
            raise ValueError(
                f"the teacher predicts {teacher_classes} classes and the student {student_classes}; they must share the class list"
            )
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.augmentation = augmentation
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        # Its parts are built models: so is it. A resumed run loads a finished phase's weights into it before any fit.
        self.built = True

    def call(self, images, training=False):
        return self.student(images, training=training)

    def train_step(self, data):
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if self.augmentation is not None:
            images = self.augmentation(images, training=True)
        teacher_probabilities = self.teacher(images, training=False)
        with tf.GradientTape() as tape:
            student_probabilities = self.student(images, training=True)
            per_example = distillation_loss(labels, student_probabilities, teacher_probabilities, self.temperature, self.alpha)
            if sample_weight is not None:
                per_example = per_example * tf.cast(tf.reshape(sample_weight, (-1,)), per_example.dtype)
            loss = tf.reduce_sum(per_example) / tf.cast(tf.shape(per_example)[0], per_example.dtype)
            if self.student.losses:
                loss += tf.add_n([tf.cast(x, tf.float32) for x in self.student.losses])
            scaled = self.optimizer.scale_loss(loss)
        variables = self.student.trainable_variables
        gradients = tape.gradient(scaled, variables)
        self.optimizer.apply(gradients, variables)
        results = {}
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(labels, student_probabilities, sample_weight=sample_weight)
            result = metric.result()
            results.update(result if isinstance(result, dict) else {metric.name: result})
        return results


def run_distillation(config, teacher_path: str, *, temperature: float = 4.0, alpha: float = 0.1) -> dict:
    """Teacher, student from labels, distilled student: same data, same budget, one table.

    `config` describes the student and the data (a `RunConfig`); both
    students start from the same weights and seed and train for the same two
    phases, one on labels alone and one through a `Distiller`, under
    --strategy and --mixed_precision like any run (`run.in_run_environment`).
    The distilled student is saved (`model.keras`), inspected like any model
    (`evaluation/report.html`) and, with `config.export`, exported. Writes
    `<run_dir>/distillation.json`.
    """
    from tl_keras.vision import run as run_lib

    return run_lib.in_run_environment(
        config, lambda resolved: _train_students(resolved, teacher_path, temperature, alpha), _finish_distillation
    )


def check_distillation_resume(flags_file: Path, settings: dict, resuming: bool) -> None:
    """Refuses --resume with another teacher, temperature or alpha than the interrupted run had.

    These settings live beside the run config (not in its fingerprint), so
    the resume state alone would not notice the change.

    Raises:
        ConfigError: naming the settings that differ.
    """
    import json

    from tl_keras.config.settings import ConfigError

    if not resuming or not flags_file.is_file():
        return
    recorded = json.loads(flags_file.read_text())
    differ = [f"{key}: recorded {recorded.get(key)!r}, now {value!r}" for key, value in settings.items() if recorded.get(key) != value]
    if differ:
        raise ConfigError(
            f"--resume: the interrupted distillation used other settings ({'; '.join(differ)}); pass them again or --overwrite"
        )


def _train_students(config, teacher_path: str, temperature: float, alpha: float) -> dict:
    """Both students trained and scored, inside the strategy scope; the export waits for `_finish_distillation`."""
    import time

    from tl_keras.vision import run as run_lib
    from tl_keras.export.classes import require_same_classes
    from tl_keras.vision.augment import build_augmentation
    from tl_keras.evaluation.metrics import classification_metrics, predict_dataset
    from tl_keras.evaluation.predictions import SplitReport
    from tl_keras.vision.inspection import inspect_split
    from tl_keras.export.reload import load_classifier
    from tl_keras.config.settings import AugmentSettings, settings_from
    from tl_keras.training.two_phase import train_two_phase

    config, run_dir = run_lib.start_run(config)
    folder = RunFolder(run_dir)
    settings = {"teacher": str(teacher_path), "temperature": temperature, "distill_alpha": alpha}
    check_distillation_resume(run_dir / "distill_flags.json", settings, config.resume)
    atomic.write_json(run_dir / "distill_flags.json", settings)
    splits = run_lib.load_splits(config, run_dir)
    num_classes = len(splits.class_names)
    require_same_classes(teacher_path, splits.class_names, "--teacher")
    teacher = load_classifier(teacher_path, "--teacher")
    weights = run_lib.resolve_weights(config, run_dir, {})
    plan = run_lib.train_settings(config)

    rows = []
    data = None
    for arm in ("from_labels", "distilled"):
        backbone, model = run_lib.build_model(config, weights, num_classes, name=f"{config.name}_{arm}")  # reseeded: identical starts
        if data is None:  # both students take the same input size: one pipeline (and one decoded-image cache) serves both
            data = run_lib.prepare_batches(config, splits, backbone.input_size, run_dir)
        augmentation = build_augmentation(settings_from(AugmentSettings, config))
        trainer = Distiller(model, teacher, temperature=temperature, alpha=alpha, augmentation=augmentation) if arm == "distilled" else None
        started = time.perf_counter()
        result = train_two_phase(
            model, backbone.layer, data.train, data.validation, plan, run_dir / arm,
            augmentation=augmentation, class_weight=data.class_weight, train_examples=splits.size("train"), trainer=trainer,
        )
        seconds = time.perf_counter() - started
        probabilities, labels = predict_dataset(model, data.held_out)
        metrics = classification_metrics(probabilities, labels, splits.class_names)
        rows.append({"model": f"student ({arm.replace('_', ' ')})", "backbone": backbone.name, "parameters": int(model.count_params()),
                     "accuracy": metrics["accuracy"], "macro_f1": metrics["macro"]["f1"], "kept_phase": result.kept_phase,
                     "train_seconds": round(seconds, 1)})
    probabilities, labels = predict_dataset(teacher, data.held_out)
    teacher_metrics = classification_metrics(probabilities, labels, splits.class_names)
    rows.insert(0, {"model": "teacher", "backbone": teacher.name, "parameters": int(teacher.count_params()),
                    "accuracy": teacher_metrics["accuracy"], "macro_f1": teacher_metrics["macro"]["f1"]})
    about = SplitReport(data.evaluation_split, f"{config.name}: distilled student on the {data.evaluation_split} split",
                        extra={"distilled_from": str(teacher_path)})
    inspected = inspect_split(model, data.held_out, splits.class_names, folder.evaluation, about)  # the student, shown like any model
    model.save(folder.model)  # the distilled student
    report = {"settings": settings, "evaluated_on": data.evaluation_split, "images": int(len(labels)), "rows": rows,
              "model_keras": str(folder.model), "report_html": inspected["report"]}
    card = run_lib.card_metadata(
        config, weights, {f"{data.evaluation_split}_accuracy": rows[-1]["accuracy"]}, distilled_from=str(teacher_path), **settings
    )
    return {"config": config, "folder": folder, "model": model, "class_names": splits.class_names, "report": report, "card": card}


def _finish_distillation(done: dict, extra: dict) -> dict:
    """Outside the strategy scope: the export (chief only) and distillation.json."""
    from tl_keras.training import distribute
    from tl_keras.vision.serving import export_saved_model

    config, report = done["config"], done["report"]
    if config.export:
        student = distribute.float32_copy(done["model"])  # trained in float16/bfloat16 or not, servers and phones get float32
        report["export"] = str(export_saved_model(student, config.export_dir, config.name, done["class_names"], metadata=done["card"]))
    report.update(extra)
    atomic.write_json(done["folder"].root / "distillation.json", report)
    return report


def format_distillation(report: dict) -> str:
    lines = [f"{'model':<28}{'backbone':<26}{'params':>9}{'accuracy':>10}{'macro F1':>10}"]
    for row in report["rows"]:
        lines.append(f"{row['model']:<28}{row['backbone'][:25]:<26}{row['parameters']:>9,}{row['accuracy']:>10.3f}{row['macro_f1']:>10.3f}")
    lines.append(f"on {report['images']} {report['evaluated_on']} images; T={report['settings']['temperature']}, "
                 f"alpha={report['settings']['distill_alpha']} (weight of the hard-label loss)")
    return "\n".join(lines)
