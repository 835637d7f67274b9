"""What the scripts in `experiments/` do for a text run, registered as the text modality's hooks.

Each hook takes plain arguments and returns what the script prints; the
script asks the registry for the modality and calls the hook named like its
own job.
"""

from __future__ import annotations

from tl_keras.config.settings import ConfigError


def check_data(config, report_path: str, progress=None) -> list[str]:
    """What training would read, split and cut, without training: skipped rows, classes per split, shared texts, lengths."""
    from absl import logging

    from tl_keras.io import atomic
    from tl_keras.text.data import duplicates_across_splits, length_report
    from tl_keras.text.run import read_splits

    del progress  # texts are read in one pass without a bar
    logging.set_verbosity(logging.ERROR)  # the skipped rows are listed below, once
    try:
        splits = read_splits(config)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(str(error)) from None
    lengths, unit = _text_lengths(config, splits)
    counts = splits.counts
    report = {
        "skipped": splits.problems, "class_names": splits.class_names, "counts": counts,
        "duplicates_in_train": duplicates_across_splits(splits),
        "lengths": {split: length_report(values, config.max_sequence_length or 0) for split, values in lengths.items() if values},
        "length_unit": unit,
    }
    atomic.write_json(report_path, report)
    usable = sum(len(t) for t in splits.texts.values())
    lines = [f"\n{splits.target.describe()}: {splits.target.decided}"] if splits.target.decided else []
    lines.append(f"\n{_count(usable, 'text')} usable, {_count(len(splits.problems), 'line')} skipped")
    lines += [f"  {problem}" for problem in splits.problems[:5]]
    width = max(len(name) for name in splits.class_names)
    lines.append(f"  {'class':<{width}}" + "".join(f"{split:>12}" for split in counts))
    lines += [f"  {name:<{width}}" + "".join(f"{counts[split][name]:>12}" for split in counts) for name in splits.class_names]
    for split, shared in report["duplicates_in_train"].items():
        lines.append(f"{split}: {_count(shared, 'text')} also in train" if shared else f"{split}: no text also in train")
    train = report["lengths"].get("train", {})
    if train:
        cut = f"; {train['truncated']} longer than --max_sequence_length={config.max_sequence_length}" if config.max_sequence_length else ""
        lines.append(f"train lengths in {unit}: median {train['percentiles']['50']}, 99% {train['percentiles']['99']}, "
                     f"longest {train['percentiles']['100']}{cut}")
    lines.append(f"report: {report_path}")
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _text_lengths(config, splits) -> tuple[dict[str, list[int]], str]:
    """Per split, each text's length: in the encoder's tokens ([CLS] and [SEP] included) with a text --backbone, else in words."""
    from tl_keras.text.encoders import is_text_backbone, load_text_encoder

    if config.backbone and is_text_backbone(config.backbone):
        tokenizer = load_text_encoder(config.backbone).tokenizer
        return {split: [len(p) + 2 for p in tokenizer.word_pieces(texts)] for split, texts in splits.texts.items()}, "tokens"
    return {split: [len(t.split()) for t in texts] for split, texts in splits.texts.items()}, "words"




def evaluate(model, class_names: list[str], run_dir, options: dict) -> list[str]:
    """A text run's split scored again with the run's own texts and tokenizer: the text report, or the task's for tags and values."""
    import numpy as np

    from tl_keras.config.run_config import RunConfig
    from tl_keras.evaluation.predictions import SplitReport
    from tl_keras.evaluation.task_report import evaluate_task_split, recorded_target, score_lines
    from tl_keras.export.classes import align
    from tl_keras.io.run_folder import RunFolder
    from tl_keras.text import batches as batches_lib
    from tl_keras.text.evaluate import evaluate_text_split
    from tl_keras.text.export import TOKENIZER_FOLDER
    from tl_keras.text.run import read_recorded_splits
    from tl_keras.text.tokenizer import TextTokenizer

    if run_dir is None:
        raise ConfigError(f"--model={options['model']}: a text model is scored on a run's own texts; pass its run folder")
    if options["image_dir"] or options["tta"] != "none":
        raise ConfigError(f"--model={options['model']} is a text run: --image_dir and --tta do not apply")
    split = options["split"]
    splits = read_recorded_splits(RunConfig.from_dict(RunFolder(run_dir).read_config()), run_dir)
    if not splits.has(split):
        raise ConfigError(f"--split={split}: the run has no {split} texts")
    tokenizer = TextTokenizer.load(run_dir / TOKENIZER_FOLDER)
    texts = list(splits.texts[split])
    outputs = batches_lib.predict_texts(model, tokenizer, texts, options["batch_size"])
    out = options["output_dir"] or str(run_dir / f"evaluation_{split}")
    target = recorded_target(run_dir)
    if target is not None:
        metrics = evaluate_task_split(outputs, splits.labels[split], target, texts, out,
                                      SplitReport(split, f"{run_dir.name} on the {split} split"), noun="texts")
        return score_lines(metrics, target, split)
    # The data's labels are positions in its own class list; the model's columns are positions in the run's.
    to_model = align(class_names, splits.class_names, data=f"the run's {split} split")
    labels = to_model[np.asarray(splits.labels[split])]
    metrics = evaluate_text_split(outputs, labels, texts, class_names, out, SplitReport(split, f"{run_dir.name} on the {split} split"))
    return [f"{split}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro']['f1']:.4f} on {len(texts)} texts",
            f"report: {metrics['report']} (metrics.json beside it)"]




