"""Shared entry point of the sub-commands that own their parsers (``nnmargin experiment``, ``report``)."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence


def parse_and_run(add_arguments: Callable, run: Callable, prog: str, description: str,
                  argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) with the options ``add_arguments`` defines, then
    return ``run(args)``; --help gives 0 and a usage error 2, as exit codes instead of exits."""
    parser = add_arguments(argparse.ArgumentParser(prog=prog, description=description))
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return run(args)
