"""Digests a shard carries so that a reader can check every value it reads, at little cost.

The shard checksum (:mod:`raw_synth.store.checksum`) covers a whole shard: checking it means
reading all of it. Each shard written since format version 2 therefore also stores, in its
attributes under :data:`DIGESTS_KEY`:

* ``columns``: the sha256 of every column (the per-column digests the shard checksum is made
  of), so the small metadata columns, which a reader loads whole, are checked when the shard is
  opened;
* ``samples``: a CRC-32C per sample for each image column (``noisy``, ``clean``,
  ``uncertainty``) and one for each sample's metadata row (``meta``), so the image chunks a
  reader fetches one sample at a time are checked as they are read, and a damaged value is
  named by its sample and column.

A CRC-32C of a 256x256 pair's two chunks costs about 12 us (hardware CRC), against about 1 ms to
decompress them.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import google_crc32c
import numpy as np

from raw_synth.store.checksum import COLUMN_ORDER, ShardHasher
from raw_synth.store.records import IMAGE_FIELDS, META_FIELDS, STRING_FIELDS

__all__ = ["DIGESTS_KEY", "shard_digests", "sample_crc", "meta_row_crcs", "column_sha256", "metadata_problems",
           "sample_problem"]

#: Key of the digests inside a shard's ``raw_synth`` attributes.
DIGESTS_KEY = "digests"


def sample_crc(block: np.ndarray) -> int:
    """CRC-32C of one sample's array (little-endian, C order)."""
    arr = np.asarray(block)
    return int(google_crc32c.value(np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()))


def meta_row_crcs(meta: Mapping[str, np.ndarray], strings: Mapping[str, Sequence[str]]) -> list[int]:
    """CRC-32C of each sample's metadata row: every numeric field, then every string, in column order.

    Args:
        meta: Each of :data:`~raw_synth.store.records.META_FIELDS` -> ``(n, ...)`` array.
        strings: Each of :data:`~raw_synth.store.records.STRING_FIELDS` -> ``n`` strings.
    """
    columns = [np.ascontiguousarray(meta[name], dtype=np.asarray(meta[name]).dtype.newbyteorder("<"))
               for name in META_FIELDS]
    texts = [list(strings[name]) for name in STRING_FIELDS]
    n = len(columns[0])
    crcs = []
    for j in range(n):
        parts = [column[j].tobytes() for column in columns]
        parts += [json.dumps(str(text[j]), ensure_ascii=False).encode("utf-8") for text in texts]
        crcs.append(int(google_crc32c.value(b"\0".join(parts))))
    return crcs


def column_sha256(name: str, data: np.ndarray | Sequence[str]) -> str:
    """sha256 of one whole column, as :class:`~raw_synth.store.checksum.ShardHasher` computes it."""
    hasher = ShardHasher()
    hasher.update(name, data)
    return hasher.column_digest(name)


def shard_digests(columns: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The shard checksum and the :data:`DIGESTS_KEY` attribute of a shard holding ``columns``.

    Args:
        columns: As :func:`~raw_synth.store.records.records_to_columns` returns.

    Returns:
        ``(checksum, digests)``: the checksum equals
        :func:`~raw_synth.store.checksum.checksum_columns` ``(columns)``; ``digests`` is
        ``{"columns": {name: sha256 hex}, "samples": {"noisy"|"clean"|"uncertainty"|"meta": [crc, ...]}}``.
    """
    hasher = ShardHasher()
    for name in COLUMN_ORDER:
        if name in columns:
            hasher.update(name, columns[name])
    samples = {name: [sample_crc(row) for row in columns[name]] for name in IMAGE_FIELDS if name in columns}
    samples["meta"] = meta_row_crcs({k: columns[k] for k in META_FIELDS}, {k: columns[k] for k in STRING_FIELDS})
    digests = {"columns": {name: hasher.column_digest(name) for name in COLUMN_ORDER if name in columns},
               "samples": samples}
    return hasher.hexdigest(), digests


def metadata_problems(meta: Mapping[str, np.ndarray], strings: Mapping[str, Sequence[str]],
                      digests: Mapping[str, Any], start: int) -> list[str]:
    """The metadata columns whose data differs from the digests the writer stored, one line each.

    Args:
        meta: Each numeric metadata column as read, ``(n, ...)``.
        strings: Each string column as read.
        digests: The shard's :data:`DIGESTS_KEY` attribute.
        start: Global index of the shard's first sample.

    Returns:
        ``"sample 9 column shot: data does not match its stored digest (corrupt)"`` per damaged
        column, in column order; the sample is the first whose metadata row CRC differs (left out
        when no row CRC points at one).
    """
    stored = digests["columns"]
    bad = [name for name in (*META_FIELDS, *STRING_FIELDS)
           if name in stored and column_sha256(name, meta[name] if name in META_FIELDS else strings[name])
           != stored[name]]
    if not bad:
        return []
    rows = meta_row_crcs(meta, strings)
    first = next((j for j, (a, b) in enumerate(zip(rows, digests["samples"]["meta"])) if a != b), None)
    where = f"sample {start + first} " if first is not None else ""
    return [f"{where}column {name}: data does not match its stored digest (corrupt)" for name in bad]


def sample_problem(digests: Mapping[str, Any], column: str, j: int, block: np.ndarray, start: int) -> str | None:
    """Why sample ``j`` of image column ``column``, as read, is damaged, or ``None`` when its CRC matches.

    Args:
        digests: The shard's :data:`DIGESTS_KEY` attribute.
        column: ``"noisy"``, ``"clean"`` or ``"uncertainty"``.
        j: Position of the sample in the shard.
        block: Its array as read.
        start: Global index of the shard's first sample.
    """
    crcs = digests["samples"].get(column)
    if crcs is None or sample_crc(block) == int(crcs[j]):
        return None
    return f"sample {start + j} column {column}: data does not match its stored CRC-32C (corrupt)"