def tflite(version_dir, out_dir: str, class_names: list[str], config, run_dir: str, options: dict) -> dict:
    """A text export's two forms (string in, token ids in), each float32, float16 and dynamic-range, checked on the run's
    held-out texts or `options["text_file"]`. Returns the report.

    (Six parameters: the export, where the files go, and what the script was given.)
    """
    import numpy as np

    from tl_keras.export.classes import align
    from tl_keras.text import tflite as text_tflite
    from tl_keras.text.data import load_text_splits
    from tl_keras.text.run import read_recorded_splits

    unknown = [f for f in options["text_forms"] if f not in text_tflite.FORMS]
    if unknown:
        raise ConfigError(f"--text_forms: unknown {unknown}; known: {', '.join(text_tflite.FORMS)}")
    variants = [v for v in options["variants"] if v in text_tflite.TEXT_VARIANTS]
    if options["text_file"]:
        splits, split, where = load_text_splits(options["text_file"], validation_fraction=0.0, test_fraction=0.0), "train", "--text_file"
    elif config is not None:
        splits = read_recorded_splits(config, run_dir)
        split = "test" if splits.has("test") else "validation"
        where = f"the run's {split} split"
    else:
        raise ConfigError("pass --text_file (held-out labelled texts) or --run_dir")
    texts, labels = list(splits.texts[split]), np.asarray(splits.labels[split])
    if splits.target.kind == "single_label":  # tags and values are read in the model's own order and units
        labels = align(class_names, splits.class_names, data=where)[labels]
    keep = np.linspace(0, len(texts) - 1, min(options["max_examples"], len(texts))).astype(int)
    minimum = {v: options["min_agreement"] for v in variants} if options["min_agreement"] else None
    return text_tflite.export_text_tflite(
        version_dir, out_dir, [texts[i] for i in keep], labels[keep], class_names, forms=options["text_forms"], variants=variants,
        min_agreement=minimum,
    )




def predict_request(texts: list[str]) -> dict:
    """What predict.py sends for texts: the strings as `text`; a text SavedModel needs TensorFlow Text's ops registered first."""
    import tensorflow_text  # noqa: F401 - registers the tokenizer ops the text SavedModel calls

    from tl_keras.text.export import TEXT_INPUT

    return {"names": [t if len(t) <= 60 else t[:57] + "..." for t in texts], "inputs": {TEXT_INPUT: list(texts)},
            "rest": {"instances": [{TEXT_INPUT: t} for t in texts]}}


def make_records(config, folder: str, shards: int, progress=None) -> list[str]:
    """experiments/make_records.py: a text table or folder read and split as a run would, written as shards."""
    from tl_keras.text.records import write_text_records
    from tl_keras.text.run import read_splits

    if config.text_tfds:
        raise ConfigError("make_records reads --text_file or --text_dir; a TFDS text set is already sharded (pass --text_tfds to train)")
    from tl_keras.data.records import summary_lines

    manifest = write_text_records(read_splits(config), folder, shards)
    return summary_lines(manifest, folder, "texts", " --backbone=ENCODER")


HOOKS = {"check_data": check_data, "evaluate": evaluate, "tflite": tflite, "predict_request": predict_request,
         "make_records": make_records}
