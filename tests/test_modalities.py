"""The modality registry: the run, validation and recipes ask it; a fourth modality plugs in from outside the package."""

import pytest

import tl_keras  # noqa: F401 - registers vision, text and audio
from tl_keras.config import modalities
from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import ConfigError
from tl_keras.run import run_experiment


@pytest.fixture
def toy_modality():
    """A modality defined here, in a test file: it claims no RunConfig field, so it runs when --modality names it."""
    seen = {}

    def run(config):
        seen["config"] = config
        return {"modality": "toy", "name": config.name, "accuracy": 1.0}

    def validate(config):
        if config.batch_size > 64:
            raise ConfigError("--batch_size: the toy modality takes at most 64")

    toy = modalities.register(modalities.Modality(
        name="toy", noun="toys", sources=(), run=run, validate=validate, recipe=lambda config: "default",
        hooks={"check_data": lambda config: ["all toys fine"]},
    ))
    yield toy, seen
    modalities.unregister("toy")


def test_the_three_modalities_register_themselves_when_tl_keras_is_imported():
    assert modalities.registered()[:3] == ["vision", "text", "audio"]


@pytest.mark.parametrize("settings, expected", [
    ({}, "vision"),  # the built-in photos
    ({"image_dir": "photos"}, "vision"),
    ({"text_file": "reviews.csv"}, "text"),
    ({"audio_dir": "clips"}, "audio"),
    ({"audio_file": "clips.csv"}, "audio"),
])
def test_a_config_belongs_to_the_modality_whose_source_it_sets(settings, expected):
    assert modalities.modality_for(RunConfig(**settings)).name == expected


def test_two_sources_of_different_modalities_are_refused_by_flag():
    with pytest.raises(ConfigError, match="--image_dir and --audio_dir are all set; give one data source"):
        modalities.modality_for(RunConfig(image_dir="photos", audio_dir="clips"))


def test_a_source_contradicting_the_named_modality_is_refused():
    with pytest.raises(ConfigError, match="--modality=text but --audio_dir name audio data"):
        modalities.modality_for(RunConfig(modality="text", audio_dir="clips"))


def test_an_unknown_modality_lists_the_registered_ones():
    with pytest.raises(ConfigError, match=r"--modality='smell' is not a registered modality; registered: vision, text, audio"):
        RunConfig(modality="smell").validate()


def test_a_toy_fourth_modality_runs_validates_and_answers_scripts_without_core_edits(toy_modality):
    toy, seen = toy_modality
    summary = run_experiment(RunConfig(modality="toy", name="toy_run"))
    assert summary == {"modality": "toy", "name": "toy_run", "accuracy": 1.0}
    assert seen["config"].modality == "toy"
    with pytest.raises(ConfigError, match="the toy modality takes at most 64"):
        RunConfig(modality="toy", batch_size=128).validate()
    assert modalities.modality_of_record({"modality": "toy"}).hook("check_data")(None) == ["all toys fine"]
    with pytest.raises(ConfigError, match="toy runs do not support evaluate run"):
        toy.hook("evaluate_run")


def test_saved_runs_and_exports_name_their_modality():
    assert modalities.modality_of_record({"modality": "audio"}).name == "audio"
    assert modalities.modality_of_record({"model_kind": "text"}).name == "text"
    assert modalities.modality_of_record({"model_kind": "single"}).name == "vision"  # an image card written before cards named it
