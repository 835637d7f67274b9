"""RunConfig: validation names the flag; JSON and flagfile round trips; flags mirror fields."""

import dataclasses
from pathlib import Path

import pytest
from absl import flags

from tl_keras.config.run_config import recipe_config
from tl_keras.config import cli
from tl_keras.config.run_config import ConfigError, RunConfig
from tl_keras.config.settings import parse_unfreeze


def test_defaults_validate_and_resolve():
    config = recipe_config("digits").validate().resolved()
    assert config.name == "digits_5_9" and config.run_dir == "runs/digits_5_9"


@pytest.mark.parametrize(
    "changes, flag",
    [
        (dict(batch_size=0), "--batch_size"),
        (dict(dropout=1.0), "--dropout"),
        (dict(learning_rate=0), "--learning_rate"),
        (dict(optimizer="lion"), "--optimizer"),
        (dict(validation_fraction=0.6, test_fraction=0.5), "--validation_fraction plus --test_fraction"),
        (dict(frozen_epochs=0, fine_tune_epochs=0), "--frozen_epochs and --fine_tune_epochs"),
        (dict(name="../x"), "--name"),
        (dict(image_dir="x", tfds="y"), "--image_dir and --tfds"),
        (dict(weights="pretrain:mnist"), "--weights: unknown source dataset"),
        (dict(dataset="mnist"), "--dataset"),
    ],
)
def test_invalid_settings_name_their_flag(changes, flag):
    with pytest.raises(ConfigError, match=flag.replace("+", r"\+")):
        dataclasses.replace(recipe_config("digits"), **changes).validate()


@pytest.mark.parametrize("changes, message", [
    (dict(batch_size=0), "--batch_size must be >= 1, got 0."),
    (dict(learning_rate=0), "--learning_rate must be > 0, got 0."),
    (dict(frozen_epochs=-1), "--frozen_epochs must be >= 0, got -1"),
    (dict(optimizer="lion"), "--optimizer"),
    (dict(validation_fraction=0.6, test_fraction=0.5), "--validation_fraction plus --test_fraction must leave data"),
    (dict(resume=True, overwrite=True), "--resume and --overwrite contradict"),
])
def test_image_and_text_runs_share_one_wording_of_the_shared_rules(tmp_path, changes, message):
    from tl_keras.text.encoders import PRESET_PREFIX

    texts = tmp_path / "train.tsv"
    texts.write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    text = RunConfig(text_file=str(texts), backbone=f"{PRESET_PREFIX}bert_tiny_en_uncased", pooling="mean")
    for config in (recipe_config("digits"), text):
        with pytest.raises(ConfigError) as raised:
            dataclasses.replace(config, **changes).validate()
        assert str(raised.value).startswith(message), (config.is_text(), str(raised.value))


def test_json_round_trip(tmp_path):
    config = dataclasses.replace(recipe_config("digits"), unfreeze="from:100", compare_scratch=False).resolved()
    path = tmp_path / "config.json"
    path.write_text(config.to_json())
    assert RunConfig.from_json(path) == config
    with pytest.raises(ConfigError, match="unknown config keys"):
        RunConfig.from_dict({"epochs": 3})


def test_flags_mirror_fields_and_flagfile_round_trips(tmp_path):
    values = flags.FlagValues()
    cli.define_config_flags(values)
    assert {f.name for f in dataclasses.fields(RunConfig)} <= set(values)
    config = recipe_config("digits", batch_size=7, compare_scratch=False, unfreeze="3")
    flagfile = tmp_path / "flags.txt"
    flagfile.write_text(config.to_flagfile())
    values(["prog", f"--flagfile={flagfile}"])
    assert cli.config_from_flags(values).resolved() == config


def test_parse_unfreeze():
    assert parse_unfreeze("all") == ("all", 0)
    assert parse_unfreeze("20") == ("top", 20)
    assert parse_unfreeze("from:100") == ("from", 100)
    for bad in ("0", "-3", "top", "from:x"):
        with pytest.raises(ConfigError):
            parse_unfreeze(bad)


def test_run_dir_reuse_needs_the_same_settings_or_overwrite(tmp_path):
    from tl_keras.config.run_config import check_run_dir_reuse

    config = dataclasses.replace(recipe_config("digits"), run_dir=str(tmp_path)).resolved()
    check_run_dir_reuse(config)  # empty folder
    (tmp_path / "config.json").write_text(config.to_json())
    check_run_dir_reuse(dataclasses.replace(config, verbose=0))  # reporting settings do not count
    with pytest.raises(ConfigError, match=r"different settings \(--batch_size, --seed\)"):
        check_run_dir_reuse(dataclasses.replace(config, batch_size=8, seed=1))
    check_run_dir_reuse(dataclasses.replace(config, batch_size=8, overwrite=True))


@pytest.mark.parametrize("split_folder", ["train", "training", "val", "Validation"])
def test_a_split_folder_gives_its_parent_name_to_the_run_and_export(tmp_path, split_folder):
    folder = tmp_path / "garden_photos" / split_folder
    folder.mkdir(parents=True)
    config = RunConfig(image_dir=str(folder)).resolved()
    assert config.name == "garden_photos"
    assert Path(config.run_dir) == Path("runs") / "garden_photos"


def test_a_derived_name_never_holds_dots_the_export_refuses(tmp_path):
    folder = tmp_path / "a..b"
    folder.mkdir()
    assert RunConfig(image_dir=str(folder)).resolved().name == "a_b"


def test_config_flags_belong_to_the_script_that_defines_them_so_helpshort_lists_them():
    from absl import flags as absl_flags

    from tl_keras.config import cli

    values = absl_flags.FlagValues()
    cli.define_config_flags(values)
    mine = {flag.name for flag in values.get_key_flags_for_module(__name__)}
    assert {"image_dir", "text_file", "fine_tune_epochs", "allow_new_classes"} <= mine  # --helpshort prints these
