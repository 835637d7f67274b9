"""absl flags generated from `RunConfig`, so scripts and config never drift apart.

Each dataclass field becomes a flag of the same name, default and help
text; `config_from_flags` turns parsed flags back into a `RunConfig`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from typing import Callable, NoReturn

from absl import flags, logging

from tl_keras.config.run_config import RunConfig
from tl_keras.config.settings import ConfigError

# What a script exits with when its input (flags, data, a model folder) is wrong; absl uses 1 for usage errors too, Python 1 for
# a crash, so 2 tells a caller "fix the input" apart from "tl_keras broke".
BAD_INPUT_STATUS = 2
# Errors that mean bad input: raised by tl_keras with a message that names the flag, file or folder and the fix.
BAD_INPUT_ERRORS = (ConfigError, ValueError, FileNotFoundError, FileExistsError, NotADirectoryError)


# Library arguments whose flag has another name.
_FLAG_OF_ARGUMENT = {"cut_layer": "backbone_cut_layer", "output_key": "hub_output_key", "bottom_scale": "layer_rate_bottom"}
_ARGUMENT_FIRST = re.compile(r"^([a-z][a-z0-9_]*)=")


def in_flag_terms(message: str) -> str:
    """A library message that opens with an argument (`pooling='x': ...`) opened with its flag instead (`--pooling='x': ...`).

    The library speaks in its own arguments, as Keras does (`Received:
    pooling=...`); only the script knows they came from flags, so it adds
    the dashes here. Messages that open otherwise are left as they are.
    """
    match = _ARGUMENT_FIRST.match(message)
    if not match:
        return message
    argument = match.group(1)
    flag = _FLAG_OF_ARGUMENT.get(argument, argument)
    if flag not in _FLAG_NAMES:
        return message
    return f"--{flag}={message[match.end():]}"


def fail(message: str) -> NoReturn:
    """Ends a script on bad input: one line on stderr, exit status 2, no traceback."""
    print(f"error: {in_flag_terms(message)}", file=sys.stderr)
    sys.exit(BAD_INPUT_STATUS)


def file_progress() -> Callable[[int, int], None]:
    """A `progress(done, total)` callback drawing a bar of files on a terminal, and nothing when output is piped (a bar's
    control codes would garble a log file)."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not sys.stdout.isatty():
            return
        if bar is None:
            import keras  # here, not at the top: this module loads before TensorFlow is quieted

            bar = keras.utils.Progbar(total, unit_name="file")
        bar.update(done)

    return progress


def clean_errors(main: Callable[[list[str]], None]) -> Callable[[list[str]], None]:
    """Wraps a script's absl `main` so bad-input errors end as `fail` does (`--verbosity=1` shows the traceback instead).

    A tl_keras bug raising one of these types would also end in one line;
    the traceback is one flag away.
    """

    @functools.wraps(main)
    def wrapped(argv):
        try:
            return main(argv)
        except BAD_INPUT_ERRORS as error:
            if logging.get_verbosity() >= 1:
                raise
            fail(str(error).removeprefix("error: "))

    return wrapped

_FLAG_NAMES = frozenset(f.name for f in dataclasses.fields(RunConfig)) | {"version", "int8_io", "temperature", "teacher"}

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
    """Defines one flag per `RunConfig` field (or per field named in `only`), as flags of the calling script.

    Declared for the script, not for this module, so the script's `--helpshort`
    (and `--help`'s first section) lists them; absl files a flag under the
    module whose code called DEFINE.
    """
    module = _calling_module()
    for field in dataclasses.fields(RunConfig):
        if only and field.name not in only:
            continue
        kind = type(field.default)
        help_text = field.metadata.get("help", "")
        if field.name in _AUTO_FLOATS:
            flags.DEFINE(_FloatOrAutoParser(), field.name, field.default, help_text, flag_values=flag_values, module_name=module)
            continue
        _DEFINERS[kind](field.name, field.default, help_text, flag_values=flag_values, module_name=module)


def _calling_module() -> str:
    """The name absl files the caller's flags under: the script's path for `__main__`, else its module name."""
    caller = sys._getframe(2).f_globals.get("__name__", "")
    return sys.argv[0] if caller == "__main__" else caller


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
    if "verbose" in values and not flag_values["verbose"].present and not sys.stdout.isatty():
        values["verbose"] = 0  # Keras's per-epoch lines are for a terminal; a log file gets the run's own summary lines
    if "explicit" in flag_values and not flag_values["explicit"].present:
        given = {name for name in names if flag_values[name].present and name not in ("recipe", "explicit")}
        values["explicit"] = ",".join(sorted(given))
    return RunConfig.from_dict(values)  # explicit is what the command line said, not every flag the script defines
