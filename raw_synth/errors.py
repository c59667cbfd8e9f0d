"""The one exception type that raw-synth raises for bad input.

Every user-facing problem (a malformed file, a wrong argument, an unreadable image) is raised as
:class:`RawSynthError` with a one-line message that names the file or argument and the problem.
The CLI prints that line and exits with status 2, never a traceback.
"""

from __future__ import annotations

__all__ = ["RawSynthError", "one_line"]


class RawSynthError(ValueError):
    """Bad input: a malformed file, an unsupported format or an invalid argument.

    Subclasses :class:`ValueError` so that callers which already catch ``ValueError`` keep working.
    """


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (whitespace runs collapsed), or its type name when it has none."""
    return " ".join(str(exc).split()) or type(exc).__name__
