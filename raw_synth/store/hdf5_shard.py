"""HDF5 shards: one ``.h5`` file per shard, the same dataset names as the Zarr layout.

Images are chunked ``(1, 4, h, w)`` with shuffle + gzip (level 1, readable by any HDF5; the filters
are run by :mod:`raw_synth.store.deflate` and the chunks written as they are); string
columns use variable-length UTF-8; the shard's metadata is a JSON string in the file attribute
``raw_synth``, written last.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

from raw_synth.store.deflate import encode_chunk
from raw_synth.store.file_write import write_file
from raw_synth.store.records import IMAGE_FIELDS, STRING_FIELDS
from raw_synth.store.shard_file import ATTRS_KEY, ShardFile

__all__ = ["write_hdf5", "open_hdf5", "DEFLATE_LEVEL"]

#: gzip level of the image chunks (HDF5's ``compression_opts``).
DEFLATE_LEVEL = 1


def _build(f: h5py.File, columns: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> None:
    n = columns["noisy"].shape[0]
    for name in IMAGE_FIELDS:
        if name not in columns:
            continue
        data = columns[name]
        ds = f.create_dataset(
            name,
            shape=data.shape,
            dtype=data.dtype,
            chunks=(1, *data.shape[1:]),
            compression="gzip",
            compression_opts=DEFLATE_LEVEL,
            shuffle=True,
        )
        # each sample's chunk through HDF5's own filters (shuffle, deflate level 1), run here
        # with the fastest deflate installed (raw_synth.store.deflate)
        zeros = (0,) * (data.ndim - 1)
        for i in range(n):
            ds.id.write_direct_chunk((i, *zeros), encode_chunk(data[i], DEFLATE_LEVEL))
    for name, data in columns.items():
        if name in IMAGE_FIELDS:
            continue
        if name in STRING_FIELDS:
            ds = f.create_dataset(name, shape=data.shape, dtype=h5py.string_dtype("utf-8"))
            ds[...] = [str(s) for s in data]
        else:
            ds = f.create_dataset(name, shape=data.shape, dtype=data.dtype)
            ds[...] = data
    f.attrs[ATTRS_KEY] = json.dumps(dict(attrs))


def write_hdf5(path: Path, columns: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> None:
    """Write ``columns`` into the HDF5 file ``path`` (created or truncated), flushed and fsynced.

    The file is built in memory (HDF5's ``core`` driver, no backing store) and its image written
    with plain file I/O (:func:`~raw_synth.store.file_write.write_file`: past the page cache where
    the file system allows). A full disk or any other file-system error is then an ordinary
    ``OSError`` from ``write``: HDF5 never holds a half-written file, whose later clean-up after a
    failed write can crash the interpreter (h5py 3 on a full disk: a segmentation fault).

    Args:
        path: File to write (the caller's temporary name).
        columns: As :func:`~raw_synth.store.records.records_to_columns` returns.
        attrs: JSON-able shard metadata, stored as a JSON string attribute ``raw_synth`` last.

    Raises:
        OSError: From the file system (the caller turns it into a RawSynthError).
    """
    size = sum(np.asarray(c).nbytes for c in columns.values() if np.asarray(c).dtype != object)
    f = h5py.File(f"raw-synth-{os.getpid()}-{id(columns)}.h5", "w", driver="core", backing_store=False,
                  block_size=max(1 << 20, min(size, 1 << 28)))
    try:
        _build(f, columns, attrs)
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    write_file(path, image)


def open_hdf5(path: Path) -> ShardFile:
    """Open an HDF5 shard read only.

    Raises:
        Exception: Whatever h5py raises for a missing, truncated or malformed file.
    """
    f = h5py.File(path, "r")
    try:
        raw = f.attrs.get(ATTRS_KEY)
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        attrs = json.loads(raw) if raw else {}
        columns = {name: f[name] for name in f.keys() if isinstance(f[name], h5py.Dataset)}
    except Exception:
        f.close()
        raise

    def read_strings(name: str) -> list[str]:
        return [str(s) for s in columns[name].asstr()[...].tolist()]

    def closer() -> None:
        if f.id.valid:
            f.close()

    return ShardFile(path=path, format="hdf5", attrs=attrs, columns=columns, read_strings=read_strings, closer=closer)
