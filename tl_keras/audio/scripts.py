"""What the scripts in `experiments/` do for a sound run, registered as the audio modality's hooks.

Each hook takes plain arguments and returns what the script prints, so the
script stays a dispatcher: it asks the registry for the modality and calls
the hook named like its own job.
"""

from __future__ import annotations

from pathlib import Path

from tl_keras.io import atomic


def check_data(config, report_path: str) -> list[str]:
    """Every clip read once, as training would: what is left out and why, what is kept but noted, the clip length, the split."""
    from tl_keras.audio.data import load_audio_splits
    from tl_keras.audio.model import SPEECH_EMBEDDING, speech_embedding_folder
    from tl_keras.audio.speech_embedding import MIN_SAMPLES, SAMPLE_RATE, is_speech_embedding_folder

    speech = config.backbone == SPEECH_EMBEDDING and speech_embedding_folder() or is_speech_embedding_folder(config.backbone)
    splits = load_audio_splits(
        config.audio_file or config.audio_dir, table=bool(config.audio_file), task=config.task,
        validation_fraction=config.validation_fraction, test_fraction=config.test_fraction, seed=config.seed,
        clip_seconds=config.clip_seconds, min_seconds=MIN_SAMPLES / SAMPLE_RATE if speech else 0.0,
    )
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


HOOKS = {"check_data": check_data}
