"""The shard checksum: sha256 over the decoded stored columns, the same for Zarr and HDF5.

The checksum is defined on what a reader gets back, not on the file bytes, so a Zarr shard and an
HDF5 shard of the same records have the same checksum (compression settings do not matter).
Each column gets its own sha256 over its little-endian C-order bytes (strings: each item
JSON-encoded, UTF-8, one per line); the shard checksum is the sha256 of, for every column present in the fixed order
``noisy, clean, uncertainty, index, iso, ..., camera, cfa, source``, the line
``name:dtype:shape:`` followed by that column's digest. Columns can be fed block by block
(consecutive sample ranges), so a shard never has to be held in memory to be checked.
"""

from __future__ import annotations

import hashlib
import json
from typing import Iterable, Mapping

import numpy as np

from raw_synth.errors import RawSynthError
from raw_synth.store.records import IMAGE_FIELDS, META_FIELDS, STRING_FIELDS

__all__ = ["COLUMN_ORDER", "ShardHasher", "checksum_columns"]

#: Every column name in checksum order.
COLUMN_ORDER: tuple[str, ...] = (*IMAGE_FIELDS, *META_FIELDS, *STRING_FIELDS)


class ShardHasher:
    """Incremental shard checksum.

    Feed each column's samples in order with :meth:`update` (any block sizes), then call
    :meth:`hexdigest`.
    """

    def __init__(self) -> None:
        self._hashes: dict[str, "hashlib._Hash"] = {}
        self._dtype: dict[str, str] = {}
        self._shape: dict[str, tuple[int, ...]] = {}

    def update(self, name: str, block: np.ndarray | Iterable[str]) -> None:
        """Add the next consecutive samples of column ``name``.

        Args:
            name: A column of :data:`COLUMN_ORDER`.
            block: ``(k, ...)`` numeric array, or ``k`` strings for a string column.
        """
        if name not in COLUMN_ORDER:
            raise RawSynthError(f"checksum: unknown column {name!r}")
        if name in STRING_FIELDS:
            items = [str(s) for s in (block.tolist() if isinstance(block, np.ndarray) else block)]
            data: bytes | memoryview = b""
            dtype, sub = "str", ()
            count = len(items)
        else:
            arr = np.asarray(block)
            little = arr.dtype.newbyteorder("<")
            # hashlib reads the array's buffer: no bytes copy of a 32 MB image column
            data = np.ascontiguousarray(arr, dtype=little).data.cast("B")
            dtype, sub, count = arr.dtype.name, tuple(arr.shape[1:]), arr.shape[0]
        if name not in self._hashes:
            self._hashes[name] = hashlib.sha256()
            self._dtype[name] = dtype
            self._shape[name] = (0, *sub)
        elif self._dtype[name] != dtype or self._shape[name][1:] != sub:
            raise RawSynthError(f"checksum: column {name!r} changed dtype or shape between blocks")
        if name in STRING_FIELDS:
            # one JSON list per block would make the digest depend on block sizes: hash per item
            for item in items:
                self._hashes[name].update(json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\n")
        else:
            self._hashes[name].update(data)
        self._shape[name] = (self._shape[name][0] + count, *sub)

    def column_digest(self, name: str) -> str:
        """The sha256 (hex) of column ``name`` fed so far: its data alone, without dtype or shape."""
        if name not in self._hashes:
            raise RawSynthError(f"checksum: column {name!r} was not fed")
        return self._hashes[name].hexdigest()

    def hexdigest(self) -> str:
        """The shard checksum over every column fed so far (hex sha256)."""
        total = hashlib.sha256()
        for name in COLUMN_ORDER:
            if name in self._hashes:
                shape = "x".join(str(s) for s in self._shape[name])
                total.update(f"{name}:{self._dtype[name]}:{shape}:".encode())
                total.update(self._hashes[name].digest())
        return total.hexdigest()


def checksum_columns(columns: Mapping[str, np.ndarray]) -> str:
    """Checksum of whole in-memory columns (as :func:`~raw_synth.store.records.records_to_columns` gives).

    Args:
        columns: Column name -> ``(n, ...)`` array; unknown names raise.

    Returns:
        Hex sha256, equal to what :class:`ShardHasher` gives when fed the same data in blocks.
    """
    hasher = ShardHasher()
    for name in COLUMN_ORDER:
        if name in columns:
            hasher.update(name, columns[name])
    unknown = set(columns) - set(COLUMN_ORDER)
    if unknown:
        raise RawSynthError(f"checksum: unknown columns {sorted(unknown)}")
    return hasher.hexdigest()
