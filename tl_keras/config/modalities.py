"""The modality registry: what an example is (pixels, tokens, sound) is looked up here, never branched on.

Each modality package (`vision`, `text`, `audio`) registers one `Modality`
when the package root imports it; a test or a user's own package may add
another the same way, with no edit to the core. The run (`tl_keras.run`) and
the scripts in `experiments/` ask the registry which modality a config or a
saved run belongs to and call what it registered. The registry sits in the
config layer so that validation and recipes, the lowest askers, can use it;
it holds callables and imports nothing above itself.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from tl_keras.config.settings import ConfigError

AUTO = "auto"


@dataclasses.dataclass(frozen=True)
class Modality:
    """One kind of example and what the core and the scripts ask of it.

    Attributes:
        name: what `--modality`, summary.json's "modality" and the model card's "model_kind" say.
        noun: what its examples are called in logs and reports ("images", "texts", "clips").
        sources: the RunConfig fields that name its data; a run that sets one of them is this modality's.
        run: trains, evaluates and exports a validated config; returns the run summary.
        validate: raises ConfigError for settings this modality cannot honour (its own rules; the shared ones run after).
        recipe: the recipe `--recipe=auto` means for a config of this modality.
        default: the modality a config with no source at all belongs to (the built-in data).
        hooks: what the scripts ask of it, by name ("check_data", "evaluate_run", "tflite", "predict_request", ...),
            each documented where the script calls it.
    """

    name: str
    noun: str
    sources: tuple[str, ...]
    run: Callable[[Any], dict]
    validate: Callable[[Any], None]
    recipe: Callable[[Any], str]
    default: bool = False
    hooks: Mapping[str, Callable] = dataclasses.field(default_factory=dict)

    def hook(self, name: str) -> Callable:
        """The script hook `name`, or a ConfigError saying this modality has none."""
        if name not in self.hooks:
            raise ConfigError(f"{self.name} runs do not support {name.replace('_', ' ')}")
        return self.hooks[name]


_REGISTRY: dict[str, Modality] = {}


def register(modality: Modality) -> Modality:
    """Adds (or replaces, by name) `modality`; returns it. A second default is refused."""
    others = [m.name for m in _REGISTRY.values() if m.default and m.name != modality.name]
    if modality.default and others:
        raise ValueError(f"modality {modality.name!r} cannot be the default: {others[0]!r} already is")
    _REGISTRY[modality.name] = modality
    return modality


def unregister(name: str) -> None:
    """Removes a modality (a test's toy one, say); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def registered() -> list[str]:
    """The registered modality names, in registration order."""
    return list(_REGISTRY)


def named(name: str) -> Modality:
    """The modality called `name` (from --modality, summary.json or a model card)."""
    if name not in _REGISTRY:
        raise ConfigError(f"--modality={name!r} is not a registered modality; registered: {', '.join(_REGISTRY) or 'none'}")
    return _REGISTRY[name]


def source_flags(config) -> list[str]:
    """Every data-source flag `config` sets, across all modalities, as `--flag` strings."""
    return [f"--{field}" for m in _REGISTRY.values() for field in m.sources if getattr(config, field, None)]


def modality_for(config) -> Modality:
    """The modality a RunConfig belongs to: the one `--modality` names, else the one whose source it sets, else the default.

    Two sources of different modalities, or a source that contradicts
    `--modality`, are refused by flag name.
    """
    given = getattr(config, "modality", AUTO) or AUTO
    claimed = [m for m in _REGISTRY.values() if any(getattr(config, field, None) for field in m.sources)]
    records = getattr(config, "records", "")
    if records:  # sharded records name their modality in their manifest
        if claimed:
            raise ConfigError(f"--records and {' and '.join(source_flags(config))} are all set; give one data source.")
        claimed = [named(records_modality(records))]
    if given != AUTO:
        chosen = named(given)
        strangers = [m.name for m in claimed if m.name != chosen.name]
        if strangers:
            raise ConfigError(f"--modality={given} but {' and '.join(source_flags(config))} name {strangers[0]} data; drop one")
        return chosen
    if len(claimed) > 1:
        raise ConfigError(f"{' and '.join(source_flags(config))} are all set; give one data source.")
    if claimed:
        return claimed[0]
    defaults = [m for m in _REGISTRY.values() if m.default]
    if not defaults:
        raise ConfigError(f"no data source given; set one of {', '.join('--' + f for m in _REGISTRY.values() for f in m.sources)}")
    return defaults[0]


def records_modality(folder: str) -> str:
    """The modality a records folder's manifest names (its payload: image -> vision, text -> text).

    Raises:
        ConfigError: no manifest there (one line naming the folder and the script that writes one).
    """
    import json

    from tl_keras.io import storage

    path = storage.join(folder, "manifest.json")
    if not storage.isfile(path):
        raise ConfigError(f"--records={folder}: no manifest.json there; write the folder with experiments/make_records.py")
    payload = json.loads(storage.read_text(path)).get("payload")
    if payload not in ("image", "text"):
        raise ConfigError(f"--records={folder}: its manifest holds {payload!r} examples; records hold images or texts")
    return {"image": "vision", "text": "text"}[payload]


def modality_of_record(recorded: Mapping[str, Any]) -> Modality:
    """The modality a saved run or export says it is: summary.json's or the model card's "modality".

    Runs and cards written before the registry said "model_kind": "text" for
    texts and nothing (or the image model's shape) for images; both still read.
    """
    if recorded.get("modality"):
        return named(recorded["modality"])
    return named("text" if recorded.get("model_kind") == "text" else "vision")
