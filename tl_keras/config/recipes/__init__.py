"""Named recipes: each a module whose `SETTINGS` fill every setting the user did not give.

A recipe is data, one file each, with the command that measures it and the
result it reached in its docstring (`benchmarks/recipes.py` measures them
all). `RunConfig.resolved()` applies the recipe (and `config.recipe_config`
builds a resolved config from one): explicit settings always
win, and the resolved config records the recipe's name and which settings
were explicit, so `config.json` says where every value came from.

`auto` (the default) picks `embedded` for the built-in photo set,
`digits` for the built-in digits, `default` for a user's own images,
`text` for labelled texts, and for sound `audio` (the speech encoder, where
its files are at hand) or `audio_image` (an image backbone over log-mel
images): each modality says which (`Modality.recipe`).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Iterable, TypeVar

from tl_keras.config.settings import ConfigError
from tl_keras.config.modalities import modality_for

NAMES = ("default", "mobile", "tutorial", "accurate", "embedded", "digits", "text", "text_fast", "audio", "audio_image")
AUTO = "auto"
_PROVENANCE = ("recipe", "explicit")
# Filled by `resolved()` from the data source (name, run_dir) or by the CLI from the terminal (verbose) when not given;
# no recipe sets them, so they are never recorded as explicit.
_DERIVED = ("name", "run_dir", "verbose")
# Settings never counted as given by the caller: where values came from, and what is derived when left empty.
NEVER_GIVEN = frozenset(_PROVENANCE + _DERIVED)
# A `RunConfig`; this package does not import config.py (config.py applies recipes).
RunConfigT = TypeVar("RunConfigT")


def settings(name: str, known: Iterable[str] | None = None) -> dict[str, Any]:
    """The settings recipe `name` sets (a copy), checked against the `known` setting names when given."""
    if name not in NAMES:
        raise ConfigError(f"--recipe: unknown recipe {name!r}; known: {', '.join(NAMES)} (or auto)")
    values = dict(importlib.import_module(f"tl_keras.config.recipes.{name}").SETTINGS)
    unknown = sorted(set(values) - set(known)) if known is not None else []
    if unknown:
        raise ConfigError(f"recipe {name!r} sets unknown settings {unknown}")
    # A rate the run finds itself is written "auto", as on the command line; RunConfig stores it as 0.
    return {key: 0.0 if key == "fine_tune_learning_rate" and value == "auto" else value for key, value in values.items()}


def given_settings(config) -> set[str]:
    """The settings a config's caller gave (its `explicit` list), which no recipe replaces."""
    return {key for key in config.explicit.split(",") if key}


def auto_recipe(config) -> str:
    """The recipe `--recipe=auto` means for this config's data source."""
    return modality_for(config).recipe(config)


def apply_recipe(config: RunConfigT) -> RunConfigT:
    """`config` with its recipe's settings in every field not given explicitly.

    A field counts as explicit when it is listed in `config.explicit` (the
    command line lists every flag it was given) or holds a value other than
    both the `RunConfig` default and the recipe's, which is how a library
    caller's keyword arguments are told apart. Applying twice changes nothing.
    A library caller who wants a `RunConfig` default value under a recipe
    that sets another one must say so: `recipe_config(name, field=value)`
    lists it in `explicit`.
    """
    name = auto_recipe(config) if config.recipe == AUTO else config.recipe
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    values = settings(name, defaults)
    given = given_settings(config)
    unknown = sorted(given - set(defaults))
    if unknown:
        raise ConfigError(f"--explicit names unknown settings {unknown}")
    current = config.to_dict()
    for key, value in current.items():
        if key not in NEVER_GIVEN and value != defaults[key] and not (key in values and value == values[key]):
            given.add(key)
    given -= NEVER_GIVEN
    updates = {key: value for key, value in values.items() if key not in given}
    return dataclasses.replace(config, **updates, recipe=name, explicit=",".join(sorted(given)))


def provenance_line(config: RunConfigT) -> str | None:
    """For a resolved config whose caller set values its recipe sets otherwise: one log line saying which were kept.

    None when the caller overrode nothing (config.json's `recipe` and
    `explicit` record every value's origin either way), so the embedded
    default's output stays as it is.
    """
    values = settings(config.recipe)
    given = given_settings(config)
    overrode = [f"{key}={getattr(config, key)!r} (recipe: {values[key]!r})" for key in sorted(given & set(values))
                if getattr(config, key) != values[key]]
    if not overrode:
        return None
    applied = len([key for key in values if key not in given])
    return f"recipe {config.recipe}: kept yours over the recipe: {', '.join(overrode)}; applied its {applied} other settings"
