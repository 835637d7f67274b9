"""A text classifier's TFLite files, in two forms, each checked against the Keras model on held-out texts.

- "string": one UTF-8 string in (`text`, [1]); TensorFlow Text's
  FastBertTokenizer inside the file, padded to the recorded sequence length.
  Its three tokenizer ops are TensorFlow Text custom ops (no Flex ops): an
  app registers them (Python: `ai_edge_litert.interpreter.
  InterpreterWithCustomOps` with `tensorflow_text.tflite_registrar.
  SELECT_TFTEXT_OPS`; Android/iOS: the TensorFlow Text TFLite ops library).
- "ids": `input_word_ids`, `input_mask`, `input_type_ids` int32 [1, L] in,
  builtin ops only, so any interpreter runs it; the app tokenises with the
  `vocab.txt` and settings written beside it.

Both are converted from the export's `token_ids` signature (so from the
weights the SavedModel serves), never from a re-wrapped Keras model: a
Keras model saved through a bare `tf.Module` converts without error into a
file whose weights are gone. Every output is checked finite. Full-integer
int8 is not offered: the variants are float32, float16 and dynamic-range.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from tl_keras.io import atomic
from tl_keras.export.saved_model import write_labels_file
from tl_keras.export.signatures import LABELS_FILE, PROBABILITIES
from tl_keras.text.export import ID_INPUTS, IDS_SIGNATURE, TEXT_INPUT
from tl_keras.text.graph_tokenizer import GraphTokenizer, check_tflite_expressible
from tl_keras.text.tokenizer import TextTokenizer
from tl_keras.export.tflite import (
    PlannedFile, collapse_check, exported_target, median_latency_ms, quiet_interpreter_start, write_checked_files,
)

FORMS = ("string", "ids")
TEXT_VARIANTS = ("float32", "float16", "dynamic_range")
CUSTOM_OPS_NOTE = (
    "TensorFlow Text custom ops (FastBertNormalize, FastWordpieceTokenizeWithOffsets, RaggedTensorToTensor): "
    "Python ai_edge_litert.interpreter.InterpreterWithCustomOps(custom_op_registerers=tensorflow_text.tflite_registrar.SELECT_TFTEXT_OPS); "
    "apps link the TensorFlow Text TFLite ops"
)


def convert_text(version_dir: str | os.PathLike, tokenizer: TextTokenizer, form: str, variant: str, output: str = PROBABILITIES) -> bytes:
    """The TFLite flatbuffer of one form and variant of a text export, whose one output is the signature's `output`
    (the task's own: probabilities, tag scores, or the value).

    Raises:
        ValueError: unknown form or variant; a string form for casing the in-graph tokenizer cannot do.
    """
    if form not in FORMS or variant not in TEXT_VARIANTS:
        raise ValueError(f"form={form!r}, variant={variant!r}: forms are {FORMS}, variants {TEXT_VARIANTS}")
    loaded = tf.saved_model.load(str(version_dir))
    ids_fn = loaded.signatures[IDS_SIGNATURE]
    length = tokenizer.sequence_length
    if form == "string":
        check_tflite_expressible(tokenizer)
        graph_tokenizer = GraphTokenizer(tokenizer, fixed_length=True)

        @tf.function(input_signature=[tf.TensorSpec([1], tf.string, name=TEXT_INPUT)])
        def serve(text):
            ids = graph_tokenizer(text)
            mask = tf.cast(tf.not_equal(ids, tokenizer.pad_id), tf.int32)
            return {output: ids_fn(input_word_ids=ids, input_mask=mask, input_type_ids=tf.zeros_like(ids))[output]}
    else:

        @tf.function(input_signature=[tf.TensorSpec([1, length], tf.int32, name=n) for n in ID_INPUTS])
        def serve(input_word_ids, input_mask, input_type_ids):
            outputs = ids_fn(input_word_ids=input_word_ids, input_mask=input_mask, input_type_ids=input_type_ids)
            return {output: outputs[output]}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], loaded)
    converter.allow_custom_ops = form == "string"
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


class TextTFLiteClassifier:
    """Runs a text TFLite file on strings: fed as they are (string form) or tokenised here (ids form)."""

    def __init__(self, content: bytes, form: str, tokenizer: TextTokenizer, num_threads: int | None = None, output: str = ""):
        import tensorflow_text as tf_text

        try:
            from ai_edge_litert.interpreter import InterpreterWithCustomOps

            runtime = "ai_edge_litert"
        except ImportError:  # LiteRT is the [litert] extra; TensorFlow's own interpreter takes the same custom-op registrars
            from tensorflow.lite.python.interpreter import InterpreterWithCustomOps

            runtime = "tf.lite"
        self.form, self.tokenizer = form, tokenizer
        self.output = output  # the file's one output ("": whichever it has)
        self.interpreter_name = f"{runtime}.InterpreterWithCustomOps" if form == "string" else f"{runtime}.Interpreter"
        registerers = tf_text.tflite_registrar.SELECT_TFTEXT_OPS if form == "string" else []
        with quiet_interpreter_start():
            interpreter = InterpreterWithCustomOps(
                custom_op_registerers=registerers, model_content=content, num_threads=num_threads or os.cpu_count()
            )
            interpreter.allocate_tensors()
            self._run = interpreter.get_signature_runner()

    def predict_one(self, text: str) -> np.ndarray:
        if self.form == "string":
            return self._one(self._run(**{TEXT_INPUT: np.array([text.encode("utf-8")], dtype=object)}))
        ids = ids_row(self.tokenizer, text)
        mask = (ids != self.tokenizer.pad_id).astype(np.int32)
        return self._one(self._run(input_word_ids=ids, input_mask=mask, input_type_ids=np.zeros_like(ids)))

    def _one(self, outputs: dict) -> np.ndarray:
        """The first row of the file's output: probabilities, tag scores or the value."""
        return outputs[self.output or next(iter(outputs))][0]

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.predict_one(t) for t in texts])

    def median_latency_ms(self, text: str, runs: int = 30) -> float:
        return median_latency_ms(self.predict_one, text, runs)


