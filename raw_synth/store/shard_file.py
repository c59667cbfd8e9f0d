"""The read side common to both shard formats: :class:`ShardFile`, names and paths.

:func:`raw_synth.store.opener.open_shard_file` opens a shard of either format as a :class:`ShardFile`;
the format modules (:mod:`~raw_synth.store.zarr_shard`, :mod:`~raw_synth.store.hdf5_shard`) import
this module, never the other way round.

A shard is opened as a :class:`ShardFile`: ``columns`` maps each stored column name to an
array-like (``.shape``, ``.dtype``, integer and slice indexing returning numpy), ``strings(name)``
returns a string column as a list of ``str``, and ``attrs`` is the shard's own metadata (the
``raw_synth`` attribute: start, stop, count, checksum, clean dtype, ``complete``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from raw_synth.errors import RawSynthError

__all__ = ["ATTRS_KEY", "FORMATS", "SUFFIXES", "ShardFile", "format_of", "shard_path"]

#: Name of the attribute holding the shard's own metadata, in both formats.
ATTRS_KEY = "raw_synth"

#: Shard formats and their file suffixes.
SUFFIXES: dict[str, str] = {"zarr": ".zarr", "hdf5": ".h5"}
FORMATS: tuple[str, ...] = tuple(SUFFIXES)


@dataclass
class ShardFile:
    """An opened shard (read only).

    Attributes:
        path: The shard's path.
        format: ``"zarr"`` or ``"hdf5"``.
        attrs: The shard's metadata dict (empty when the shard was never completed).
        columns: Column name -> array-like of shape ``(n, ...)``.
        read_strings: Column name -> list of ``str`` for the string columns.
        closer: Releases the underlying handle.
    """

    path: Path
    format: str
    attrs: dict[str, Any]
    columns: dict[str, Any]
    read_strings: Callable[[str], list[str]]
    closer: Callable[[], None] = field(default=lambda: None)

    def strings(self, name: str) -> list[str]:
        """The string column ``name`` as a list of ``str``."""
        return self.read_strings(name)

    def close(self) -> None:
        """Release the file handle (idempotent)."""
        self.closer()


def format_of(path: str | Path) -> str:
    """The shard format from a shard path's suffix.

    Raises:
        RawSynthError: Unknown suffix.
    """
    suffix = Path(path).suffix
    for fmt, suf in SUFFIXES.items():
        if suffix == suf:
            return fmt
    raise RawSynthError(f"{path}: not a shard (expected a name ending in .zarr or .h5)")


def shard_path(root: str | Path, name: str) -> Path:
    """The path of shard ``name`` inside the store folder ``root``, refused when it leads elsewhere.

    A manifest's shard names are validated when it loads; this also refuses a shard that is a
    symbolic link to a place outside the store.

    Raises:
        RawSynthError: The name, or what it links to, lies outside ``root``.
    """
    path = Path(root) / name
    real = path.resolve()
    if real.parent != Path(root).resolve():
        raise RawSynthError(f"{path}: shard lies outside the store (resolves to {real})")
    return path
