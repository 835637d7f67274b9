"""Settings are unpacked once at the boundary; each vocabulary and string format has one definition."""

import dataclasses
import json

import pytest

from tl_keras.config import settings as settings_lib
from tl_keras.config.run_config import RunConfig
from tl_keras.training.run_steps import train_settings
from tl_keras.config.settings import AugmentSettings, DataSettings, TrainSettings, backbone_source, settings_from


@pytest.mark.parametrize("cls", [TrainSettings, DataSettings, AugmentSettings])
def test_settings_defaults_are_the_run_configs_defaults(cls):
    """A library user calling `train_two_phase(..., TrainSettings())` gets what the CLI's default recipe gets."""
    run_defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for field in dataclasses.fields(cls):
        if field.name in run_defaults:
            assert field.default == run_defaults[field.name], f"{cls.__name__}.{field.name} drifted from RunConfig"


def test_train_settings_carry_the_runs_identity_for_resume():
    config = RunConfig(dataset="digits_5_9", seed=3)
    plan = train_settings(config)
    assert plan.seed == 3 and plan.fingerprint() == config.fingerprint()
    assert plan.result_settings() == config.result_settings()
    own = TrainSettings(seed=3)
    assert own.fingerprint() != TrainSettings(seed=4).fingerprint()
    assert own.fingerprint() == TrainSettings(seed=3, verbose=0, resume=True).fingerprint(), "reporting flags are not identity"


def test_settings_from_reads_a_config_json_mapping(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(RunConfig(image_dir=str(tmp_path), validation_fraction=0.3).to_json())
    data = settings_from(DataSettings, json.loads(path.read_text()))
    assert data.image_dir == str(tmp_path) and data.validation_fraction == 0.3


def test_code_below_the_settings_boundary_refuses_a_whole_run_config_and_names_the_fix(tmp_path):
    from tl_keras.vision import data as data_lib
    from tl_keras.training.two_phase import train_two_phase
    from tl_keras.vision.augment import build_augmentation

    with pytest.raises(TypeError, match=r"settings: training takes a TrainSettings, got RunConfig.*settings_from\(TrainSettings, config\)"):
        train_two_phase(None, None, None, None, RunConfig(), tmp_path)
    with pytest.raises(TypeError, match="source: load_data takes a DataSettings, got RunConfig"):
        data_lib.load_data(RunConfig(), tmp_path)
    with pytest.raises(TypeError, match="source: load_recorded takes a DataSettings, got dict"):
        data_lib.load_recorded({"dataset": "flowers"}, tmp_path)
    with pytest.raises(TypeError, match="settings: build_augmentation takes an? AugmentSettings, got RunConfig"):
        build_augmentation(RunConfig())


def test_backbone_sources_are_parsed_once(tmp_path):
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"")
    assert backbone_source("kaggle:google/mobilenet-v2/tensorFlow2/100-224-feature-vector") == "hub"
    assert backbone_source("https://tfhub.dev/x/1") == "hub"
    assert backbone_source(str(tmp_path / "saved")) == "saved_model"
    assert backbone_source("model.keras") == "keras_file"
    assert backbone_source("mobilenet_v2") == "name"


def test_cli_accepts_the_hub_handles_the_loader_accepts():
    """The CLI once refused `kaggle:` handles that `load_backbone` took (review: two parsers drifted)."""
    RunConfig(backbone="kaggle:google/mobilenet-v2/tensorFlow2/100-224-feature-vector", weights="none").validate()


def test_one_definition_per_vocabulary():
    from tl_keras.config import validation
    from tl_keras.training import distribute
    from tl_keras.vision import tta

    assert validation._CHOICES["optimizer"] is settings_lib.OPTIMIZERS and distribute.PRECISIONS is settings_lib.PRECISIONS
    assert tta.TTA_MODES is settings_lib.TTA_MODES


@pytest.mark.parametrize("argv, verbose", [
    (["train.py"], False), (["train.py", "--verbosity=1"], True), (["train.py", "-v", "2"], True),
    (["train.py", "--verbosity=0"], False), (["train.py", "--verbosity=-1"], False),
])
def test_native_logs_stay_quiet_unless_asked(argv, verbose):
    import tl_keras

    assert tl_keras.verbose_native_logs(argv) is verbose


