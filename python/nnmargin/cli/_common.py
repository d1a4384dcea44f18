"""What every ``nnmargin`` command shares: the parser class, argparse types, the command record and
the optional dependencies a command may need."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path
from typing import Callable, Optional

from .._errors import InputError

PROG = "nnmargin"

# Optional third-party packages some commands need, and how to install them.
INSTALL = {
    "torch": "pip install torch==2.13.0",
    "pyautoattack": "pip install pyautoattack==0.2.0",
    "matplotlib": "pip install matplotlib",
    "scipy": "pip install scipy",
    "distributed": 'pip install "nnmargin[distributed]"',
    "dask": 'pip install "nnmargin[distributed]"',
}


@dataclasses.dataclass(frozen=True)
class Command:
    """One sub-command: its parser options and the function that runs it.

    ``run(args, argv)`` returns the exit code. ``error_prefix`` starts its error lines
    (``<prefix>: error: ...``); ``interrupted`` is printed after ``<prefix>: `` on Ctrl-C.
    """

    name: str
    help: str
    description: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, list], int]
    error_prefix: str = PROG
    interrupted: str = "interrupted"


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors become :class:`~nnmargin.InputError` (one line, no usage dump)."""

    def error(self, message):
        raise InputError(f"{message} (see '{self.prog} --help')")


def arg_type(convert: Callable, valid: Optional[Callable] = None, message: Optional[str] = None):
    """An argparse ``type``: ``convert(text)``, rejected when it raises ValueError or ``valid(value)``
    is false, with ``message`` (formatted with ``text``) or else the ValueError's own message."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(message.format(text=text) if message else str(exc)) from None
        if valid is not None and not valid(value):
            raise argparse.ArgumentTypeError(message.format(text=text))
        return value
    parse.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in some errors
    return parse


# counts (--limit, --threads, --chunk-size, ...)
positive_int = arg_type(int, lambda v: v >= 1, "expected a positive integer, got {text!r}")


def require(*modules: str) -> None:
    """Import the optional dependencies a command is about to need, so a missing one is reported
    before any long work (as :func:`missing_dependency` words it)."""
    for name in modules:
        importlib.import_module(name)


def missing_dependency(exc: ModuleNotFoundError, command: str) -> Optional[InputError]:
    """The one-line error for an optional dependency that is not installed, or None when ``exc``
    is about another module (a broken installation: its traceback is what helps)."""
    top = (exc.name or "").split(".")[0]
    if top not in INSTALL:
        return None
    return InputError(f"'{PROG} {command}' needs {top}, which is not installed in {sys.executable}: "
                      f"{INSTALL[top]}")


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (progress bars are drawn only there)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):  # no isatty, or a closed / detached stream
        return False


def check_output_paths(args, files=("out", "csv"), folder: str = "plot") -> None:
    """Fail early (before a long run) when an output file or the figure folder cannot be created."""
    plot = getattr(args, folder, None)
    if plot is not None and Path(plot).exists() and not Path(plot).is_dir():
        raise InputError(f"--{folder} {plot}: exists and is not a directory")
    for option in files:
        path = getattr(args, option, None)
        if path is None:
            continue
        target = Path(path)
        if target.is_dir():
            raise InputError(f"--{option} {path}: is a directory")
        if not target.parent.resolve().is_dir():
            raise InputError(f"--{option} {path}: folder {target.parent} does not exist")
