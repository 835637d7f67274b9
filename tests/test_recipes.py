"""Recipes: auto picks by data source, explicit settings win, resolution is idempotent, photos get photo defaults."""

import dataclasses

import pytest
from absl import flags

from tl_keras.config import cli
from tl_keras.vision.backbones import bundled_imagenet_weights
from tl_keras.config.run_config import ConfigError, RunConfig
from tl_keras.config.run_config import recipe_config
from tl_keras.config.recipes import NAMES, apply_recipe, settings


def test_auto_recipe_follows_the_data_source(tmp_path):
    assert RunConfig().resolved().recipe == "embedded"
    assert RunConfig(dataset="digits_5_9").resolved().recipe == "digits"
    photos = RunConfig(image_dir=str(tmp_path)).resolved()
    assert photos.recipe == "default"
    # A user's own photos get a real backbone with ImageNet weights at its own size, and no scratch arm.
    assert (photos.backbone, photos.weights, photos.image_size, photos.compare_scratch) == ("mobilenet_v2", "imagenet", 0, False)
    assert photos.photo_warnings() == []


def test_embedded_default_uses_bundled_photos_and_weights():
    config = RunConfig().resolved()
    assert (config.dataset, config.backbone, config.alpha, config.image_size) == ("flowers", "mobilenet_v2", 0.35, 160)
    assert config.compare_scratch and config.scratch_budget == "time"
    assert bundled_imagenet_weights("mobilenet_v2", 0.35) is not None
    assert bundled_imagenet_weights("mobilenet_v2", 1.0) is None


def test_explicit_settings_win_over_the_recipe_even_at_default_values():
    values = flags.FlagValues()
    cli.define_config_flags(values)
    values(["prog", "--recipe=mobile", "--image_size=0", "--fine_tune_epochs=7"])
    config = cli.config_from_flags(values).resolved()
    assert config.recipe == "mobile"
    assert config.alpha == 0.35  # from the recipe
    assert config.image_size == 0  # explicit, though equal to RunConfig's default and not to the recipe's 128
    assert config.fine_tune_epochs == 7
    assert set(config.explicit.split(",")) == {"image_size", "fine_tune_epochs"}


def test_a_keyword_given_to_runconfig_stays_even_when_it_equals_the_default(tmp_path):
    texts = tmp_path / "t.csv"
    texts.write_text("text,label\na,x\nb,y\n")
    # 1, 5e-5 and 0.2 are RunConfig's own defaults; the text recipe sets 3, 1e-4 and 0.1.
    config = RunConfig(text_file=str(texts), fine_tune_epochs=1, fine_tune_learning_rate=5e-5, dropout=0.2).resolved()
    assert (config.fine_tune_epochs, config.fine_tune_learning_rate, config.dropout) == (1, 5e-5, 0.2)
    assert config.batch_size == settings("text")["batch_size"] and config.fine_tune_optimizer == "adamw"  # what was left out
    assert {"fine_tune_epochs", "fine_tune_learning_rate", "dropout"} <= set(config.explicit.split(","))
    # A copy (dataclasses.replace, config.json read back) keeps the recorded provenance, adding nothing.
    assert dataclasses.replace(config, seed=3).explicit == config.explicit
    assert RunConfig.from_dict(config.to_dict()) == config


def test_a_setting_left_out_of_the_call_is_still_filled_by_the_recipe(tmp_path):
    config = RunConfig(image_dir=str(tmp_path), recipe="mobile").resolved()
    assert config.alpha == 0.35 and config.explicit == "image_dir"


def test_the_log_line_names_what_the_recipe_applied_and_what_the_caller_kept(tmp_path):
    from tl_keras.config.recipes import provenance_line

    texts = tmp_path / "t.csv"
    texts.write_text("text,label\na,x\nb,y\n")
    line = provenance_line(RunConfig(text_file=str(texts), fine_tune_epochs=1).resolved())
    assert line.startswith("recipe text: kept yours over the recipe: fine_tune_epochs=1 (recipe: 3); applied its ")
    applied = len(settings("text")) - 1
    assert line.endswith(f"applied its {applied} other settings")
    assert provenance_line(RunConfig(text_file=str(texts), seed=3).resolved()) is None  # nothing of the recipe's overridden