def test_scripts_turn_bad_input_into_one_line_and_status_2(capsys):
    from tl_keras.config import cli
    from tl_keras.config.settings import ConfigError

    def main(argv):
        raise ConfigError("--frobnicate: no such thing; pass --frob")

    with pytest.raises(SystemExit) as ended:
        cli.clean_errors(main)(["script"])
    assert ended.value.code == 2
    assert capsys.readouterr().err == "error: --frobnicate: no such thing; pass --frob\n"

    def broken(argv):
        raise KeyError("a bug, not bad input")

    with pytest.raises(KeyError):  # a crash keeps its traceback
        cli.clean_errors(broken)(["script"])


@pytest.mark.parametrize("message, shown", [
    ("pooling='x': must be 'avg' or 'max'", "--pooling='x': must be 'avg' or 'max'"),
    ("cut_layer='fc': no such layer", "--backbone_cut_layer='fc': no such layer"),  # an argument whose flag has another name
    ("ratio=3: not an argument of any flag", "ratio=3: not an argument of any flag"),
    ("/data/x.jpg: not an image", "/data/x.jpg: not an image"),
])
def test_a_script_names_the_flag_where_the_library_names_its_argument(capsys, message, shown):
    from tl_keras.config import cli

    def main(argv):
        raise ValueError(message)

    with pytest.raises(SystemExit):
        cli.clean_errors(main)(["script"])
    assert capsys.readouterr().err == f"error: {shown}\n"


def test_a_small_training_set_gets_enough_fine_tuning_steps_and_a_large_one_its_epochs():
    plan = TrainSettings(fine_tune_epochs=2, fine_tune_min_steps=56)
    assert plan.fine_tune_epoch_count(7) == 8  # 200 photos at batch 32: 8 epochs hold 56 steps
    assert plan.fine_tune_epoch_count(63) == 2  # 2,000 photos: 2 epochs already hold 126
    assert plan.fine_tune_epoch_count(0) == 2  # epoch length unknown: as asked
    assert TrainSettings(fine_tune_epochs=0, fine_tune_min_steps=56).fine_tune_epoch_count(7) == 0  # skipped stays skipped
    assert TrainSettings(fine_tune_epochs=2, fine_tune_min_steps=0).fine_tune_epoch_count(7) == 2  # 0 is off
    assert TrainSettings().fine_tune_epoch_count(7) == 8 and TrainSettings().fine_tune_epoch_count(63) == 1  # the default recipe's
    staged = TrainSettings(fine_tune_epochs=2, fine_tune_min_steps=56, unfreeze_schedule="20,all").fine_tune_stages(7)
    assert [(name, epochs) for name, _, epochs in staged] == [("fine_tune_1", 4), ("fine_tune_2", 4)]


def test_storage_only_choices_do_not_block_a_resume():
    """Keeping features in memory or on disk, and adding the scratch arm, leave the transfer model as it is: same fingerprint."""
    from tl_keras.config.run_config import RunConfig

    base = RunConfig(dataset="digits_5_9", feature_cache="memory", compare_scratch=True)
    assert base.fingerprint() == dataclasses.replace(base, feature_cache="disk").fingerprint()
    assert base.fingerprint() == dataclasses.replace(base, feature_cache="auto").fingerprint()
    assert base.fingerprint() == dataclasses.replace(base, compare_scratch=False).fingerprint()
    # Training the frozen phase on images instead of cached features is another computation.
    assert base.fingerprint() != dataclasses.replace(base, feature_cache="off").fingerprint()


def test_the_fingerprint_hashes_only_what_differs_from_the_defaults():
    """A release that adds a setting at its default must not orphan every earlier run's resume state and caches."""
    import hashlib
    import json

    from tl_keras.config.run_config import RunConfig

    config = RunConfig(seed=3, dropout=0.3)
    expected = hashlib.sha256(json.dumps({"dropout": 0.3, "seed": 3}, sort_keys=True).encode()).hexdigest()[:12]
    assert config.fingerprint() == expected
    assert RunConfig(seed=3, dropout=0.3, task="auto").fingerprint() == expected  # a setting at its default changes nothing
