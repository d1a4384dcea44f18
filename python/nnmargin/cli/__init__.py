"""The ``nnmargin`` command line: one parser and one dispatch path for every command.

    nnmargin certify                          # embedded MNIST sample: no files, no network, ~1 s
    nnmargin certify --dataset mnist --classes 3 5 --eps 0.5 1 2 --out result.json
    nnmargin info                             # version, CPU kernels, CUDA, data directory
    nnmargin experiment ... / nnmargin report ...   (need torch / matplotlib)

Each command is a module of this package (:mod:`.certify`, :mod:`.info`, :mod:`.experiment`,
:mod:`.report`) with its options and a ``run`` function that calls the library.

``main(argv)`` returns the exit code: 0 on success; 2 for a problem with the input (an
:class:`~nnmargin.InputError`: a bad option, a missing dataset file, an optional package that is
not installed, ...), reported as one ``nnmargin: error: ...`` line on stderr; 1 for anything else
(a bug or an environment failure), with its traceback; 130 when interrupted.
"""
from __future__ import annotations

import os
import sys
import traceback
from typing import Optional, Sequence

from .. import __version__
from .._errors import InputError
from . import certify, experiment, info, lipschitz, report, separation
from ._common import PROG, Parser, missing_dependency

COMMANDS = (certify.COMMAND, info.COMMAND, experiment.COMMAND, report.COMMAND, separation.COMMAND,
            lipschitz.COMMAND)

__all__ = ["main", "build_parser", "COMMANDS"]


def build_parser() -> Parser:
    """The ``nnmargin`` argument parser with every command of :data:`COMMANDS`."""
    parser = Parser(prog=PROG, description="Exact, fast robustness certificates for nearest-neighbour classifiers.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command")
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(sub)
        sub.set_defaults(spec=command)
    return parser


def _one_line(exc: BaseException) -> str:
    """An exception's message on a single line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _run(command, args, argv) -> int:
    try:
        return command.run(args, argv)
    except ModuleNotFoundError as exc:
        missing = missing_dependency(exc, command.name)
        if missing is None:
            raise
        raise missing from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``nnmargin`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    prefix, interrupted = PROG, "interrupted"
    try:
        args = build_parser().parse_args(argv)
        if args.command is None:
            names = [c.name for c in COMMANDS]
            raise InputError(f"choose a command: {', '.join(names[:-1])} or {names[-1]} (see '{PROG} --help')")
        prefix, interrupted = args.spec.error_prefix, args.spec.interrupted
        return _run(args.spec, args, argv)
    except SystemExit as exc:  # --help and --version end the parse
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:  # e.g. `nnmargin certify | head`: the reader left, nothing to report
        sys.stdout = open(os.devnull, "w")  # keep the interpreter's final flush from failing again
        return 1
    except KeyboardInterrupt:
        print(f"\n{prefix}: {interrupted}", file=sys.stderr)
        return 130
    except InputError as exc:
        print(f"{prefix}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception:  # not the user's mistake: a bug or an environment failure; the traceback says where
        traceback.print_exc()
        print(f"{prefix}: internal error (not a problem with the input; see the traceback above)", file=sys.stderr)
        return 1
