"""Zarr v3 shards: one directory store per shard, one chunk per sample, Blosc zstd.

Layout: arrays ``noisy`` uint16 ``(n, 4, h, w)``, ``clean`` float16/float32 and optionally
``uncertainty`` float16, chunks ``(1, 4, h, w)`` held in one file per array by Zarr v3's sharding
codec (``shards = (n, 4, h, w)``): a reader still fetches one sample's chunk alone, and the writer
creates three files per shard instead of one per sample and array, which more than halves the
write's CPU cost (10.6 -> 4.6 ms per 256x256 sample); the metadata columns as small arrays
(``shot`` ``(n, 4)``, ``iso`` ``(n,)``, ..., ``camera``/``cfa``/``source`` as string arrays);
the shard's metadata in the group attribute ``raw_synth``, written last.

Zarr writes each array's metadata (``zarr.json``); the image arrays' one shard file is encoded
here (:func:`_encode_shard`), byte for byte what Zarr would write (a test compares them), because
Zarr hands every chunk to its thread pool on its own: the ``noisy`` and ``clean`` arrays of a
256-pair shard cost 2.93 ms of CPU per pair through Zarr's writer and 1.19 ms here
(benchmarks/RESULTS.md). Those files are written and fsynced by
:func:`~raw_synth.store.file_write.write_file` (past the page cache where the file system allows).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Literal, Mapping

import google_crc32c
import numpy as np
import zarr
from numcodecs import Blosc
from zarr.codecs import BloscCodec

from raw_synth.store.file_write import write_file
from raw_synth.store.records import IMAGE_FIELDS, STRING_FIELDS
from raw_synth.store.shard_file import ATTRS_KEY, ShardFile

__all__ = ["write_zarr", "open_zarr"]


# Blosc zstd level 1 with bit shuffling: 1.9 ms of CPU per 256x256 pair against 2.9 at level 3,
# for 0.7 % more bytes (165 vs 164 KB per pair; benchmarks/RESULTS.md).
_CNAME: Literal["zstd"] = "zstd"
_CLEVEL = 1
_SHUFFLE: Literal["bitshuffle"] = "bitshuffle"
_SHUFFLE_CODES = {"noshuffle": Blosc.NOSHUFFLE, "shuffle": Blosc.SHUFFLE, "bitshuffle": Blosc.BITSHUFFLE}
# Offset and length of a chunk that is not stored (all fill value) in a shard index.
_EMPTY = np.iinfo(np.uint64).max


def _compressor() -> BloscCodec:
    return BloscCodec(cname=_CNAME, clevel=_CLEVEL, shuffle=_SHUFFLE)


def _encode_shard(data: np.ndarray) -> bytes:
    """One Zarr v3 shard holding all of ``data`` in chunks of one sample (``data[i]``).

    The ``sharding_indexed`` layout with Zarr's defaults: the chunks, each little-endian bytes
    compressed by Blosc, one after another; then the index, ``(n, 2)`` little-endian uint64
    ``(offset, length)`` per chunk followed by its CRC-32C (4 bytes, little endian). A chunk equal
    to the fill value 0 everywhere is not stored (offset and length ``2**64 - 1``), as Zarr does.

    Args:
        data: ``(n, ...)`` array of any numeric dtype.

    Returns:
        The shard file's bytes.
    """
    codec = Blosc(cname=_CNAME, clevel=_CLEVEL, shuffle=_SHUFFLE_CODES[_SHUFFLE], blocksize=0,
                  typesize=data.dtype.itemsize)
    little = data.astype(data.dtype.newbyteorder("<"), copy=False)
    index = np.full((data.shape[0], 2), _EMPTY, dtype="<u8")
    parts: list[bytes] = []
    offset = 0
    for i in range(data.shape[0]):
        chunk = np.ascontiguousarray(little[i])
        if not chunk.any():
            continue
        encoded = codec.encode(chunk.view(np.uint8).reshape(-1))
        index[i] = (offset, len(encoded))
        offset += len(encoded)
        parts.append(encoded)
    index_bytes = index.tobytes()
    parts.append(index_bytes)
    parts.append(struct.pack("<I", google_crc32c.value(index_bytes)))
    return b"".join(parts)


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
        group.create_array(
            name,
            shape=data.shape,
            dtype=data.dtype,
            chunks=(1, *data.shape[1:]),
            shards=data.shape,
            compressors=_compressor(),
            fill_value=0,
        )
        # the one shard's key under the default chunk key encoding: c/0/0/...
        shard_file = path.joinpath(name, "c", *["0"] * data.ndim)
        shard_file.parent.mkdir(parents=True, exist_ok=True)
        write_file(shard_file, _encode_shard(data))
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
    stored = group.attrs.get(ATTRS_KEY, {}) or {}
    attrs: dict[str, Any] = dict(stored) if isinstance(stored, Mapping) else {}
    columns = {name: arr for name, arr in group.arrays()}

    def read_strings(name: str) -> list[str]:
        return [str(s) for s in np.asarray(columns[name][:]).tolist()]

    return ShardFile(path=path, format="zarr", attrs=attrs, columns=columns, read_strings=read_strings)
