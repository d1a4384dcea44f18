"""The error policy: problems with what the user gave are :class:`InputError`; everything else is a bug
or an environment failure and keeps its own type (and, on the command line, its traceback).

The command line turns an ``InputError`` into one ``nnmargin: error: ...`` line and exit code 2; any
other exception exits 1 with its traceback, so a solver that did not converge or a CUDA failure is
never mistaken for a user mistake.
"""
from __future__ import annotations


class InputError(ValueError):
    """A problem with the user's input (arguments, arrays, files, options); the message names it."""


class InputTypeError(InputError, TypeError):
    """An input of the wrong type or dtype (also a ``TypeError``, as numpy and Python raise it)."""


class NnmarginWarning(UserWarning):
    """Base class of nnmargin's own warnings (the test suite turns them into errors)."""


class DeviceUnavailableError(InputError, RuntimeError):
    """The device asked for is not usable here (no GPU, or a build without CUDA)."""