def test_library_keywords_win_and_resolving_twice_changes_nothing():
    config = recipe_config("tutorial", image_dir="/data", learning_rate=3e-4)
    assert config.learning_rate == 3e-4 and config.fine_tune_optimizer == "rmsprop"
    assert config.resolved() == config
    assert apply_recipe(dataclasses.replace(config, recipe="tutorial")) == config


@pytest.mark.parametrize("name", NAMES)
def test_every_recipe_resolves_to_a_valid_config(name, tmp_path, monkeypatch):
    texts = tmp_path / "texts.tsv"
    texts.write_text("good\tpos\nbad\tneg\n")
    encoder = tmp_path / "speech_embedding"  # where the audio recipe's encoder is looked for (its files, empty here)
    encoder.mkdir()
    for file in ("melspectrogram.tflite", "embedding_model.tflite"):
        (encoder / file).write_bytes(b"")
    monkeypatch.setenv("TL_KERAS_SPEECH_EMBEDDING", str(encoder))
    if name in ("embedded", "digits"):
        config = recipe_config(name)
    elif name.startswith("text"):
        config = recipe_config(name, text_file=str(texts))
    elif name.startswith("audio"):
        config = recipe_config(name, audio_dir=str(tmp_path))
    else:
        config = recipe_config(name, image_dir=str(tmp_path))
    config.validate()
    assert config.recipe == name
    for key, value in settings(name).items():
        assert getattr(config, key) == value


def test_auto_picks_the_text_recipe_for_texts_and_refuses_an_image_backbone_for_them(tmp_path):
    texts = tmp_path / "texts.tsv"
    texts.write_text("good\tpos\nbad\tneg\n")
    assert RunConfig(text_file=str(texts)).resolved().recipe == "text"
    with pytest.raises(ConfigError, match="--backbone='mobilenet_v2' is not a text encoder"):
        RunConfig(text_file=str(texts), backbone="mobilenet_v2", explicit="backbone").resolved().validate()


def test_unknown_recipe_is_refused_by_name():
    with pytest.raises(ConfigError, match="--recipe: unknown recipe 'fast'"):
        RunConfig(recipe="fast").resolved()


def test_settings_that_make_no_sense_for_photos_are_named(tmp_path):
    config = recipe_config("default", image_dir=str(tmp_path), backbone="small_cnn", weights="pretrain:digits_0_4", image_size=16)
    warnings = config.photo_warnings()
    assert any("--weights=pretrain:digits_0_4" in w for w in warnings)
    assert any("--backbone=small_cnn" in w for w in warnings)
    assert any("--image_size=16" in w for w in warnings)
    with pytest.raises(ConfigError, match="small_cnn has no ImageNet weights"):
        recipe_config("default", image_dir=str(tmp_path), backbone="small_cnn").validate()


def test_fine_tune_rate_auto_reads_from_flags_flagfiles_and_recipes(tmp_path, monkeypatch):
    values = flags.FlagValues()
    cli.define_config_flags(values)
    values(["prog", "--fine_tune_learning_rate=auto"])
    config = cli.config_from_flags(values).resolved().validate()
    assert config.fine_tune_learning_rate == 0.0, "auto is stored as 0"
    again = flags.FlagValues()
    cli.define_config_flags(again)
    again(["prog", *config.to_flagfile().split()])
    assert cli.config_from_flags(again).fine_tune_learning_rate == 0.0
    from tl_keras.config.recipes import mobile

    monkeypatch.setitem(mobile.SETTINGS, "fine_tune_learning_rate", "auto")
    assert settings("mobile")["fine_tune_learning_rate"] == 0.0
    with pytest.raises(ConfigError, match="--fine_tune_learning_rate must be > 0, or auto"):
        RunConfig(fine_tune_learning_rate=-1.0).resolved().validate()
