"""What the scripts in `experiments/` do for a sound run, registered as the audio modality's hooks.

Each hook takes plain arguments and returns what the script prints, so the
script stays a dispatcher: it asks the registry for the modality and calls
the hook named like its own job.
"""

from __future__ import annotations

from pathlib import Path

from tl_keras.io import storage
from tl_keras.io import atomic


def check_data(config, report_path: str, progress=None) -> list[str]:
    """Every clip read once, as training would: what is left out and why, what is kept but noted, the clip length, the split."""
    from absl import logging

    from tl_keras.audio.run import read_audio_splits
    from tl_keras.config.settings import ConfigError

    if config.audio_tfds:
        raise ConfigError(f"--audio_tfds={config.audio_tfds}: check_data reads files; a run writes the dataset's clips and table "
                          "into <run_dir>/tfds_audio/, which --audio_file can then check")
    logging.set_verbosity(logging.ERROR)  # the problems are listed below, once
    splits = read_audio_splits(config, None, progress)
    report = {**splits.report, "task": splits.target.to_dict(), "counts": splits.counts}
    atomic.write_json(report_path, report)
    length = splits.report["clip_length"]
    lines = [f"{report['files_usable']} of {report['files_checked']} clips usable; {len(splits.problems)} problems"]
    lines += [f"  {p}" for p in splits.problems[:8]]
    if len(splits.problems) > 8:
        lines.append(f"  ... {len(splits.problems) - 8} more in {report_path}")
    for key, words in (("clipped", "clipped (kept)"), ("multi_channel", "with several channels (mixed to mono)")):
        if report[key]:
            lines.append(f"{len(report[key])} clips {words}, e.g. {report[key][0]}")
    for rate, count in report["resampled_from"].items():
        lines.append(f"{count} clips at {rate} Hz (resampled to {length['sample_rate']} Hz)")
    seconds = report["seconds"]
    lines.append(f"durations {seconds['min']:.2f}-{seconds['max']:.2f} s (median {seconds['median']:.2f}); clip length "
                 f"{length['seconds']:.2f} s ({length['chosen']}): {length['cropped']} cropped, {length['padded']} padded")
    if splits.target.decided:
        lines.append(f"{splits.target.describe()}: {splits.target.decided}")
    names = splits.class_names
    width = max(len(n) for n in names)
    counts = splits.counts
    lines.append(f"  {'':<{width}}" + "".join(f"{s:>12}" for s in counts))
    lines += [f"  {n:<{width}}" + "".join(f"{counts[s][n]:>12}" for s in counts) for n in names]
    lines.append(f"report: {Path(report_path)}")
    return lines




def evaluate(model, class_names: list[str], run_dir, options: dict) -> list[str]:
    """A sound run's split scored again, at the clip length it trained with: the report with worst clips and noise, or the task's."""
    import numpy as np

    from tl_keras.audio.batches import predict_waves
    from tl_keras.audio.report import noise_robustness, worst_clips_html
    from tl_keras.audio.run import read_recorded_audio_splits
    from tl_keras.config.run_config import RunConfig
    from tl_keras.config.settings import ConfigError
    from tl_keras.evaluation.predictions import SplitReport, evaluate_predictions
    from tl_keras.evaluation.task_report import evaluate_task_split, recorded_target, score_lines
    from tl_keras.export.classes import align
    from tl_keras.io.run_folder import RunFolder

    if run_dir is None:
        raise ConfigError(f"--model={options['model']}: a sound model is scored on a run's own clips; pass its run folder")
    if options["image_dir"] or options["tta"] != "none":
        raise ConfigError(f"--model={options['model']} is a sound run: --image_dir and --tta do not apply")
    split = options["split"]
    splits = read_recorded_audio_splits(RunConfig.from_dict(RunFolder(run_dir).read_config()), run_dir)
    if not splits.has(split):
        raise ConfigError(f"--split={split}: the run has no {split} clips")
    waves = splits.waves[split]
    outputs = predict_waves(model, waves, options["batch_size"])
    out = options["output_dir"] or str(Path(run_dir) / f"evaluation_{split}")
    target = recorded_target(run_dir)
    title = f"{Path(run_dir).name} on the {split} split"
    if target is not None:
        metrics = evaluate_task_split(outputs, splits.targets[split], target, splits.paths[split], out, SplitReport(split, title),
                                      noun="clips")
        return score_lines(metrics, target, split)
    labels = align(class_names, splits.class_names, data=f"the run's {split} split")[np.asarray(splits.targets[split])]
    noise = noise_robustness(lambda w: float(np.mean(predict_waves(model, w, options["batch_size"]).argmax(-1) == labels)), waves)
    metrics = evaluate_predictions(outputs, labels, class_names, out, SplitReport(split, title, extra={"noise": noise}), noun="clips",
                                   mistakes_html=worst_clips_html(outputs, labels, waves, splits.paths[split], class_names))
    return [f"{split}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['macro']['f1']:.4f} on {len(waves)} clips; with white "
            "noise " + ", ".join(f"{k} {v:.3f}" for k, v in noise.items() if k != "clean"),
            f"report: {metrics['report']} (metrics.json beside it)"]




