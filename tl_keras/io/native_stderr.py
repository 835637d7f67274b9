"""Holding back what native libraries write straight to file descriptor 2, where no logging setting reaches.

TensorFlow's C++ start-up lines and LiteRT's "Created TensorFlow Lite
XNNPACK delegate for CPU." are written by C code to the process's stderr
descriptor, past Python's `sys.stderr` and every log level; only pointing
the descriptor elsewhere for the call keeps them off a user's terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Points descriptor 2 at /dev/null inside the block (Python's own errors still raise), then restores it."""
    saved = None
    if enabled:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no real stderr (embedded interpreters)
            pass
    if saved is None:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        yield
    finally:
        flush_c_streams()  # lines the C code left in a stdio buffer go to /dev/null now, not to the terminal later
        os.dup2(saved, 2)
        os.close(saved)


def flush_c_streams() -> None:
    """fflush(NULL): empties every C stdio buffer of this process (a no-op where libc cannot be loaded)."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


def verbose_native_logs(argv: list[str]) -> bool:
    """Whether the command line asks absl for verbose logs (`--verbosity=1`, `-v 1`, ...): then native lines show."""
    import re

    match = re.search(r"(?:--verbosity|-v)[= ](-?\d+)", " ".join(argv[1:]))
    return bool(match) and int(match.group(1)) >= 1