def ids_row(tokenizer: TextTokenizer, text: str) -> np.ndarray:
    """`[CLS] pieces [SEP]` padded to the sequence length, shape [1, L]: what the ids form takes."""
    ids = tokenizer.encode([text])[0]
    row = np.full((1, tokenizer.sequence_length), tokenizer.pad_id, np.int32)
    row[0, : len(ids)] = ids
    return row


def text_parity(
    form: str, variant: str, content: bytes, tokenizer: TextTokenizer, keras_probabilities: np.ndarray, texts: Sequence[str],
    labels: np.ndarray, class_names: Sequence[str], target=None,
) -> dict:
    """One report row: the file against the Keras model on the same texts, in the task's terms (`target`: the export's
    `tasks.TargetSpec`; by default one label over `class_names`).

    (Nine parameters: the file, what it is, and what it is checked against.)
    """
    from tl_keras.tasks import SINGLE_LABEL, TargetSpec

    target = target or TargetSpec(SINGLE_LABEL, list(class_names))
    runner = TextTFLiteClassifier(content, form, tokenizer, output=target.task.raw_output)
    probabilities = runner.predict(texts).reshape(keras_probabilities.shape)
    if not np.isfinite(probabilities).all():
        raise ValueError(f"the {form}/{variant} TFLite file outputs non-finite values; its weights did not convert")
    difference = np.abs(probabilities - keras_probabilities)
    row = {
        "variant": f"{form}/{variant}", "form": form, "precision": variant, "size_bytes": len(content),
        **target.task.parity(probabilities, keras_probabilities, labels, target), "max_abs_diff": float(difference.max()),
        "mean_abs_diff": float(difference.mean()), "median_latency_ms": runner.median_latency_ms(texts[0]),
        "interpreter": runner.interpreter_name, "texts": len(texts),
    }
    if target.kind == SINGLE_LABEL:
        row.update(collapse_check(probabilities.argmax(axis=1), keras_probabilities.argmax(axis=1), labels, class_names))
    return row


