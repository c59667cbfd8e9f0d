"""The field checks of every config: one-line :class:`~raw_synth.errors.RawSynthError` naming the field.

The ``generate`` options, both trainers' recipes and camera profiles check their fields with these
functions. Each takes the value and a caller-given ``label`` that starts the message (``--n``,
``train.max_steps``, ``bad.yaml: datasets.crop``, ``canon.yaml: field 'black_level'``) and returns
the value (numbers as ``float``). Two wordings of a bound exist, chosen by ``wording``:

- ``"expected"`` (the default): one message holds the type and the bound,
  ``"--n: expected an integer >= 1, got 0"``.
- ``"must"``: the type, then the bound in a message of its own,
  ``"train.total_steps: expected an integer, got 'x'"`` and ``"train.total_steps: must be >= 1, got 0"``.

:func:`check_known` refuses unknown keys of a YAML section, ``"WHAT a, b; known: x, y"``.

Example:
    >>> integer(3, "--n", 1)
    3
    >>> number(0, "train.lr", positive=True, wording="must")
    Traceback (most recent call last):
    ...
    raw_synth.errors.RawSynthError: train.lr: must be positive, got 0
"""

from __future__ import annotations

import math
from typing import Any, Callable, Collection, Concatenate, Iterable, Literal, ParamSpec, Sequence, TypeVar

import numpy as np

from raw_synth.errors import RawSynthError

__all__ = [
    "Wording",
    "fail",
    "is_integer",
    "integer",
    "number",
    "boolean",
    "choice",
    "text",
    "sequence",
    "plane_values",
    "optional",
    "unknown_names",
    "check_known",
]

#: How a bound is worded: inside the ``expected ...`` phrase, or as ``must be ...`` on its own.
Wording = Literal["expected", "must"]

T = TypeVar("T")
P = ParamSpec("P")


def fail(label: str, problem: str) -> RawSynthError:
    """The error ``"LABEL: PROBLEM"`` (to raise), for checks no function here covers."""
    return RawSynthError(f"{label}: {problem}")


def is_integer(value: Any, *, numpy: bool = False) -> bool:
    """Whether ``value`` is an integer (``bool`` is not; numpy integers only with ``numpy``)."""
    return not isinstance(value, bool) and isinstance(value, (int, np.integer) if numpy else int)


def integer(value: Any, label: str, minimum: int = 0, *, maximum: int | None = None, numpy: bool = False,
            wording: Wording = "expected") -> int:
    """An integer in ``[minimum, maximum]``.

    Args:
        value: The value to check.
        label: Start of the message.
        minimum: Smallest value accepted.
        maximum: Largest value accepted (None: no limit); the ``expected`` wording then says
            ``"expected an integer from MIN to MAX"``.
        numpy: Also accept numpy integers.
        wording: ``"expected an integer >= MIN"`` or ``"expected an integer"`` then ``"must be >= MIN"``.

    Raises:
        RawSynthError: ``"LABEL: expected an integer >= 1, got 0"`` (or the ``must`` wording).
    """
    if wording == "must":
        if not is_integer(value, numpy=numpy):
            raise fail(label, f"expected an integer, got {value!r}")
        if value < minimum:
            raise fail(label, f"must be >= {minimum}, got {value!r}")
        if maximum is not None and value > maximum:
            raise fail(label, f"must be <= {maximum}, got {value!r}")
    elif not is_integer(value, numpy=numpy) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
        raise fail(label, f"expected an integer {bound}, got {value!r}")
    return int(value)


