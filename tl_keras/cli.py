"""absl flags generated from `RunConfig`, so scripts and config never drift apart.

Each dataclass field becomes a flag of the same name, default and help
text; `config_from_flags` turns parsed flags back into a `RunConfig`.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from tl_keras.config import RunConfig

_DEFINERS = {
    bool: flags.DEFINE_bool,
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
}


def define_config_flags(flag_values: flags.FlagValues = flags.FLAGS, only: tuple[str, ...] = ()) -> None:
    """Defines one flag per `RunConfig` field (or per field named in `only`)."""
    for field in dataclasses.fields(RunConfig):
        if only and field.name not in only:
            continue
        kind = type(field.default)
        _DEFINERS[kind](field.name, field.default, field.metadata.get("help", ""), flag_values=flag_values)


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> RunConfig:
    """The `RunConfig` the parsed flags describe (not yet validated); undefined fields keep defaults."""
    values = {f.name: flag_values[f.name].value for f in dataclasses.fields(RunConfig) if f.name in flag_values}
    return RunConfig(**values)
