"""Learning-rate range test for a run's two phases: the head on cached features, then the fine-tune.

Takes the same flags as train.py (usually --flagfile of a run). The head
test trains the new head on the frozen backbone's cached features at rates
from 1e-6 to 10; the fine-tune test starts from the head fitted to
convergence (as training does) with the backbone unfrozen as --unfreeze
says, at rates from 1e-7 to 1e-1, on augmented images. Writes lr_find.png
(loss against rate, suggestion marked) and lr_range_test.json; nothing else in
the run folder changes.

  python experiments/lr_find.py --flagfile=runs/flowers/flags.txt
  python experiments/lr_find.py --image_dir=/data/photos --lr_find_steps=200
  python experiments/train.py --image_dir=/data/photos --fine_tune_learning_rate=auto   # the same test inside training
"""

import json
import shutil
import tempfile
from pathlib import Path

from absl import app, flags

from tl_keras.config import cli

cli.define_config_flags()
flags.DEFINE_integer("lr_find_steps", 0, "Training steps per range test (one rate each); 0 uses the library's default (100).")
flags.DEFINE_string("output_dir", "", "Where lr_find.png and lr_range_test.json go (default: the run folder).")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from tl_keras.vision import data as data_lib
    from tl_keras.training import features as features_lib
    from tl_keras.training import lr_finder
    from tl_keras.models.builders import with_augmentation
    from tl_keras.vision.augment import build_augmentation
    from tl_keras.models.builders import HEAD_NAME
    from tl_keras.config.run_config import ConfigError
    from tl_keras.config.settings import AugmentSettings, DataSettings, settings_from
    from tl_keras.vision.run import build_model, prepare_batches, resolve_weights
    from tl_keras.training.freezing import freeze_backbone, unfreeze_backbone

    try:
        config = cli.config_from_flags(FLAGS).resolved().validate()
    except ConfigError as error:
        cli.fail(f"{error}")
    run_dir = Path(config.run_dir)
    out_dir = Path(FLAGS.output_dir) if FLAGS.output_dir else run_dir
    scratch = Path(tempfile.mkdtemp(prefix="lr_find_"))
    data_settings = settings_from(DataSettings, config)
    try:
        recorded = (run_dir / "split.json").is_file()
        splits = data_lib.load_recorded(data_settings, run_dir) if recorded else data_lib.load_data(data_settings, scratch)
        backbone, model = build_model(config, resolve_weights(config, scratch, {}), len(splits.class_names))
        batches = prepare_batches(config, splits, backbone.input_size, scratch)
    except (ConfigError, ValueError) as error:
        cli.fail(f"{error}")
    steps = FLAGS.lr_find_steps or lr_finder.STEPS

    freeze_backbone(backbone.layer)
    extractor = features_lib.feature_extractor(model)
    train_cache = features_lib.cache_features(extractor, batches.train.epoch(0), storage="memory", name="train")
    validation_cache = features_lib.cache_features(extractor, batches.validation, storage="memory", name="validation")
    head = features_lib.head_on_features(model)
    tests = {"head (cached features)": lr_finder.lr_range_test(
        head, train_cache.epochs(config.batch_size, config.seed).stream(0), optimizer=config.optimizer,
        label_smoothing=config.label_smoothing, min_lr=lr_finder.HEAD_RATES[0], max_lr=lr_finder.HEAD_RATES[1], steps=steps,
    )}
    features_lib.fit_logistic_head(model.get_layer(HEAD_NAME), train_cache, validation_cache, seed=config.seed)
    unfreeze_backbone(backbone.layer, config.unfreeze)
    trainer = with_augmentation(model, build_augmentation(settings_from(AugmentSettings, config)))
    tests[f"fine-tune (--unfreeze={config.unfreeze})"] = lr_finder.lr_range_test(
        trainer, batches.train.stream(0), optimizer=config.fine_tune_optimizer, label_smoothing=config.label_smoothing,
        min_lr=lr_finder.FINE_TUNE_RATES[0], max_lr=lr_finder.FINE_TUNE_RATES[1], steps=steps,
    )
    png = lr_finder.plot(tests, out_dir / "lr_find.png")
    # Not lr_find.json: that name is the run's record of an auto-chosen rate, which a resume reads back.
    (out_dir / "lr_range_test.json").write_text(json.dumps({name: t.to_dict() for name, t in tests.items()}, indent=1))
    for name, test in tests.items():
        rate = f"{test.suggestion:.2e}" if test.suggestion else "none (too few steps)"
        print(f"{name}: suggested learning rate {rate} ({len(test.losses)} steps)")
    print(f"current: --learning_rate={config.learning_rate:g} --fine_tune_learning_rate={config.fine_tune_learning_rate:g}")
    print(f"plot: {png}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    app.run(cli.clean_errors(main))
