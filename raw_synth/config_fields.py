"""Which config fields define what a run makes: dataclass field metadata and the views built on it.

Every config of raw-synth is a dataclass (loaded from YAML or the command line). A field that only
says *how* or *where* a run goes (worker counts, devices, cache sizes, how often to save or log)
is declared with :func:`run_only`; every other field is part of the run's identity. The store's
manifest check (``generate`` resuming a store) and both trainers' resume checks compare
:func:`identity_view` of the stored and the new config, and report :func:`first_difference`.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass
    ... class Job:
    ...     seed: int = 0
    ...     workers: int = run_only(2)
    >>> identity_view(Job(seed=3, workers=8))
    {'seed': 3}
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["IDENTITY_KEY", "run_only", "run_only_fields", "identity_fields", "identity_view", "first_difference"]

#: Field-metadata key; ``False`` marks a field that is not part of the identity.
IDENTITY_KEY = "identity"

_MISSING: Any = dataclasses.MISSING


def run_only(default: Any = _MISSING, *, default_factory: Any = _MISSING) -> Any:
    """A dataclass field that is not part of the identity (compared on no resume).

    Args:
        default: The default value.
        default_factory: Or a factory for a mutable default.
    """
    if default_factory is not _MISSING:
        return dataclasses.field(default_factory=default_factory, metadata={IDENTITY_KEY: False})
    return dataclasses.field(default=default, metadata={IDENTITY_KEY: False})


def run_only_fields(cls: Any) -> tuple[str, ...]:
    """Names of the :func:`run_only` fields of a dataclass (class or instance), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get(IDENTITY_KEY, True) is False)


def identity_fields(cls: Any) -> tuple[str, ...]:
    """Names of the identity fields of a dataclass (class or instance), in declaration order."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get(IDENTITY_KEY, True) is not False)


def identity_view(config: Any) -> Any:
    """``config`` as plain data restricted to its identity fields, nested dataclasses included.

    Lists and tuples become lists (as after a JSON round trip), so a view compares equal to one
    that was stored as JSON.
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {name: identity_view(getattr(config, name)) for name in identity_fields(config)}
    if isinstance(config, dict):
        return {str(k): identity_view(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [identity_view(v) for v in config]
    return config


def first_difference(stored: Any, given: Any, prefix: str = "") -> tuple[str, Any, Any] | None:
    """The first place two nested mappings differ: ``(dotted path, stored value, given value)``.

    Keys are visited in sorted order; a key missing on one side gives :data:`MISSING` there.
    ``None`` when both are equal.
    """
    if isinstance(stored, dict) and isinstance(given, dict):
        for key in sorted(set(stored) | set(given), key=str):
            name = f"{prefix}.{key}" if prefix else str(key)
            diff = first_difference(stored.get(key, MISSING), given.get(key, MISSING), name)
            if diff is not None:
                return diff
        return None
    if stored != given:
        return (prefix or "<config>", stored, given)
    return None


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: Stands for a key absent on one side of :func:`first_difference`.
MISSING: Any = _Missing()
