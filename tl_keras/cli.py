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
# Float flags that also take the word "auto", stored as 0 (found at run time).
_AUTO_FLOATS = ("fine_tune_learning_rate",)


class _FloatOrAutoParser(flags.FloatParser):
    """A float flag that also reads "auto" as 0."""

    def parse(self, argument):
        if isinstance(argument, str) and argument.strip().lower() == "auto":
            return 0.0
        return super().parse(argument)


def define_config_flags(flag_values: flags.FlagValues = flags.FLAGS, only: tuple[str, ...] = ()) -> None:
    """Defines one flag per `RunConfig` field (or per field named in `only`)."""
    for field in dataclasses.fields(RunConfig):
        if only and field.name not in only:
            continue
        kind = type(field.default)
        if field.name in _AUTO_FLOATS:
            flags.DEFINE(_FloatOrAutoParser(), field.name, field.default, field.metadata.get("help", ""), flag_values=flag_values)
            continue
        _DEFINERS[kind](field.name, field.default, field.metadata.get("help", ""), flag_values=flag_values)


def config_from_flags(flag_values: flags.FlagValues = flags.FLAGS) -> RunConfig:
    """The `RunConfig` the parsed flags describe (not yet resolved nor validated); undefined fields keep defaults.

    Every flag given on the command line is listed in `explicit`, so it wins
    over `--recipe` even when it equals a default. A flagfile written by a
    run carries its own `--explicit`, which is kept as it is: a rerun records
    the same provenance (any flag added beside it that changes a value still
    wins, by its value).
    """
    names = [f.name for f in dataclasses.fields(RunConfig) if f.name in flag_values]
    values = {name: flag_values[name].value for name in names}
    if "explicit" in flag_values and not flag_values["explicit"].present:
        given = {name for name in names if flag_values[name].present and name not in ("recipe", "explicit")}
        values["explicit"] = ",".join(sorted(given))
    return RunConfig(**values)
