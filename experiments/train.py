"""Train a transfer-learning image classifier and export it for TF Serving.

With no flags it runs the offline embedded default (the `embedded` recipe):
ImageNet MobileNetV2 0.35 weights and 500 flower photos that ship in the
package, 40 labels per class, against the same network from scratch given
the same wall time; evaluated, and exported to saved_models/.

  python experiments/train.py
  python experiments/train.py --image_dir=/data/photos                 # the default recipe: MobileNetV2, ImageNet weights
  python experiments/train.py --image_dir=/data/photos --recipe=mobile  # for phones
  python experiments/train.py --tfds=tf_flowers --backbone=efficientnet_b0
  python experiments/train.py --text_file=train.tsv --test_file=test.tsv --backbone=PATH/all-MiniLM-L6-v2   # texts
  python experiments/train.py --flagfile=runs/flowers/flags.txt
  python experiments/train.py --flagfile=runs/flowers/flags.txt --resume   # after a crash or kill
"""


from absl import app, flags

from tl_keras.config import cli
from tl_keras.config.modalities import modality_of_record
from tl_keras.config.run_config import ConfigError, check_run_dir_reuse
from tl_keras.evaluation.calibration import why_not_adopted
from tl_keras.run import run_experiment

cli.define_config_flags()
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}; every setting is a --flag (see --helpfull)")
    try:
        config = cli.config_from_flags(FLAGS).resolved().validate()
        check_run_dir_reuse(config)
    except ConfigError as error:
        cli.fail(f"{error}")
    try:
        summary = run_experiment(config)
    except ConfigError as error:  # e.g. an unreadable resume state, named in the message
        cli.fail(f"{error}")
    print(format_result_table(summary, config))
    print(f"run folder: {summary['run_dir']} (summary.json; metrics in evaluation/)")
    print(f"report (open in a browser): {summary['report_html']}")
    if "export" in summary:
        print(f"SavedModel: {summary['export']}")


SMALL_HELD_OUT = 50  # held-out examples below which the table says how coarse its accuracies are


def format_result_table(summary: dict, config) -> str:
    """The run's headline: transfer against scratch when both ran, with their training wall times."""
    timings = summary["timings"]
    heading = f"recipe {config.recipe}: {summary['setup']}; kept the {summary['kept_phase']} phase"
    if summary.get("scores"):
        return "\n".join([heading, *_task_rows(summary, timings), f"whole job {timings['total_s']:.0f} s"])
    rows = [("transfer", summary["transfer_accuracy"], timings["transfer_train_s"])]
    if "refit" in summary:
        refit = summary["refit"]
        every = "every labelled image" if refit.get("include_test") else "train + validation"
        label = f"transfer refit on {every} ({refit['examples']} images), exported"
        rows.append((label + (" (no held-out split left)" if summary["exported_accuracy"] is None else ""),
                     summary["exported_accuracy"], refit["seconds"]))
    if "scratch_accuracy" in summary:
        budget = "same wall time" if summary.get("scratch_budget") == "time" else "same epochs"
        epochs = summary["scratch_epochs"]
        label = f"same network from scratch ({budget}, {epochs} epoch{'' if epochs == 1 else 's'})"
        rows.append((label, summary["scratch_accuracy"], timings["scratch_train_s"]))
    if "tfidf" in summary:
        rows.append((_baseline_label("TF-IDF + logistic regression", summary["tfidf"]), summary["tfidf"]["accuracy"],
                     summary["tfidf"]["seconds"]))
    width = max(len(label) for label, _, _ in rows) + 2
    lines = [heading, f"{'':<{width}}{summary['evaluated_on'] + ' accuracy':>16}{'train s':>9}"]
    lines += [f"{label:<{width}}{'-' if accuracy is None else f'{accuracy:.4f}':>16}{seconds:>9.0f}" for label, accuracy, seconds in rows]
    held = sum(summary.get("counts", {}).get(summary["evaluated_on"], {}).values())
    if 0 < held < SMALL_HELD_OUT:
        noun = modality_of_record(summary).noun
        lines.append(f"the {summary['evaluated_on']} split holds {held} {noun}: one of them moves accuracy by {1 / held:.3f} "
                     f"(a larger --test_fraction, or more {noun}, makes the comparison firmer)")
    calibration = summary.get("calibration", {})
    if calibration.get("adopted") is False:
        lines.append(
            f"calibration: the head keeps T = 1 (ECE {calibration['ece_before']:.3f}); a temperature of "
            f"{calibration['fitted_temperature']:.2f} was fitted on validation, but {why_not_adopted(calibration)}"
        )
    elif "temperature" in calibration:
        lines.append(
            f"calibration: temperature {calibration['temperature']:.2f} (fitted on validation) takes the expected calibration error "
            f"from {calibration['ece_before']:.3f} to {calibration['ece_after']:.3f}; exported probabilities carry it"
        )
    if "tta" in summary:
        tta = summary["tta"]
        lines.append(f"test-time augmentation {tta['mode']} ({tta['views']} views): accuracy {tta['accuracy']:.4f} ({tta['gain']:+.4f})")
    lines.append(f"whole job {timings['total_s']:.0f} s")
    return "\n".join(lines)


def _baseline_label(name: str, result: dict) -> str:
    """A baseline's row: on the same split, and on how many training rows where --baselines=auto sampled them."""
    if result.get("sampled"):
        return f"{name}, same split ({result['rows']['train']:,} training rows sampled)"
    return f"{name}, same split"


def _task_rows(summary: dict, timings: dict) -> list[str]:
    """A multi-label or regression run's table: each of its task's scores for transfer, scratch and the TF-IDF baseline."""
    names = list(summary["scores"])
    rows = [("transfer", summary["scores"], timings["transfer_train_s"])]
    if summary.get("probe"):
        frozen = summary["phases"].get("frozen", {})
        rows.append(("frozen probe (the frozen phase alone)", summary["probe"], frozen.get("seconds", 0.0)))
    if "scratch_train_s" in timings:
        rows.append(("same network from scratch", {k: summary.get(f"scratch_{k}") for k in names}, timings["scratch_train_s"]))
    if "tfidf" in summary:
        rows.append((_baseline_label("TF-IDF baseline", summary["tfidf"]), summary["tfidf"], summary["tfidf"]["seconds"]))
    if "mfcc" in summary:
        rows.append((_baseline_label("MFCC statistics + linear model", summary["mfcc"]), summary["mfcc"], summary["mfcc"]["seconds"]))
    if summary.get("constant"):
        what = "the training mean for every example" if summary["task"]["kind"] == "regression" else "each tag's training share"
        rows.append((f"constant: {what}", summary["constant"], 0.0))
    width = max(len(label) for label, _, _ in rows) + 2
    held = sum(summary.get("counts", {}).get(summary["evaluated_on"], {}).values()) if summary["task"]["kind"] == "single_label" else 0
    lines = [f"{summary['task']['kind'].replace('_', '-')} over {len(summary['classes'])} output(s), on the "
             f"{summary['evaluated_on']} split" + (f" ({held} {modality_of_record(summary).noun}):" if held else ":"),
             f"{'':<{width}}" + "".join(f"{name:>10}" for name in names) + f"{'train s':>9}"]
    for label, scores, seconds in rows:
        cells = "".join(f"{'-' if scores.get(n) is None else format(scores[n], '.4f'):>10}" for n in names)
        lines.append(f"{label:<{width}}{cells}{seconds:>9.0f}")
    return lines


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
