"""What the scripts in `experiments/` do for an image run, registered as the vision modality's hooks.

Each hook takes plain arguments and returns what the script prints; the
script asks the registry for the modality and calls the hook named like its
own job.
"""

from __future__ import annotations

import json
from pathlib import Path

from tl_keras.io import storage
from tl_keras.config.settings import ConfigError


def check_data(config, report_path: str, progress=None) -> list[str]:
    """Every image decoded once, as training would: unreadable and converted files, duplicates across the split, per-class counts."""
    if not config.image_dir:
        raise ConfigError("--image_dir (a folder with one sub-folder of images per class), --text_file, --text_dir, --audio_dir or "
                          "--audio_file is required")
    if config.labels_file:
        return _check_labels_file(config, report_path)
    from tl_keras.vision import data as data_lib

    try:
        data_lib.load_image_folder(
            config.image_dir, config.validation_fraction, config.test_fraction, config.seed,
            min_images_per_class=config.min_images_per_class, report_file=report_path, progress=progress,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    report = json.loads(Path(report_path).read_text())
    lines = [f"\n{report['files_usable']} of {report['files_checked']} files usable"]
    width = max(len(name) for name in report["class_counts"])
    lines += [f"  {name:<{width}}  {count}" for name, count in report["class_counts"].items()]
    lines += [f"skipped, {reason}: {len(paths)}  e.g. {paths[0]}" for reason, paths in report["skipped"].items()]
    lines += [f"kept, {note}: {len(paths)}" for note, paths in report["converted_or_noted"].items()]
    leaks = [g for g in report["duplicates"] if g["across_splits"]]
    lines.append(f"duplicate groups: {len(report['duplicates'])} ({len(leaks)} across splits)")
    if report["empty_class_folders"]:
        lines.append(f"empty class folders left out: {', '.join(report['empty_class_folders'])}")
    lines.append(f"report: {report_path}")
    return lines


def _check_labels_file(config, report_path: str) -> list[str]:
    """Images a labels file names: which task its labels make, the rows left out and why, and what each split would hold."""
    from absl import logging

    from tl_keras.io import atomic
    from tl_keras.vision.labels_file import load_labelled_images, read_labels_file

    logging.set_verbosity(logging.ERROR)  # the problems are listed below, once
    try:
        found = read_labels_file(config.labels_file, config.image_dir)
        splits, spec = load_labelled_images(config.image_dir, config.labels_file, task=config.task, seed=config.seed,
                                            validation_fraction=config.validation_fraction, test_fraction=config.test_fraction)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    atomic.write_json(report_path, {"task": spec.to_dict(), "counts": splits.counts, "problems": found.problems})
    lines = [f"\n{spec.describe()}: {spec.decided}",
             f"{_count(len(found.paths), 'image')} labelled; {_count(len(found.problems), 'problem')}"]
    lines += [f"  {problem}" for problem in found.problems[:5]]
    width = max(len(name) for name in spec.names)
    lines.append(f"  {'':<{width}}" + "".join(f"{split:>12}" for split in splits.counts))
    lines += [f"  {name:<{width}}" + "".join(f"{splits.counts[split][name]:>12}" for split in splits.counts) for name in spec.names]
    lines.append(f"report: {report_path}")
    return lines


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"




def evaluate(model, class_names: list[str], run_dir: Path | None, options: dict) -> list[str]:
    """An image classifier scored again: a run's own split, or `options["image_dir"]` (class folders), with its report page.

    `options`: the script's model, image_dir, split, output_dir, batch_size and tta.
    """
    from absl import logging

    from tl_keras.evaluation.task_report import recorded_target
    from tl_keras.export.classes import ClassMismatchError, absent_classes, align
    from tl_keras.export.reload import classifier_file
    from tl_keras.io.run_folder import RunFolder
    from tl_keras.models.anatomy import input_size_of
    from tl_keras.vision import data as data_lib
    from tl_keras.evaluation.predictions import SplitReport
    from tl_keras.vision.inspection import inspect_split

    target = recorded_target(run_dir) if run_dir is not None else None
    if target is not None:
        return _evaluate_tags_or_values(model, target, run_dir, options)
    size = input_size_of(model)  # fusion and ensembles included: their largest input
    image_dir, split = options["image_dir"], options["split"]
    try:
        scored = data_lib.load_evaluation_data(image_dir, run_dir, split)
        dataset, split_name = scored.dataset, scored.name
        # Folder labels are positions in the folder's own class list; the model's are positions in its list.
        to_model = align(class_names, scored.class_names, data=f"--image_dir {image_dir}" if image_dir else f"the run's {split_name} split")
    except (ValueError, ClassMismatchError) as error:
        raise ConfigError(str(error)) from None
    for name in absent_classes(class_names, scored.class_names):
        logging.warning("no images of class %r in the evaluation data; its recall is undefined (reported as 0)", name)
    lines = []
    out = options["output_dir"] or (str(run_dir / f"evaluation_{split_name}") if run_dir else "evaluation")
    curves = RunFolder(run_dir).curves if run_dir and RunFolder(run_dir).curves.is_file() else None
    about = SplitReport(split_name, f"{Path(options['model']).name} on {image_dir or 'the ' + split_name + ' split'}", curves,
                        {"model": str(classifier_file(options["model"], "--model"))})
    metrics = inspect_split(model, data_lib.make_batches(dataset, size, options["batch_size"], cache="none"), class_names, out, about,
                            label_map=to_model, tta=options["tta"])
    lines.append(f"{split_name}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro']['f1']:.4f}, "
                 f"ECE {metrics['calibration']['ece']:.4f} on {metrics['examples']} images")
    lines += [f"  {name}: precision {row['precision']:.3f} recall {row['recall']:.3f} f1 {row['f1']:.3f} ({row['support']})"
              for name, row in metrics["per_class"].items()]
    if "tta" in metrics:
        tta = metrics["tta"]
        lines.append(f"TTA {tta['mode']} ({tta['views']} views): accuracy {tta['accuracy']:.4f} ({tta['gain']:+.4f})")
    lines.append(f"report: {metrics['report']} (metrics.json beside it)")
    return lines


def _evaluate_tags_or_values(model, target, run_dir: Path, options: dict) -> list[str]:
    """A multi-label or regression image run's split scored again in its task's measures, at the thresholds the run chose."""
    from tl_keras.config.run_config import RunConfig
    from tl_keras.config.settings import DataSettings, settings_from
    from tl_keras.evaluation.metrics import predict_dataset
    from tl_keras.evaluation.predictions import SplitReport
    from tl_keras.evaluation.task_report import evaluate_task_split, score_lines
    from tl_keras.io.run_folder import RunFolder
    from tl_keras.models.anatomy import input_size_of
    from tl_keras.vision import data as data_lib
    from tl_keras.vision.gallery import thumbnail_html

    if options["image_dir"] or options["tta"] != "none":
        raise ConfigError(f"--model={options['model']} is a {target.kind} run: it is scored on its own splits (--split); --image_dir "
                          "and --tta do not apply")
    split = options["split"]
    config = RunConfig.from_dict(RunFolder(run_dir).read_config())
    splits = data_lib.load_recorded(settings_from(DataSettings, config), run_dir)
    dataset = getattr(splits, split)
    if dataset is None:
        raise ConfigError(f"--split={split}: the run has no {split} images")
    outputs, trained = predict_dataset(model, data_lib.make_batches(dataset, input_size_of(model), options["batch_size"], cache="none"))
    out = options["output_dir"] or str(run_dir / f"evaluation_{split}")
    metrics = evaluate_task_split(outputs, target.user_targets(trained), target, list(splits.split_record[split]), out,
                                  SplitReport(split, f"{run_dir.name} on the {split} split"), noun="images", show=thumbnail_html)
    return score_lines(metrics, target, split)





def tflite(version_dir: Path, out_dir: str, class_names: list[str], config, run_dir: str, options: dict) -> dict:
    """An image export's four variants, checked on the run's held-out split or `options["image_dir"]`; int8 calibrated on the
    run's training split or `options["representative_dir"]`. Returns the report.

    (Six parameters: the export, where the files go, and what the script was given.)
    """
    from absl import logging

    from tl_keras.config.settings import DataSettings, settings_from
    from tl_keras.export.reload import load_classifier
    from tl_keras.models.anatomy import input_size_of
    from tl_keras.vision import data as data_lib
    from tl_keras.vision import tflite as vision_tflite

    unknown = [v for v in options["variants"] if v not in vision_tflite.VARIANTS]
    if unknown:
        raise ConfigError(f"--variants: unknown {unknown}; known: {', '.join(vision_tflite.VARIANTS)}")
    size = input_size_of(load_classifier(version_dir))  # fusion and ensembles: their largest input
    limit = options["max_examples"]
    try:
        run_splits = data_lib.load_recorded(settings_from(DataSettings, config), run_dir) if config is not None else None
        if options["image_dir"]:
            held = data_lib.load_image_folder(options["image_dir"], 0.0, 0.0)
            images, labels = _scored_arrays(held, "train", size, limit, class_names, f"--image_dir {options['image_dir']}")
        elif run_splits is not None:
            split = "test" if run_splits.test is not None else "validation"
            images, labels = _scored_arrays(run_splits, split, size, limit, class_names, f"the run's {split} split")
            _warn_if_trained_on(run_dir, split)
        else:
            raise ConfigError("pass --image_dir (held-out images) or --run_dir")
        if options["representative_dir"]:
            calibration = data_lib.load_image_folder(options["representative_dir"], 0.0, 0.0)
            representative, _ = data_lib.sample_arrays(calibration, "train", size, options["representative_count"])
        elif run_splits is not None:
            representative, _ = data_lib.sample_arrays(run_splits, "train", size, options["representative_count"])
        else:
            representative = vision_tflite.representative_sample(images, labels, options["representative_count"])
            logging.warning("calibrating int8 on the held-out images; pass --representative_dir to keep them apart")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    minimum = {v: options["min_agreement"] for v in vision_tflite.VARIANTS} if options["min_agreement"] else None
    return vision_tflite.export_tflite(
        version_dir, out_dir, images, labels, class_names, representative=representative, variants=options["variants"],
        int8_io=options["int8_io"], min_agreement=minimum,
    )


def _warn_if_trained_on(run_dir, split: str) -> None:
    """The parity table's accuracies on a split the exported model was refitted on are training scores: said before the table."""
    from absl import logging

    from tl_keras.training.refit import splits_the_run_trained_on

    if split in splits_the_run_trained_on(run_dir):
        logging.warning("the run's %s split trained the export too (its refit): accuracies there are not held out "
                        "(--image_dir: unseen images)", split)


def _scored_arrays(splits, split, size, limit, class_names, where):
    """Up to `limit` images of a split (evenly across classes), labels mapped onto the model's classes by name; a run of tags or
    values keeps its targets, in the user's units."""
    from tl_keras.export.classes import align
    from tl_keras.vision import data as data_lib

    images, labels = data_lib.sample_arrays(splits, split, size, limit)
    if splits.target is not None:
        return images, splits.target.user_targets(labels)
    return images, align(class_names, splits.class_names, data=where)[labels]




def predict_request(paths: list[str]) -> dict:
    """What predict.py sends for image files: their bytes as `image_bytes`, locally and as TF Serving's REST body."""
    from tl_keras.export.saved_model import rest_request
    from tl_keras.export.signatures import BYTES_INPUT

    missing = [p for p in paths if not storage.isfile(p)]
    if missing:
        raise ConfigError(f"--image: file not found: {missing[0]}")
    data = [storage.read_bytes(p) for p in paths]  # local files or objects in a bucket
    return {"names": list(paths), "inputs": {BYTES_INPUT: data}, "rest": rest_request(data)}


def make_records(config, folder: str, shards: int, progress=None) -> list[str]:
    """experiments/make_records.py: an image folder (and labels file) checked, split as a run would, written as shards."""
    from tl_keras.config.settings import DataSettings, settings_from
    from tl_keras.vision.data import load_data
    from tl_keras.vision.records import write_image_records

    if not config.image_dir:
        raise ConfigError("make_records reads --image_dir (with --labels_file for tags or values), --text_file or --text_dir")
    data = settings_from(DataSettings, config)
    manifest = write_image_records(load_data(data, None, progress=progress), data, folder, shards)
    from tl_keras.data.records import summary_lines

    return summary_lines(manifest, folder, "images")


HOOKS = {"check_data": check_data, "evaluate": evaluate, "tflite": tflite, "predict_request": predict_request,
         "make_records": make_records}
