"""Evaluate a trained classifier and show why it decides: metrics, mistakes, Grad-CAM, calibration, TTA, one report page.

Writes metrics.json, per_class.csv, confusion_matrix.png, per_class.png,
the modality's own pictures (errors and Grad-CAM for images, the worst clips
and accuracy against noise for sound), reliability.png and report.html
(self-contained; open it in a browser).

  python experiments/evaluate.py --model=runs/flowers                    # the run's own test split
  python experiments/evaluate.py --model=saved_models/pets --image_dir=/data/pets_holdout --tta=flip
  python experiments/evaluate.py --model=runs/digits_spoken --split=validation

The run's modality (`tl_keras.config.modalities`) scores it; an export
folder names its modality in its model card; a .keras file is an image model.
"""

from pathlib import Path

from absl import app, flags

from tl_keras.config import cli  # first of the tl_keras imports: it quiets TensorFlow's C++ logs before TF loads

from tl_keras.config.modalities import modality_for, named
from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import TTA_MODES, ConfigError
from tl_keras.io.run_folder import RunFolder

flags.DEFINE_string("model", None, "A run folder, a .keras file, or an export folder.")
flags.DEFINE_string("image_dir", "", "Images to evaluate on, one sub-folder per class (default: the run's test split).")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Which split of the run to evaluate when --image_dir is not given.")
flags.DEFINE_string("output_dir", "", "Where the files go (default: <run>/evaluation_<split> or ./evaluation).")
flags.DEFINE_integer("batch_size", 64, "Examples per batch.")
flags.DEFINE_enum("tta", "none", list(TTA_MODES),
                  "Also measure test-time augmentation: flip (image + mirror), crops (full + 4 corner crops), flip_crops (10 views).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.io.mirror import working_copy

    given = FLAGS.model
    with working_copy(given or "") as local:  # a run or export on an object store is read (and written) through a local copy
        FLAGS.model = local
        try:
            _evaluate()
        finally:
            FLAGS.model = given


def _evaluate():
    from tl_keras.export.classes import classes_or_error
    from tl_keras.export.reload import load_classifier

    if not FLAGS.model:
        cli.fail("--model is required: a run folder, a .keras file or an export folder")
    try:
        model = load_classifier(FLAGS.model, "--model")
        class_names = classes_or_error(FLAGS.model, "--model")
    except ValueError as error:
        cli.fail(f"{error}")
    if len(class_names) != int(model.output_shape[-1]):
        cli.fail(f"--model: {len(class_names)} recorded classes but the model has {model.output_shape[-1]} outputs")
    run_dir = Path(FLAGS.model) if RunFolder(FLAGS.model).is_run() else None
    if run_dir is not None and not FLAGS.image_dir:
        _refuse_a_split_the_model_trained_on(run_dir, FLAGS.split)
    modality = modality_for(RunConfig.from_dict(RunFolder(run_dir).read_config())) if run_dir is not None else _export_modality()
    options = {"model": FLAGS.model, "image_dir": FLAGS.image_dir, "split": FLAGS.split, "output_dir": FLAGS.output_dir,
               "batch_size": FLAGS.batch_size, "tta": FLAGS.tta}
    try:
        lines = modality.hook("evaluate")(model, class_names, run_dir, options)
    except (ConfigError, ValueError) as error:
        cli.fail(f"{error}")
    print("\n".join(lines))


def _refuse_a_split_the_model_trained_on(run_dir: Path, split: str) -> None:
    """A refit model trained on validation (and, on one folder, the test split too): scoring it there would report a
    training score as held-out. The run's report already scores the model trained before the refit."""
    from tl_keras.training.refit import splits_the_run_trained_on

    if split != "train" and split in splits_the_run_trained_on(run_dir):
        keep_out = "--refit=on (which keeps the test split out) or --refit=off" if split == "test" else "--refit=off"
        cli.fail(f"--split={split}: {run_dir}/model.keras was refitted on the {split} split too (--refit), so a score there "
                 f"is not held out; its run's report ({run_dir}/evaluation/) scores the model trained before the refit. "
                 f"Pass --image_dir with images it has not seen, or train with {keep_out}")


def _export_modality():
    """The modality an export folder's model card names; an image model for a .keras file or an export without a card."""
    import json

    from tl_keras.config.modalities import modality_of_record
    from tl_keras.export.saved_model import latest_version_dir

    try:
        card = latest_version_dir(FLAGS.model) / "assets.extra" / "model_card.json"
    except ValueError:
        return named("vision")
    return modality_of_record(json.loads(card.read_text())) if card.is_file() else named("vision")


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
