"""Zarr v3 shards: one directory store per shard, one chunk per sample, Blosc zstd.

Layout: arrays ``noisy`` uint16 ``(n, 4, h, w)``, ``clean`` float16/float32 and optionally
``uncertainty`` float16, chunks ``(1, 4, h, w)`` held in one file per array by Zarr v3's sharding
codec (``shards = (n, 4, h, w)``): a reader still fetches one sample's chunk alone, and the writer
creates three files per shard instead of one per sample and array, which more than halves the
write's CPU cost (10.6 -> 4.6 ms per 256x256 sample); the metadata columns as small arrays
(``shot`` ``(n, 4)``, ``iso`` ``(n,)``, ..., ``camera``/``cfa``/``source`` as string arrays);
the shard's metadata in the group attribute ``raw_synth``, written last.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from raw_synth.store.records import IMAGE_FIELDS, STRING_FIELDS
from raw_synth.store.shard_file import ATTRS_KEY, ShardFile

__all__ = ["write_zarr", "open_zarr"]


def _compressor() -> BloscCodec:
    # zstd level 1: 1.9 ms of CPU per 256x256 pair against 2.9 at level 3, for 0.7 % more bytes
    # (165 vs 164 KB per pair; benchmarks/RESULTS.md)
    return BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle")


def write_zarr(path: Path, columns: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> None:
    """Write ``columns`` into a new Zarr v3 group at ``path`` (an existing empty directory).

    Args:
        path: Directory to write into (the caller's temporary name).
        columns: As :func:`~raw_synth.store.records.records_to_columns` returns.
        attrs: JSON-able shard metadata, stored as the group attribute ``raw_synth`` last.

    Raises:
        OSError: From the file system (the caller turns it into a RawSynthError).
    """
    store = zarr.storage.LocalStore(str(path))
    group = zarr.open_group(store, mode="w")
    for name in IMAGE_FIELDS:
        if name not in columns:
            continue
        data = columns[name]
        arr = group.create_array(
            name,
            shape=data.shape,
            dtype=data.dtype,
            chunks=(1, *data.shape[1:]),
            shards=data.shape,
            compressors=_compressor(),
            fill_value=0,
        )
        arr[...] = data
    for name, data in columns.items():
        if name in IMAGE_FIELDS:
            continue
        if name in STRING_FIELDS:
            arr = group.create_array(name, shape=data.shape, dtype=str, chunks=data.shape)
            arr[:] = np.asarray([str(s) for s in data], dtype=str)
        else:
            arr = group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=data.shape)
            arr[...] = data
    # round-trip through JSON so the stored attrs are plain JSON types
    group.attrs.update({ATTRS_KEY: json.loads(json.dumps(dict(attrs)))})


def open_zarr(path: Path) -> ShardFile:
    """Open a Zarr shard read only.

    Raises:
        Exception: Whatever zarr raises for a missing or malformed store (the caller wraps it).
    """
    group = zarr.open_group(zarr.storage.LocalStore(str(path), read_only=True), mode="r")
    attrs = dict(group.attrs.get(ATTRS_KEY, {}) or {})
    columns = {name: arr for name, arr in group.arrays()}

    def read_strings(name: str) -> list[str]:
        return [str(s) for s in np.asarray(columns[name][:]).tolist()]

    return ShardFile(path=path, format="zarr", attrs=attrs, columns=columns, read_strings=read_strings)