def tflite(version_dir, out_dir: str, class_names: list[str], config, run_dir: str, options: dict) -> dict:
    """A sound export as float32, float16 and dynamic-range files (int8 too when --variants names it), each checked on the run's
    held-out clips; int8 calibrates on up to --representative_count training clips, spread over the split. Returns the report.

    (Six parameters: the export, where the files go, and what the script was given.)
    """
    import numpy as np

    from tl_keras.audio import tflite as audio_tflite
    from tl_keras.audio.run import read_recorded_audio_splits
    from tl_keras.config.settings import ConfigError
    from tl_keras.export.classes import align
    from tl_keras.tasks import SINGLE_LABEL

    named = options.get("variants_given", True)
    variants = [v for v in options["variants"] if v in (audio_tflite.AUDIO_VARIANTS if named else audio_tflite.DEFAULT_AUDIO_VARIANTS)]
    if not variants:
        raise ConfigError(f"--variants: sound exports convert to {', '.join(audio_tflite.AUDIO_VARIANTS)}")
    if config is None:
        raise ConfigError("pass --run_dir: a sound export is checked on its run's held-out clips")
    splits = read_recorded_audio_splits(config, run_dir)
    split = "test" if splits.has("test") else "validation"
    waves, targets = splits.waves[split], splits.targets[split]
    if splits.target.kind == SINGLE_LABEL:
        targets = align(class_names, splits.class_names, data=f"the run's {split} split")[np.asarray(targets)]
    keep = np.linspace(0, len(waves) - 1, min(options["max_examples"], len(waves))).astype(int)
    minimum = {v: options["min_agreement"] for v in variants} if options["min_agreement"] else None
    train = splits.waves["train"]
    calibration = train[np.linspace(0, len(train) - 1, min(options.get("representative_count", 200), len(train))).astype(int)]
    return audio_tflite.export_audio_tflite(version_dir, out_dir, waves[keep], np.asarray(targets)[keep], class_names,
                                            sample_rate=splits.sample_rate, variants=variants, min_agreement=minimum,
                                            calibration=calibration if "int8" in variants else None)




def predict_request(paths: list[str]) -> dict:
    """What predict.py sends for WAV files: their bytes as `audio_bytes` (decoded and resampled inside the model)."""
    import base64

    from tl_keras.audio.export import AUDIO_INPUT
    from tl_keras.config.settings import ConfigError
    from tl_keras.export.signatures import SERVING_SIGNATURE

    missing = [p for p in paths if not storage.isfile(p)]
    if missing:
        raise ConfigError(f"--audio: file not found: {missing[0]}")
    data = [storage.read_bytes(p) for p in paths]  # local files or objects in a bucket
    rest = {"signature_name": SERVING_SIGNATURE,
            "instances": [{AUDIO_INPUT: {"b64": base64.b64encode(d).decode("ascii")}} for d in data]}
    return {"names": list(paths), "inputs": {AUDIO_INPUT: data}, "rest": rest}


HOOKS = {"check_data": check_data, "evaluate": evaluate, "tflite": tflite, "predict_request": predict_request}
