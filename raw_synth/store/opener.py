"""Opening a shard of either format: :func:`open_shard_file`.

The format modules are imported on first use, so that importing :mod:`raw_synth.store` loads
neither zarr nor h5py (a third of a second for zarr).
"""

from __future__ import annotations

from pathlib import Path

from raw_synth.errors import RawSynthError, one_line
from raw_synth.store.shard_file import ShardFile, format_of

__all__ = ["open_shard_file"]


def open_shard_file(path: str | Path) -> ShardFile:
    """Open one shard, Zarr or HDF5 by suffix, read only.

    Raises:
        RawSynthError: Missing path, unknown suffix, or a file that cannot be opened
            (one line naming the path).
    """
    p = Path(path)
    fmt = format_of(p)
    if not p.exists():
        raise RawSynthError(f"{p}: shard is missing")
    try:
        if fmt == "zarr":
            from raw_synth.store.zarr_shard import open_zarr

            return open_zarr(p)
        from raw_synth.store.hdf5_shard import open_hdf5

        return open_hdf5(p)
    except RawSynthError:
        raise
    except Exception as exc:  # noqa: BLE001 - any library error becomes one clear line
        raise RawSynthError(f"{p}: cannot open shard ({one_line(exc)})") from None