def write_text_sidecar(path: Path, form: str, variant: str, tokenizer: TextTokenizer, class_names: Sequence[str], target=None) -> None:
    """What an app must know to feed the file, beside it."""
    if form == "string":
        inputs = {TEXT_INPUT: "string [1], UTF-8; tokenised, truncated and padded inside", "custom_ops": CUSTOM_OPS_NOTE}
    else:
        inputs = {
            "input_word_ids": f"int32 [1, {tokenizer.sequence_length}]: [CLS] WordPiece ids [SEP], then pad id {tokenizer.pad_id}",
            "input_mask": "int32 [1, L]: 1 for real tokens, 0 for padding", "input_type_ids": "int32 [1, L]: zeros",
            "tokenizer": {**tokenizer.facts(), "files": ["vocab.txt", "tokenizer_settings.json"]},
        }
    atomic.write_json(path.with_suffix(".json"), {
        "file": path.name, "form": form, "variant": variant, "inputs": inputs,
        "output": {"name": target.task.raw_output if target else PROBABILITIES, "dtype": "float32",
                   "shape": [1] if target and target.task.head_units(class_names) == 1 else [1, len(class_names)],
                   **({"meaning": target.task.output_reading(target)} if target else {})},
        "class_names": list(class_names), **({"task": target.to_dict()} if target else {}),
    })


def export_tokenizer(version_dir: str | os.PathLike) -> TextTokenizer:
    """The tokenizer a text export was trained with (its `assets.extra/tokenizer/`)."""
    from tl_keras.export.signatures import EXTRA_ASSETS
    from tl_keras.text.export import TOKENIZER_FOLDER

    return TextTokenizer.load(Path(version_dir) / EXTRA_ASSETS / TOKENIZER_FOLDER)


def keras_probabilities_of(version_dir: str | os.PathLike, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """The export's Keras copy on `texts`, tokenised by its own tokenizer: the reference every served form is held to."""
    import keras

    from tl_keras.export.signatures import EXTRA_ASSETS, KERAS_COPY
    from tl_keras.text import batches as batches_lib

    tokenizer = export_tokenizer(version_dir)
    model = keras.saving.load_model(Path(version_dir) / EXTRA_ASSETS / KERAS_COPY, compile=False)
    return batches_lib.predict_texts(model, tokenizer, texts, batch_size)


def export_text_tflite(
    version_dir: str | os.PathLike, out_dir: str | os.PathLike, texts: Sequence[str], labels: np.ndarray, class_names: Sequence[str], *,
    forms: Sequence[str] = FORMS, variants: Sequence[str] = TEXT_VARIANTS, min_agreement: dict[str, float] | None = None,
) -> dict:
    """Converts a text export to each form and variant, checks each on `texts`, writes the files and `tflite_report.json`."""
    version_dir, out = Path(version_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = export_tokenizer(version_dir)
    tokenizer.save(out)  # vocab.txt and tokenizer_settings.json beside the files, for the ids form
    write_labels_file(out / LABELS_FILE, class_names)
    keras_probabilities = keras_probabilities_of(version_dir, texts)
    target = exported_target(version_dir, class_names)

    def planned(form: str, variant: str) -> PlannedFile:
        return PlannedFile(
            variant, out / f"{version_dir.parent.name}_{form}_{variant}.tflite",
            convert=lambda: convert_text(version_dir, tokenizer, form, variant, output=target.task.raw_output),
            check=lambda content: text_parity(form, variant, content, tokenizer, keras_probabilities, texts, labels, class_names, target),
            describe=lambda path, row: write_text_sidecar(path, form, variant, tokenizer, class_names, target),
        )

    rows, failures = write_checked_files([planned(f, v) for f in forms for v in variants], min_agreement, group="form")
    report = {
        "saved_model": str(version_dir), "model_kind": "text", "sequence_length": tokenizer.sequence_length,
        "classes": list(class_names), "task": target.kind, "variants": rows, "failures": failures,
    }
    atomic.write_json(out / "tflite_report.json", report)
    return report