def number(value: Any, label: str, *, minimum: float | None = None, positive: bool = False,
           below: float | None = None, wording: Wording = "expected", kind: str = "a number",
           non_finite: str | None = None) -> float:
    """A finite number (``int`` or ``float``, not ``bool``) within the bounds, as ``float``.

    Args:
        value: The value to check.
        label: Start of the message.
        minimum: Smallest value accepted (None: no limit).
        positive: Refuse zero and below.
        below: Refuse this value and above.
        wording: ``"expected a number >= 0 and < 1"`` or ``"must be positive"`` / ``"must be >= 0"`` /
            ``"must be below 1"``.
        kind: What a wrong type is told it should be: ``"expected KIND, got ..."``.
        non_finite: What NaN and infinity are told (None: ``kind``).

    Raises:
        RawSynthError: ``"LABEL: expected a number >= 0, got -1"`` (or the ``must`` wording).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(label, f"expected {kind}, got {value!r}")
    if not math.isfinite(value):
        raise fail(label, f"expected {non_finite or kind}, got {value!r}")
    limits: list[tuple[bool, str, str]] = []  # (broken, in the "expected" wording, in the "must" wording)
    if positive:
        limits.append((value <= 0, "> 0", "positive"))
    if minimum is not None:
        limits.append((value < minimum, f">= {minimum:g}", f">= {minimum:g}"))
    if below is not None:
        limits.append((value >= below, f"< {below:g}", f"below {below:g}"))
    if wording == "must":
        for broken, _, must in limits:
            if broken:
                raise fail(label, f"must be {must}, got {value!r}")
    elif any(broken for broken, _, _ in limits):
        raise fail(label, f"expected {kind} {' and '.join(bound for _, bound, _ in limits)}, got {value!r}")
    return float(value)


def boolean(value: Any, label: str) -> bool:
    """``True`` or ``False``.

    Raises:
        RawSynthError: ``"LABEL: expected true or false, got 1"``.
    """
    if not isinstance(value, bool):
        raise fail(label, f"expected true or false, got {value!r}")
    return value


def choice(value: Any, choices: Sequence[T], label: str, *, listing: Literal["one of", "or"] = "one of") -> T:
    """One of ``choices`` (strings or integers; ``bool`` is refused, a string choice must be a ``str``).

    Args:
        value: The value to check.
        choices: The values accepted, in the order the message lists them.
        label: Start of the message.
        listing: ``"expected one of a, b, c"`` or ``"expected a or b"``.

    Raises:
        RawSynthError: ``"LABEL: expected one of zarr, hdf5, got 'x'"``.
    """
    strings = all(isinstance(c, str) for c in choices)
    if isinstance(value, bool) or (strings and not isinstance(value, str)) or value not in choices:
        names = f"one of {', '.join(map(str, choices))}" if listing == "one of" else " or ".join(map(str, choices))
        raise fail(label, f"expected {names}, got {value!r}")
    return value


def text(value: Any, label: str, expected: str = "a non-empty string", *, empty: bool = False,
         blank: bool = False) -> str:
    """A string that is not blank (only white space), unless ``blank`` or ``empty`` allow it.

    Args:
        value: The value to check.
        label: Start of the message.
        expected: What the message says the value should be.
        empty: Accept any string, ``""`` included.
        blank: Accept strings of only white space, not ``""``.

    Raises:
        RawSynthError: ``"LABEL: expected EXPECTED, got VALUE"``.
    """
    if not isinstance(value, str) or not (empty or (value if blank else value.strip())):
        raise fail(label, f"expected {expected}, got {value!r}")
    return value


def sequence(value: Any, label: str, expected: str, *, length: int | None = None) -> Sequence[Any]:
    """A list or tuple of ``length`` items (None: any number but none).

    Raises:
        RawSynthError: ``"LABEL: expected EXPECTED, got VALUE"``.
    """
    if not isinstance(value, (list, tuple)) or (len(value) != length if length is not None else not value):
        raise fail(label, f"expected {expected}, got {value!r}")
    return value


def plane_values(value: Any, label: str) -> tuple[float, float, float, float]:
    """A per-plane setting (R, Gr, Gb, B): one number for all four planes, or four numbers.

    Raises:
        RawSynthError: ``"LABEL: expected 1 or 4 numbers, got 3"``, or a non-number or a non-finite one.
    """
    values = value if isinstance(value, (list, tuple)) else [value]
    if len(values) not in (1, 4):
        raise fail(label, f"expected 1 or 4 numbers, got {len(values)}")
    numbers = [number(v, label, non_finite="a finite number") for v in values]
    numbers = numbers * 4 if len(numbers) == 1 else numbers
    return (numbers[0], numbers[1], numbers[2], numbers[3])


def optional(check: Callable[Concatenate[Any, P], T], value: Any, *args: P.args, **kwargs: P.kwargs) -> T | None:
    """``None`` as is, anything else through ``check(value, *args, **kwargs)``.

    Example:
        >>> optional(integer, None, "train.threads", 1) is None
        True
    """
    return None if value is None else check(value, *args, **kwargs)


def unknown_names(keys: Iterable[Any], known: Collection[str]) -> list[str]:
    """The keys (as strings) that are not in ``known``, sorted."""
    return sorted(str(key) for key in keys if str(key) not in known)


def check_known(keys: Iterable[Any], known: Sequence[str], what: str) -> None:
    """Refuse keys that are not in ``known``, e.g. the fields of a YAML section.

    Args:
        keys: The keys given (a mapping gives its keys).
        known: The accepted keys, in the order the message lists them.
        what: Start of the message, e.g. ``"bad.yaml: val: unknown field(s)"``.

    Raises:
        RawSynthError: ``"WHAT a, b; known: x, y, z"``.
    """
    unknown = unknown_names(keys, known)
    if unknown:
        raise RawSynthError(f"{what} {', '.join(unknown)}; known: {', '.join(known)}")
